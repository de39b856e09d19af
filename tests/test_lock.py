"""Reproducible installs (issue #12, item 13): the locks cover pyproject.toml, with hashes, and `make` refuses a lock
that is out of step; the Docker images are pinned (docs/DEPENDENCIES.md)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
TEST_LOCK = REPO / "requirements" / "test.lock"
RUNTIME_LOCK = REPO / "requirements" / "runtime.lock"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
# The files `make lock-check` / `make install` need, copied to a scratch project for the out-of-step cases.
CHECK_FILES = ["Makefile", "pyproject.toml", "scripts/lock.py", "requirements/test.lock", "requirements/runtime.lock"]


def parse_lock(path: Path) -> dict[str, dict]:
    """name -> {"version", "marker", "hashes"} of each pinned requirement (continuation lines joined)."""
    entries: dict[str, dict] = {}
    logical = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    for line in logical.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", line)
        requirement_text = re.sub(r"\s*--hash=\S+", "", line).strip()
        requirement = Requirement(requirement_text)
        (specifier,) = list(requirement.specifier)
        assert specifier.operator == "==", f"{path.name}: {requirement_text} is not an exact pin"
        entries[canonicalize_name(requirement.name)] = {
            "version": Version(specifier.version),
            "marker": requirement.marker,
            "hashes": hashes,
            "line": requirement_text,
        }
    return entries


def applies_here(requirement: Requirement) -> bool:
    return requirement.marker is None or requirement.marker.evaluate(dict(default_environment(), extra=""))


def assert_covers(lock: dict[str, dict], requirements: list[str], lock_name: str) -> None:
    for text in requirements:
        requirement = Requirement(text)
        if not applies_here(requirement):
            continue
        name = canonicalize_name(requirement.name)
        assert name in lock, f"{lock_name} has no pin for {text!r}: run `make lock`"
        version = lock[name]["version"]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{lock_name} pins {name}=={version}, outside pyproject.toml's {text!r}: run `make lock`"
        )


RUNTIME = PYPROJECT["project"]["dependencies"]
TEST_EXTRA = PYPROJECT["project"]["optional-dependencies"]["test"]
BUILD = PYPROJECT["build-system"]["requires"]


def test_test_lock_covers_every_dependency_extra_and_build_requirement():
    assert_covers(parse_lock(TEST_LOCK), RUNTIME + TEST_EXTRA + BUILD, "requirements/test.lock")


def test_runtime_lock_covers_the_runtime_and_build_requirements_with_the_test_locks_versions():
    runtime, test = parse_lock(RUNTIME_LOCK), parse_lock(TEST_LOCK)
    assert_covers(runtime, RUNTIME + BUILD, "requirements/runtime.lock")
    # The image runs what the suite tested: every pin of the runtime lock is the test lock's pin.
    assert {name: entry["version"] for name, entry in runtime.items()} == {
        name: test[name]["version"] for name in runtime
    }
    # ... and nothing of the test extra's own reaches the image.
    assert canonicalize_name("pytest") not in runtime and canonicalize_name("playwright") not in runtime


def test_extras_of_dependencies_are_locked_too():
    """`uvicorn[standard]` and `tortoise-orm[asyncpg]`: the packages their extras bring are pinned."""
    lock = parse_lock(TEST_LOCK)
    for name in ("uvloop", "httptools", "websockets", "watchfiles", "asyncpg"):
        assert canonicalize_name(name) in lock, name


@pytest.mark.parametrize("lock_path", [TEST_LOCK, RUNTIME_LOCK], ids=["test", "runtime"])
def test_every_pin_has_hashes(lock_path):
    lock = parse_lock(lock_path)
    assert len(lock) > 50
    missing = [entry["line"] for entry in lock.values() if not entry["hashes"]]
    assert missing == []


def test_the_installed_environment_is_the_lock():
    """`make install` installed exactly the locked versions (what pip --require-hashes guarantees)."""
    from importlib.metadata import PackageNotFoundError, version

    lock = parse_lock(TEST_LOCK)
    wrong = {}
    for name, entry in lock.items():
        if entry["marker"] is not None and not entry["marker"].evaluate(dict(default_environment(), extra="")):
            continue
        try:
            installed = Version(version(name))
        except PackageNotFoundError:
            wrong[name] = (str(entry["version"]), None)
            continue
        if installed != entry["version"]:
            wrong[name] = (str(entry["version"]), str(installed))
    assert wrong == {}, "the virtualenv differs from requirements/test.lock: run `make install`"


def scratch_project(tmp_path: Path) -> Path:
    for name in CHECK_FILES:
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, target)
    return tmp_path


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


def make(target: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # PYTHON: the interpreter running the suite (the check needs tomllib, Python 3.11+, and nothing else).
    return run(["make", "--no-print-directory", target, f"PYTHON={sys.executable}"], cwd)


def test_the_lock_is_in_step_with_pyproject():
    result = run([sys.executable, "scripts/lock.py", "check"], REPO)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "change",
    [
        ('"orjson>=3.9"', '"orjson>=3.10"'),  # a range moved
        ('"jieba==0.42.1",', '"jieba==0.42.1",\n    "tomli-w>=1.0",'),  # a dependency added
        ('"pytest>=8",', '"pytest>=8",\n    "hypothesis>=6",'),  # a test extra added
        ('requires = ["setuptools>=68", "wheel"]', 'requires = ["setuptools>=70", "wheel"]'),  # the build backend
        ('requires-python = ">=3.11"', 'requires-python = ">=3.12"'),
    ],
    ids=["range", "dependency", "test-extra", "build-system", "requires-python"],
)
def test_make_refuses_a_lock_out_of_step_with_pyproject(tmp_path, change):
    project = scratch_project(tmp_path)
    pyproject = project / "pyproject.toml"
    old, new = change
    text = pyproject.read_text(encoding="utf-8")
    assert old in text
    pyproject.write_text(text.replace(old, new, 1), encoding="utf-8")

    checked = make("lock-check", project)
    assert checked.returncode != 0
    assert "not in step with pyproject.toml" in checked.stderr and "make lock" in checked.stderr, checked.stderr

    # `make install` (hence `make test` and `make demo`) stops there, before making a virtualenv.
    installed = make("install", project)
    assert installed.returncode != 0
    assert "make lock" in installed.stderr, installed.stderr
    assert not (project / ".venv").exists()


def test_make_accepts_a_lock_when_only_comments_and_order_change(tmp_path):
    project = scratch_project(tmp_path)
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    text = text.replace('"starlette>=0.47",\n    "uvicorn[standard]>=0.30",', '"uvicorn[standard]>=0.30",  # moved\n    "starlette>=0.47",')
    pyproject.write_text(text + "\n# a comment\n", encoding="utf-8")
    checked = make("lock-check", project)
    assert checked.returncode == 0, checked.stderr


def test_a_lock_without_its_digest_line_is_refused(tmp_path):
    project = scratch_project(tmp_path)
    lock = project / "requirements" / "runtime.lock"
    lock.write_text("".join(lock.read_text(encoding="utf-8").splitlines(keepends=True)[3:]), encoding="utf-8")
    checked = make("lock-check", project)
    assert checked.returncode != 0 and "requirements/runtime.lock has no" in checked.stderr, checked.stderr


def test_make_installs_from_the_lock_with_hashes():
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    recipe = makefile.split("$(VENV)/.installed:", 1)[1].split("\n\n", 1)[0]
    assert "pip install -q --require-hashes -r $(LOCK)" in recipe
    assert "--no-deps" in recipe
    assert "LOCK := requirements/test.lock" in makefile
    assert re.search(r"^install: lock-check ", makefile, re.M)


def test_the_dockerfile_installs_from_the_runtime_lock_with_hashes():
    dockerfile = (REPO / "docker" / "Dockerfile").read_text(encoding="utf-8")
    assert "pip install --require-hashes -r requirements/runtime.lock" in dockerfile
    installs = re.findall(r"pip install [^\n&]*", dockerfile)
    assert all("--require-hashes" in line or "--no-deps" in line for line in installs), installs


PINNED = re.compile(r"^(?P<name>[a-z0-9./-]+):(?P<tag>\d+(\.\d+)+[\w.-]*)@sha256:[0-9a-f]{64}$")


def images() -> dict[str, str]:
    found = {}
    for line in (REPO / "docker" / "compose.yaml").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\s+image:\s*(\S+)", line)
        if match:
            found[match.group(1).split(":")[0].split("@")[0]] = match.group(1)
    for line in (REPO / "docker" / "Dockerfile").read_text(encoding="utf-8").splitlines():
        if line.startswith("FROM "):
            reference = line.split()[1]
            found[reference.split(":")[0].split("@")[0]] = reference
    return found


def test_docker_images_are_pinned_by_exact_version_and_digest():
    found = images()
    assert {"postgres", "redis", "nginx", "python"} <= set(found), found
    for name, reference in found.items():
        if name == "jianshen-api":  # built from this repository
            continue
        assert PINNED.match(reference), f"{reference}: pin an exact version tag and its digest"
    # The compose database is the major version the tests run against.
    assert found["postgres"].startswith("postgres:15.")
