"""The dependency locks (requirements/*.lock) and the check that they are in step with pyproject.toml.

    python3 scripts/lock.py check     # exit 1, naming `make lock`, when pyproject.toml changed since the last lock
    python3 scripts/lock.py compile   # re-lock (what `make lock` runs; needs uv: `make lock` installs a pinned one);
                                      # keeps the current pins where they still fit, --upgrade (make lock UPGRADE=1)
                                      # takes the newest release of everything

Two locks, both with a sha256 hash for every file of every pinned release (pip --require-hashes):
- requirements/test.lock     the runtime dependencies, the `test` extra and the build backend (make install, CI);
- requirements/runtime.lock  the runtime dependencies and the build backend (docker/Dockerfile), pinned to the same
                             versions as test.lock (compiled with it as constraints).
Each starts with a digest of what pyproject.toml asks for (dependencies, optional-dependencies, build-system.requires,
requires-python); `check` recomputes it. Comments and formatting in pyproject.toml do not count, a changed range does.
The standard library only (tomllib: Python 3.11+), so `make install` can check before any virtualenv exists.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCKS = {"test": "requirements/test.lock", "runtime": "requirements/runtime.lock"}
DIGEST_PREFIX = "# pyproject.toml digest: sha256:"
RELOCK = "make lock"
# The lock is universal (every platform, markers kept) for the oldest Python pyproject.toml allows.
PYTHON_VERSION = "3.11"


def read_pyproject(root: Path) -> dict:
    import tomllib

    with (root / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)


def locked_inputs(pyproject: dict) -> dict:
    """What the locks are made from, normalised (order and spacing do not count)."""
    project = pyproject.get("project", {})

    def normal(requirements: list[str]) -> list[str]:
        return sorted(" ".join(requirement.split()) for requirement in requirements)

    return {
        "requires-python": project.get("requires-python", ""),
        "dependencies": normal(project.get("dependencies", [])),
        "optional-dependencies": {
            extra: normal(requirements) for extra, requirements in sorted(project.get("optional-dependencies", {}).items())
        },
        "build-system.requires": normal(pyproject.get("build-system", {}).get("requires", [])),
    }


def digest(root: Path) -> str:
    text = json.dumps(locked_inputs(read_pyproject(root)), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def recorded_digest(lock: Path) -> str | None:
    with lock.open(encoding="utf-8") as handle:
        for line in handle:
            if line.startswith(DIGEST_PREFIX):
                return line[len(DIGEST_PREFIX):].split()[0]
            if not line.startswith("#"):
                return None
    return None


def check(root: Path) -> list[str]:
    """The problems that make the locks unusable with this pyproject.toml (empty: in step)."""
    expected = digest(root)
    problems = []
    for name in LOCKS.values():
        lock = root / name
        if not lock.is_file():
            problems.append(f"{name} is missing")
            continue
        found = recorded_digest(lock)
        if found is None:
            problems.append(f"{name} has no '{DIGEST_PREFIX}…' line")
        elif found != expected:
            problems.append(f"{name} was made from another pyproject.toml (its dependencies changed since)")
    return problems


def find_uv(root: Path) -> str:
    for candidate in (root / ".venv" / "bin" / "uv", shutil.which("uv")):
        if candidate and os.access(candidate, os.X_OK):
            return str(candidate)
    sys.exit("uv not found: run `make lock` (it installs the pinned uv into .venv)")


def compile_locks(root: Path, *, upgrade: bool = False) -> None:
    uv = find_uv(root)
    build_requires = locked_inputs(read_pyproject(root))["build-system.requires"]
    common = [
        "--generate-hashes", "--universal", "--python-version", PYTHON_VERSION,
        "--custom-compile-command", RELOCK, "--quiet",
    ]
    with tempfile.TemporaryDirectory() as scratch:
        build_in = Path(scratch) / "build-system.in"  # pyproject's [build-system] requires: pip builds the project
        build_in.write_text("\n".join(build_requires) + "\n", encoding="utf-8")
        test_lock, runtime_lock = root / LOCKS["test"], root / LOCKS["runtime"]
        test_lock.parent.mkdir(parents=True, exist_ok=True)
        # uv keeps the versions the existing lock pins where they still fit (a re-lock moves only what changed);
        # --upgrade takes the newest release of everything.
        subprocess.run(
            [uv, "pip", "compile", "pyproject.toml", str(build_in), "--extra", "test", *(["--upgrade"] if upgrade else []),
             *common,
             "-o", str(test_lock)],
            cwd=root, check=True,
        )
        subprocess.run(
            [uv, "pip", "compile", "pyproject.toml", str(build_in), "-c", LOCKS["test"], *common,
             "-o", str(runtime_lock)],
            cwd=root, check=True,
        )
        stamp = digest(root)
        for lock in (test_lock, runtime_lock):
            # The scratch file's path would change at every run: name it as what it is.
            text = lock.read_text(encoding="utf-8").replace(str(build_in), "pyproject.toml [build-system] requires")
            header = (
                f"{DIGEST_PREFIX}{stamp}\n"
                "#   of pyproject.toml's dependencies, optional-dependencies, build-system.requires and requires-python;\n"
                f"#   `make install` refuses this lock when they change: re-lock with `{RELOCK}` (docs/DEPENDENCIES.md).\n"
            )
            lock.write_text(header + text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["check", "compile", "digest"])
    parser.add_argument("--upgrade", action="store_true", help="compile: the newest release of every dependency")
    parser.add_argument("--root", type=Path, default=ROOT, help="the project directory (default: this repository)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if args.command == "digest":
        print(digest(root))
        return 0
    if args.command == "compile":
        compile_locks(root, upgrade=args.upgrade)
        return 0
    problems = check(root)
    if problems:
        print("The dependency lock is not in step with pyproject.toml:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        print(f"Re-lock with `{RELOCK}` and commit requirements/*.lock (docs/DEPENDENCIES.md).", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
