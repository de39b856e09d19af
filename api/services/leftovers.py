"""Production refuses to start on a database that still holds what ``make demo`` left (issue #10, item 18).

A development database promoted to production would keep two published secrets: the departments' ingest secrets
``dev-ingest-secret-<code>`` (anyone could push case events in a department's name) and the demo staff password of
api/demo.py (anyone could sign in as a demo approver or admin).

Cost: telling whether a stored argon2 hash holds the demo password costs one argon2 verification (~0.1 s of CPU and
64 MiB each), so checking every staff account would make each start grow with the staff. It does not need to: the
password policy refuses the demo password (api/domain/accounts.py), so only ``load-demo`` can give it to an account,
and ``load-demo`` gives it only to the demo's own staff usernames, all with one shared hash. The check verifies the
distinct hashes of accounts holding those usernames: at most one verification per demo staff account (13), one for
a freshly loaded demo, none on a database the demo never touched; they run in threads, off the event loop.
"""

from __future__ import annotations

import asyncio

from api.models import Department, User
from api.settings import DEV_INGEST_SECRET_PREFIX


class DevelopmentLeftovers(RuntimeError):
    """The database holds development secrets; the message says what to change."""


def demo_staff_usernames() -> list[str]:
    from api.demo import USERS  # imported here: the demo module is large and needed only for this check

    return [username for username, _, role, _ in USERS if role.is_staff]


async def development_leftovers() -> list[str]:
    """What to change before this database may serve production, one line each (empty: nothing)."""
    from api.domain.accounts import DEMO_STAFF_PASSWORD
    from api.services.accounts import _verify as holds_password

    problems = []
    departments = await Department.filter(ingest_secret__startswith=DEV_INGEST_SECRET_PREFIX).order_by("code")
    if departments:
        codes = " ".join(d.code for d in departments)
        problems.append(
            f"departments {codes} still have a development ingest secret ({DEV_INGEST_SECRET_PREFIX}-*): run "
            f"`python -m api department secret {codes} --rotate` and configure each new secret in that department's system"
        )
    accounts = await User.filter(username__in=demo_staff_usernames(), password_hash__isnull=False).order_by("username")
    hashes = sorted({user.password_hash for user in accounts})
    verdicts = await asyncio.gather(*(asyncio.to_thread(holds_password, h, DEMO_STAFF_PASSWORD) for h in hashes))
    demo_hashes = {h for h, is_demo in zip(hashes, verdicts) if is_demo}
    holders = [user.username for user in accounts if user.password_hash in demo_hashes]
    if holders:
        problems.append(
            f"staff accounts {' '.join(holders)} still have the demo password: set a new one for each with "
            "`python -m api set-password USERNAME`"
        )
    return problems


async def refuse_development_leftovers() -> None:
    problems = await development_leftovers()
    if problems:
        raise DevelopmentLeftovers(
            "refusing to start in production: the database holds development data: " + "; ".join(problems)
        )
