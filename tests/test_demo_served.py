"""``make demo PORT=…`` as a newcomer runs it (issue #12): the commands of the Makefile's demo target, with a real
``python -m api serve`` on a port that is not 8000.

- links follow the port: downloadUrl, verifyUrl and the sealed PDF's 核验地址 (read with poppler's pdftotext);
- the printed demo accounts name cases each token can act on: the approver's token decides the case listed for it;
- the console is readable: the banner is the last thing the server prints, the request lines go to the log file.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.servers import free_port, stop_process

REPO = Path(__file__).resolve().parent.parent
BANNER_END = "Stop with Ctrl+C"


def make_demo_commands(tmp_path: Path, port: int) -> tuple[dict[str, str], list[list[str]]]:
    """The environment and commands of the Makefile's demo target (its settings, this test's directories)."""
    env = {
        **os.environ,
        "JIANSHEN_ENV": "development",
        "JIANSHEN_DATABASE_URL": f"sqlite://{tmp_path / 'demo.sqlite3'}",
        "JIANSHEN_UPLOAD_DIR": str(tmp_path / "uploads"),
        "JIANSHEN_ESIGN_DIR": str(tmp_path / "esign"),
        "JIANSHEN_CERTIFICATE_DIR": str(tmp_path / "certificates"),
        "JIANSHEN_LOG_FILE": str(tmp_path / "log" / "jianshen.log"),
        "JIANSHEN_CONSOLE_LOG_LEVEL": "WARNING",
    }
    for name in ("JIANSHEN_PUBLIC_BASE_URL", "JIANSHEN_REDIS_URL", "JIANSHEN_LOG_LEVEL"):
        env.pop(name, None)
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "demo: export JIANSHEN_LOG_FILE ?= var/log/" in makefile
    assert "demo: export JIANSHEN_CONSOLE_LOG_LEVEL ?= WARNING" in makefile
    tokens = str(tmp_path / "demo-tokens.json")
    commands = []
    for line in re.findall(r"^\t\$\(PY\) -m api (.+)$", makefile.split("\ndemo:")[-1].split("\n\n")[0], re.M):
        line = line.replace("$(PORT)", str(port)).replace("var/demo-tokens.json", tokens)
        commands.append([sys.executable, "-m", "api", *line.split()])
    assert [c[3] for c in commands] == ["migrate", "load-demo", "serve"], commands
    return env, commands


def test_make_demo_on_another_port_links_accounts_and_console(tmp_path):
    port = free_port()
    env, (migrate, load, serve) = make_demo_commands(tmp_path, port)
    subprocess.run(migrate, cwd=REPO, env=env, check=True, capture_output=True, timeout=300)
    loaded = subprocess.run(load, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr
    tokens = json.loads((tmp_path / "demo-tokens.json").read_text(encoding="utf-8"))

    # Every demo account is printed, with the cases its token can act on.
    printed = loaded.stdout
    for username in ("demo.applicant", "demo.citizen", "demo.clerk", "demo.approver", "demo.approver.nr",
                     "demo.supervisor", "demo.admin"):
        assert f" {username} " in printed, printed
    assert "acceptCase (window) → startCase (approver) → decideCase (approver)" in printed
    tries = re.findall(r"try: (\w+)\((input: \{caseId: \"([\w-]+)\".*\})\)   project", printed)
    arguments = {case_id: argument for _, argument, case_id in tries}
    tries = [(action, case_id) for action, _, case_id in tries]
    decide = [case_id for action, case_id in tries if action == "decideCase"]
    accept = [case_id for action, case_id in tries if action == "acceptCase"]
    start = [case_id for action, case_id in tries if action == "startCase"]
    assert decide and accept and start, printed

    console = (tmp_path / "console.txt").open("w+", encoding="utf-8")
    server = subprocess.Popen(serve, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=console, text=True)
    try:
        banner = []
        while BANNER_END not in "".join(banner):  # printed once the server listens
            line = server.stdout.readline()
            assert line, f"the server stopped: {(tmp_path / 'console.txt').read_text(encoding='utf-8')[-3000:]}"
            banner.append(line)
        banner.append(server.stdout.readline())  # the closing rule
        base = f"http://127.0.0.1:{port}"
        text = "".join(banner)
        assert f"{base}/graphql" in text and f"{base}/verify" in text and "demo-tokens.json" in text, text

        def gql(role: str, query: str, variables: dict | None = None) -> dict:
            answer = httpx.post(f"{base}/graphql", json={"query": query, "variables": variables or {}},
                                headers={"Authorization": f"Bearer {tokens[role]}"}, timeout=60)
            assert answer.status_code == 200 and "errors" not in answer.json(), answer.text
            return answer.json()["data"]

        # 1. Links follow the port, in the API and printed in the sealed PDF (with its QR code's target).
        certificates = gql("APPLICANT", "{ certificates(first: 3) { nodes { identifier verifyUrl downloadUrl } } }")
        nodes = certificates["certificates"]["nodes"]
        assert nodes
        for node in nodes:
            assert node["verifyUrl"].startswith(f"{base}/verify/{node['identifier']}?c="), node
            assert node["downloadUrl"].startswith(f"{base}/certificates/"), node
        pdf = httpx.get(nodes[0]["downloadUrl"], timeout=120)
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF"), pdf.text[:500]
        (tmp_path / "c.pdf").write_bytes(pdf.content)
        words = subprocess.run(["pdftotext", "-layout", str(tmp_path / "c.pdf"), "-"], capture_output=True,
                               text=True, check=True).stdout
        assert f"核验地址：{base}/verify" in words.replace(" ", ""), words
        assert "localhost:8000" not in words

        # 2. Each listed case works with its role's token, in the order a case goes.
        action = ("mutation($id: ID!) {{ {name}(input: {{caseId: $id}}) {{ errors {{ code message }} "
                  "case {{ state }} }} }}")
        accepted = gql("WINDOW_CLERK", action.format(name="acceptCase"), {"id": accept[0]})["acceptCase"]
        assert accepted["errors"] == [] and accepted["case"]["state"] == "ACCEPTED", accepted
        started = gql("APPROVER", action.format(name="startCase"), {"id": start[0]})["startCase"]
        assert started["errors"] == [] and started["case"]["state"] == "IN_PROGRESS", started
        decided = gql(  # exactly as printed
            "APPROVER", f"mutation {{ decideCase({arguments[decide[0]]}) {{ errors {{ code message }} case {{ state }} }} }}"
        )["decideCase"]
        assert decided["errors"] == [] and decided["case"]["state"] == "APPROVED", decided
        withdraw = [case_id for action, case_id in tries if action == "withdrawCase"]
        withdrawn = gql(
            "APPLICANT", f"mutation {{ withdrawCase({arguments[withdraw[0]]}) {{ errors {{ code message }} case {{ state }} }} }}"
        )["withdrawCase"]
        assert withdrawn["errors"] == [] and withdrawn["case"]["state"] == "WITHDRAWN", withdrawn

        # 4. docs/INGEST.md "Trying it on the demo", its commands as written (only the port differs).
        ingest_example(env, base, gql)
    finally:
        stop_process(server)
        rest = server.stdout.read()
        server.stdout.close()
        console.close()

    # 3. The banner came last on stdout; request lines went to the log file, not to the console.
    assert rest.strip() == "", rest
    log_lines = [json.loads(line) for line in (tmp_path / "log" / "jianshen.log").read_text("utf-8").splitlines()]
    assert any(line["logger"] == "jianshen.request" for line in log_lines)
    on_console = (tmp_path / "console.txt").read_text(encoding="utf-8")
    assert '"jianshen.request"' not in on_console and '"INFO"' not in on_console, on_console[-3000:]


def ingest_example(env: dict[str, str], base: str, gql) -> None:
    """The department's history import of docs/INGEST.md against the served demo: a new secret by the documented
    command, then the example script three times; it prints what the document shows, and the bureau's certificate is
    there with its own number, no download here."""
    doc = (REPO / "docs" / "INGEST.md").read_text(encoding="utf-8").split("## Trying it on the demo")[1]
    commands = re.findall(r"^(?:export )?(\S.*?)\s*(?:#.*)?$", doc.split("```sh")[1].split("```")[0], re.M)
    rotate = re.search(r"\$\((.*?) \| awk", commands[0]).group(1).split()
    assert rotate[:3] == [".venv/bin/python", "-m", "api"], commands
    made = subprocess.run([sys.executable, *rotate[1:]], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    secret = made.stdout.split()[1]
    runs = []
    for command in commands[1:]:
        argv = command.split()
        assert argv[:2] == [".venv/bin/python", "examples/ingest_import.py"], command
        done = subprocess.run([sys.executable, *argv[1:], "--url", base], cwd=REPO, capture_output=True, text=True,
                              env={**env, "JIANSHEN_INGEST_SECRET": secret}, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        runs.append(done.stdout)
    shown = doc.split("then prints\none line per event:\n\n```\n")[1].split("```")[0]
    assert runs[0] == shown, runs[0]
    assert runs[1] == shown.replace("dry run: nothing kept", "applied")
    assert runs[2].splitlines()[1:] == [
        " ".join(line.split()[:2] + ["DUPLICATE", "APPROVED"]) for line in shown.splitlines()[1:]]
    query = doc.split("```graphql\n")[1].split("```")[0]
    (edge,) = gql("SUPERVISOR", query)["certificates"]["edges"]
    assert (edge["node"]["number"], edge["node"]["issuedByDepartmentSystem"], edge["node"]["downloadUrl"]) == (
        "用字第440400202610018号", True, None), edge
