"""Real ``python -m notifications.worker`` processes against a fake SMS provider, for the fault test and
``bench/notices.py``: the workers' environment, starting and stopping them, and a batch of notices written through
the service layer.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.fakes.sms import FakeAliyunSms, FakeTencentSms
from tests.notifications.sms_setup import ALIYUN_KEY, SDK_APP_ID, SIGN, TENCENT_KEY

ROOT = Path(__file__).resolve().parents[2]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def fake_provider(provider: str, *, delay: float = 0.0) -> FakeAliyunSms | FakeTencentSms:
    """A fake provider on real time (the workers' clocks are real), not started yet."""
    common = dict(sign_names=(SIGN,), clock=utcnow, delay=delay)
    if provider == "aliyun":
        return FakeAliyunSms(key_id=ALIYUN_KEY[0], secret=ALIYUN_KEY[1], **common)
    return FakeTencentSms(key_id=TENCENT_KEY[0], secret=TENCENT_KEY[1], sdk_app_id=SDK_APP_ID, **common)


def worker_env(provider: str, fake_host: str, database_url: str, redis_url: str) -> dict[str, str]:
    """The settings of a worker, as an operator sets them (``JIANSHEN_*``), pointed at the fake provider."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("JIANSHEN_")}
    env |= {
        "JIANSHEN_DATABASE_URL": database_url,
        "JIANSHEN_REDIS_URL": redis_url,
        "JIANSHEN_SMS_PROVIDER": provider,
        "JIANSHEN_SMS_SIGN_NAME": SIGN,
        "JIANSHEN_SMS_QUIET_HOURS": "",
        "JIANSHEN_SMS_TIMEOUT": "5",
        "JIANSHEN_NOTICE_LEASE_SECONDS": "10",  # the least the settings allow: a dead worker's rows come back soon
        "JIANSHEN_NOTICE_RETRY_BASE_SECONDS": "1",
        "JIANSHEN_NOTICE_SWEEP_SECONDS": "1",
        "JIANSHEN_WORKER_HEALTH_SECONDS": "1",
        "JIANSHEN_LOG_LEVEL": "WARNING",
    }
    if provider == "aliyun":
        env |= {
            "JIANSHEN_ALIYUN_ACCESS_KEY_ID": ALIYUN_KEY[0],
            "JIANSHEN_ALIYUN_ACCESS_KEY_SECRET": ALIYUN_KEY[1],
            "JIANSHEN_ALIYUN_SMS_ENDPOINT": fake_host,
            "JIANSHEN_ALIYUN_SMS_PROTOCOL": "http",
        }
    else:
        env |= {
            "JIANSHEN_TENCENT_SECRET_ID": TENCENT_KEY[0],
            "JIANSHEN_TENCENT_SECRET_KEY": TENCENT_KEY[1],
            "JIANSHEN_TENCENT_SMS_SDK_APP_ID": SDK_APP_ID,
            "JIANSHEN_TENCENT_SMS_ENDPOINT": fake_host,
            "JIANSHEN_TENCENT_SMS_SCHEME": "http",
        }
    return env


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "notifications.worker"],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )


def check_worker(env: dict[str, str]) -> subprocess.CompletedProcess:
    """The worker's liveness check, as docker runs it: ``python -m notifications.worker --check``."""
    return subprocess.run(
        [sys.executable, "-m", "notifications.worker", "--check"],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )


def stop_worker(process: subprocess.Popen) -> None:
    """SIGTERM (arq finishes its jobs), SIGKILL after 10 s. Only this process, by its id."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def write_notices(count: int, tag: str) -> dict[str, int]:
    """``count`` citizens with phones and one notice each, written through the service layer in one transaction (as
    a use case does); returns the idempotency key each notice's SMS must carry → notice id. Tortoise must be set up."""
    from tortoise.transactions import in_transaction

    from api.domain.accounts import Role
    from api.models import User
    from api.services.notices import record_notice
    from notifications.kinds import NoticeKind

    now = utcnow()
    keys: dict[str, int] = {}
    async with in_transaction():
        for n in range(count):
            user = await User.create(display_name=f"市民{n}", role=Role.CITIZEN, phone=f"139{n:08d}",
                                     phone_verified_at=now)
            notice = await record_notice(
                recipient_id=user.id,
                kind=NoticeKind.COMPLAINT_REPLIED,
                source_key=f"{tag}:{n}",
                variables={"complaint_id": f"C{n}", "complaint_title": f"路灯不亮{n}", "department": "市住建局",
                           "replied_at": now},
                now=now,
            )
            keys[f"notice-{notice.id}:{user.id}:sms"] = notice.id
    return keys
