"""Benchmark: messages answered per second, and p50/p99 of ``sendMessage`` over HTTP against a served process.

    .venv/bin/python bench/conversation.py [--seconds 10] [--concurrency 16] [--no-write]

What it does, in one run:
1. migrates a throw-away SQLite database (or ``--database-url``) and loads the demo: the catalogue with every item's
   service guide (the corpus the assistant answers from), the demo projects, cases, certificates and complaints;
2. makes ``--concurrency`` citizens and applicants of the demo organisation (each with a session and a token: one
   conversation each, as in real use, where a person's sends take turns on that person's conversation only);
3. starts the real service (``python -m api serve``, one uvicorn process, JSON request logs to a file, the
   per-minute message limit lifted) and drives it with one keep-alive HTTP/1.1 client per person, each sending
   questions people actually ask (guides, progress, certificates, complaints, 转人工) with a fresh clientMessageId,
   for ``--warmup`` + ``--seconds`` seconds;
4. reports messages answered per second (each is one stored USER message and one stored ASSISTANT answer, in one
   transaction) and the latency of ``sendMessage``; writes them to docs/PERFORMANCE.md.

Everything runs on 127.0.0.1 and stops by itself. The load client is bench/progress.py's minimal HTTP/1.1 client.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._report import PERFORMANCE_MD, machine, write_section  # noqa: E402
from bench.progress import isolated, one_exchange, request_bytes, start_server, stop  # noqa: E402

BEGIN, END = "<!-- bench/conversation.py writes between these markers -->", "<!-- /bench/conversation.py -->"
MUTATION = (ROOT / "graphql" / "operations" / "SendMessage.graphql").read_text(encoding="utf-8")
QUESTIONS = [
    "供水报装需要什么材料", "环评要多久", "我的证照", "我要投诉", "转人工", "消防怎么办", "施工许可办到哪了",
    "有没有快超期的", "规划许可证怎么办", "排水许可收费吗", "人防在哪办", "我的项目到哪一步了", "施工证需要什么条件",
    "规划许可证下载", "我想提个建议", "办事流程是什么", "今天天气怎么样",
]


async def prepare(database_url: str, workdir: Path, people: int) -> list[str]:
    """Migrate, load the demo, make ``people`` users with sessions; their access tokens (half applicants of the demo
    organisation, so progress and certificate questions find something, half citizens)."""
    from tortoise import Tortoise
    from tortoise.backends.base.executor import EXECUTOR_CACHE

    from api.db import config_from_settings, migrate
    from api.demo import load_demo
    from api.domain.accounts import Role
    from api.models import LoginSession, User
    from api.services.tokens import issue_access_token
    from api.settings import Settings

    EXECUTOR_CACHE.clear()
    paths = {key.removeprefix("JIANSHEN_").lower(): value for key, value in isolated(workdir).items()}
    settings = Settings(database_url=database_url, **paths)
    await migrate(database_url)
    await Tortoise.init(config=config_from_settings(settings))
    try:
        await load_demo(settings, pdf_limit=None)
        applicant = await User.get(username="demo.applicant")
        tokens = []
        for n in range(people):
            role = Role.APPLICANT if n % 2 == 0 else Role.CITIZEN
            user = applicant if role is Role.APPLICANT and n == 0 else await User.create(
                display_name=f"压测{n}", role=role,
                organization_id=applicant.organization_id if role is Role.APPLICANT else None,
                phone=applicant.phone if role is Role.APPLICANT else None,
                phone_verified_at=applicant.phone_verified_at if role is Role.APPLICANT else None,
            )
            session = await LoginSession.create(id=uuid.uuid4(), user=user, kind="BENCH",
                                                created_at=dt.datetime.now(dt.timezone.utc))
            tokens.append(issue_access_token(settings, user_id=user.id, role=role.value, session_id=str(session.id),
                                             ttl=3600))
        return tokens
    finally:
        await Tortoise.close_connections()


def payload(n: int, person: int) -> bytes:
    text = QUESTIONS[(n + person) % len(QUESTIONS)]
    return json.dumps({"query": MUTATION, "operationName": "SendMessage",
                       "variables": {"input": {"text": text, "clientMessageId": f"b-{person}-{n}"}}}).encode()


async def drive(port: int, tokens: list[str], *, warmup: float, seconds: float) -> dict:
    latencies: list[float] = []
    failures: list[str] = []
    started = time.perf_counter()
    measure_from = started + warmup
    stop_at = measure_from + seconds

    async def person(index: int, token: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        n = 0
        try:
            while True:
                t0 = time.perf_counter()
                if t0 >= stop_at:
                    return
                status, body = await one_exchange(reader, writer, request_bytes(port, token, payload(n, index)))
                t1 = time.perf_counter()
                n += 1
                ok = status == 200 and b'"errors":[]' in body and b'"ASSISTANT"' in body
                if t0 >= measure_from:
                    latencies.append(t1 - t0)
                    if not ok:
                        failures.append(body[:300].decode("utf-8", "replace"))
        finally:
            writer.close()

    await asyncio.gather(*(person(i, t) for i, t in enumerate(tokens)))
    latencies.sort()
    return {
        "messages": len(latencies),
        "failures": failures,
        "rate": len(latencies) / seconds,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


def report(result: dict, *, args: argparse.Namespace, database: str) -> str:
    return (
        f"Measured {dt.date.today():%Y-%m-%d} on {machine()}; {database}; one uvicorn process; {args.concurrency} people "
        f"sending at once (one keep-alive client each, the next message when the answer arrives), "
        f"{args.warmup:g} s warm-up + {args.seconds:g} s measured; the demo catalogue's guides as the corpus; "
        f"{len(QUESTIONS)} questions in turn, each with a fresh clientMessageId. A message answered = the USER "
        "message and the ASSISTANT answer stored in one transaction and returned with their cards.\n\n"
        "| messages answered/s | sendMessage p50 ms | p99 ms | messages | refused |\n"
        "| ---: | ---: | ---: | ---: | ---: |\n"
        f"| {result['rate']:.0f} | {result['p50_ms']:.1f} | {result['p99_ms']:.1f} | {result['messages']} "
        f"| {len(result['failures'])} |\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--database-url", help="default: a throw-away SQLite file")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/PERFORMANCE.md alone")
    args = parser.parse_args()
    if not 0 < args.seconds <= 120 or not 0 < args.concurrency <= 256:
        parser.error("--seconds must be in (0, 120] and --concurrency in (0, 256]")
    workdir = Path(tempfile.mkdtemp(prefix="jianshen-bench-conversation-"))
    processes: list[subprocess.Popen] = []
    try:
        database_url = args.database_url or f"sqlite://{workdir}/bench.sqlite3"
        tokens = asyncio.run(prepare(database_url, workdir, args.concurrency))
        env = {**os.environ, "JIANSHEN_DATABASE_URL": database_url, **isolated(workdir),
               "JIANSHEN_CONVERSATION_MESSAGES_PER_MINUTE": "1000000"}
        env.pop("JIANSHEN_REDIS_URL", None)
        process, port = start_server(["-m", "api", "serve", "--host", "127.0.0.1"], env, workdir / "service.log")
        processes.append(process)
        result = asyncio.run(drive(port, tokens, warmup=args.warmup, seconds=args.seconds))
        if result["failures"]:
            print(f"{len(result['failures'])} refused, e.g.: {result['failures'][0]}", file=sys.stderr)
        database = "SQLite" if database_url.startswith("sqlite") else "PostgreSQL"
        text = report(result, args=args, database=database)
        print(text)
        if not args.no_write:
            write_section(BEGIN, END, text)
            print(f"written to {PERFORMANCE_MD.relative_to(ROOT)}")
        return 1 if result["failures"] else 0
    finally:
        for process in processes:
            stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
