"""Command line: ``python -m api <command>``.

    migrate                       apply pending migrations, seed the shipped holiday calendars the database lacks
    load-demo [--tokens FILE] [--host H] [--port P] [--scale N [--seed S]]
                                  load the demo data (idempotent), write a ready token per demo role, list the
                                  demo accounts; H:P is where `serve` will listen (the sealed PDFs' links);
                                  --scale N: N more cases over the past year (api/scale.py), the same for a seed
    load-catalog [--dir D] [--check]  validate the catalogue files (api/data/catalog) and load them (idempotent)
    serve [--host H] [--port P] [--demo-tokens FILE]
                                  run the service (uvicorn); a banner says where, once it listens
    export-schema [--output F]    write the GraphQL SDL
    export-manifest [--output F]  write graphql/operations/manifest.json (the persisted operations' ids)
    set-password USERNAME         set a staff member's password (read from stdin; the password policy applies)
    department list               the departments' codes and names
    department secret CODE... [--rotate]
                                  whether a department has an ingest secret; --rotate: a new random one, printed
                                  once, the old one valid for JIANSHEN_INGEST_SECRET_GRACE_SECONDS
    rotate-ingest-secret CODE...  the same as department secret CODE... --rotate
    revoked-seals [--output F]    export the revoked seals (serial → revocation time) for `python -m esign verify --revoked`
    calendar load FILE...         load a year's holiday schedule (国务院办公厅节假日安排) from a JSON file
    calendar show                 list the years the database has
    clocks rebuild                recompute every case's clock row (api/services/clocks.py) from its events
    exchange push --to URL [--since T] [--dry-run]
                                  write projects and cases into the national exchange tables (SPGL_*, DOMAIN.md §13)
                                  of the PostgreSQL database URL (前置库): what changed since the last push to it
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from api.settings import get_settings


async def _with_orm(action):
    from tortoise import Tortoise

    from api.db import config_from_settings

    await Tortoise.init(config=config_from_settings(get_settings()))
    try:
        return await action()
    finally:
        await Tortoise.close_connections()


def cmd_migrate(_args) -> int:
    from api.db import migrate
    from api.services.calendar import seed_bundled_years

    settings = get_settings()
    applied = asyncio.run(migrate(settings.database_url))
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    added = asyncio.run(_with_orm(seed_bundled_years))  # a year added recomputes every clock row with it
    if added:
        print("holiday calendars added: " + ", ".join(map(str, added)))
    filled = asyncio.run(_with_orm(_fill_clocks))
    if filled:
        print(f"case clocks filled: {filled}")
    _build_glyph_store(settings.cjk_glyph_dir)
    return 0


def _build_glyph_store(directory) -> None:
    """The certificate font's glyphs converted once for the machine (esign.fonts.GlyphStore); kept when up to date."""
    from esign.fonts import FontNotFound, build_glyph_store

    try:
        path = build_glyph_store("serif", directory)
    except (FontNotFound, OSError) as error:  # certificates still render, converting their glyphs per process
        print(f"certificate glyphs not stored: {error}", file=sys.stderr)
    else:
        print(f"certificate glyphs: {path}")


async def _fill_clocks() -> int:
    """Clock rows for the cases of a database from before the read model (api/services/clocks.py)."""
    from tortoise.transactions import in_transaction

    from api.services import clocks

    async with in_transaction():
        return await clocks.fill_missing()


def cmd_clocks(_args) -> int:
    """Rebuild every case's clock row from its events, in one transaction."""
    from tortoise.transactions import in_transaction

    from api.services import clocks

    async def rebuild() -> int:
        async with in_transaction():
            return await clocks.rebuild_all()

    print(f"case clocks rebuilt: {asyncio.run(_with_orm(rebuild))}")
    return 0


def cmd_load_demo(args) -> int:
    from api.demo import load_demo

    settings = get_settings()
    if settings.is_production:
        print("refusing to load demo data in production mode", file=sys.stderr)
        return 2
    from api.demo import demo_accounts, demo_accounts_text

    # The sealed PDFs made now print the address `serve` will listen on (issue #12: links follow the port).
    settings = settings.served_at(args.host, args.port)

    async def load() -> tuple[dict[str, str], str]:
        tokens = await load_demo(settings)
        if args.scale:
            import datetime as dt

            from api.scale import load_scale

            made = await load_scale(args.scale, seed=args.seed, now=dt.datetime.now(dt.timezone.utc))
            print(f"--scale {args.scale}: " + ("already loaded" if made is None else
                  f"{made.cases} cases, {made.events} events, {made.ratings} ratings, {made.complaints} complaints"))
        return tokens, demo_accounts_text(await demo_accounts())

    tokens, accounts = asyncio.run(_with_orm(load))
    print(accounts)
    if args.tokens:
        path = Path(args.tokens)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(tokens, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        print(f"demo tokens written to {path}")
    for role, token in tokens.items():
        print(f"{role:12} {token}")
    return 0


def cmd_load_catalog(args) -> int:
    from api.services.catalog import CatalogInvalid, load_catalog, read_catalog

    try:
        catalog = read_catalog(args.dir)
    except CatalogInvalid as invalid:
        for error in invalid.errors:
            print(f"error: {error}", file=sys.stderr)
        print(f"{len(invalid.errors)} error(s); nothing loaded", file=sys.stderr)
        return 1
    if args.check:
        print(f"catalogue valid: {len(catalog.departments)} departments, {len(catalog.items)} items, "
              f"{len(catalog.templates)} templates")
        return 0
    from tortoise.exceptions import IntegrityError

    try:
        report = asyncio.run(_with_orm(lambda: load_catalog(catalog)))
    except IntegrityError:  # another load committed the same rows first; this one changed nothing
        print("another load-catalog ran at the same time; nothing loaded by this one: run it again", file=sys.stderr)
        return 1
    print(f"loaded: {report.departments} departments, {report.items} items, {report.templates} templates; "
          f"{report.new_guide_versions} new guide version(s)")
    return 0


def cmd_serve(args) -> int:
    import uvicorn

    from api.app import create_app

    # Unset in development, the public base URL is the address served (issue #12); production must set it.
    settings = get_settings().served_at(args.host, args.port)
    # A WebSocket frame is capped like a POST body (issue #10): uvicorn closes the connection with 1009 past it.
    # uvicorn would believe X-Forwarded-For from 127.0.0.1 by default: anyone on the host could pick the address the
    # rate limits count. Only the proxies the operator names are believed (JIANSHEN_FORWARDED_ALLOW_IPS).
    forwarded = settings.forwarded_allow_ips.strip()
    # log_config=None: uvicorn's own lines go through the JSON handlers create_app set up (api/logs.py), not its
    # plain-text dictConfig; from WARNING up (its INFO lines repeat every WebSocket's path and the client address).
    config = uvicorn.Config(
        create_app(settings, warm_up=True), host=args.host, port=args.port, log_level="warning", access_log=False, log_config=None,
        ws_max_size=settings.graphql_max_body_bytes,
        proxy_headers=bool(forwarded), forwarded_allow_ips=forwarded or None,
    )

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            if self.started:  # listening: the banner is the last thing the console shows (issue #12)
                import logging
                import os

                logging.getLogger("jianshen").info("serving", extra={"fields": {
                    "host": args.host, "port": args.port, "pid": os.getpid(), "env": settings.env,
                    "base_url": settings.base_url,
                }})
                if not settings.is_production:  # for a person at a terminal; production's stdout stays JSON only
                    print(banner(settings, args), flush=True)

    try:
        Server(config).run()
    except KeyboardInterrupt:  # Ctrl+C: uvicorn has shut down and re-raised the signal; no traceback for it
        return 130
    return 0


def banner(settings, args) -> str:
    base = settings.base_url
    lines = [
        "",
        "=" * 72,
        f"  Jianshen is serving on {args.host}:{args.port}",
        f"  GraphQL{' and GraphiQL' if settings.graphiql_enabled else ''}: {base}/graphql",
        f"  Certificate check (核验): {base}/verify",
        f"  Dashboard (督察看板): {base}/dashboard",
    ]
    if args.demo_tokens:
        lines += [
            f"  Tokens, one per role: {args.demo_tokens} (header Authorization: Bearer <token>)",
            "  Sign in as: staff demo.clerk, demo.approver, demo.supervisor (staffLogin, password "
            f"{_demo_password()}); WeChat dev:demo.applicant, dev:demo.citizen (loginWithWechat)",
            "  Every account and the cases worth trying: printed by load-demo above, and in README.md",
            f"  Dashboard: sign in as demo.supervisor (password {_demo_password()}) at {base}/dashboard",
        ]
    if settings.log_file is not None:
        lines.append(f"  Logs: {settings.log_file} (console: {settings.console_log_level or settings.log_level} and up)")
    lines += ["  Stop with Ctrl+C", "=" * 72]
    return "\n".join(lines)


def _demo_password() -> str:
    from api.domain.accounts import DEMO_STAFF_PASSWORD

    return DEMO_STAFF_PASSWORD


def cmd_export_manifest(args) -> int:
    from api.schema.trusted import manifest_text

    text = manifest_text()
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def cmd_export_schema(args) -> int:
    from api.schema import export_sdl

    sdl = export_sdl()
    if args.output:
        Path(args.output).write_text(sdl, encoding="utf-8")
        print(f"SDL written to {args.output}")
    else:
        sys.stdout.write(sdl)
    return 0


def cmd_revoked_seals(args) -> int:
    """The revocation list the offline verifier takes: a signature made after its seal's revocation is invalid."""
    from api.services.seals import revoked_seals

    revoked = asyncio.run(_with_orm(revoked_seals))
    text = json.dumps({hex(serial): moment.isoformat() for serial, moment in sorted(revoked.items())}, indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"{len(revoked)} revoked seal(s) written to {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_set_password(args) -> int:
    import getpass

    from api.domain.errors import DomainError
    from api.models import User
    from api.services.accounts import set_password

    password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")

    async def run() -> str | None:
        user = await User.get_or_none(username=args.username.strip().lower())
        if user is None or not user.role.is_staff:
            return f"no staff member with the username {args.username!r}"
        try:
            await set_password(user, password)
        except DomainError as error:
            return error.message
        return None

    problem = asyncio.run(_with_orm(run))
    if problem:
        print(problem, file=sys.stderr)
        return 1
    print("password set")
    return 0


def cmd_department_secret(args) -> int:
    """A department's HMAC key for POST /ingest/events. ``--rotate``: a new random key, printed once (``CODE SECRET``
    a line) for its system's configuration; the old one stays valid for JIANSHEN_INGEST_SECRET_GRACE_SECONDS.
    Without ``--rotate``: whether a key is set and until when the previous one is accepted (never the keys)."""
    import datetime as dt

    from api.models import Department
    from api.services.ingest import rotate_ingest_secret

    settings = get_settings()

    async def run() -> list[str]:
        missing = []
        now = dt.datetime.now(dt.timezone.utc)
        for code in args.codes:
            if args.rotate:
                secret = await rotate_ingest_secret(code, now=now, grace_seconds=settings.ingest_secret_grace_seconds)
                if secret is None:
                    missing.append(code)
                    continue
                print(f"{code} {secret}")
                department = await Department.get(code=code)
                until = department.previous_ingest_secret_until
                print(f"{code}: the previous secret " + (f"is accepted until {until.isoformat()}" if until else
                      "no longer works"), file=sys.stderr)
                continue
            department = await Department.get_or_none(code=code)
            if department is None:
                missing.append(code)
                continue
            state = "a secret is set" if (department.ingest_secret or "").strip() else "no secret: pushes are refused"
            until = department.previous_ingest_secret_until
            if until is not None and until > now:
                state += f"; the previous one is accepted until {until.isoformat()}"
            print(f"{code} {department.name}: {state}")
        return missing

    missing = asyncio.run(_with_orm(run))
    if missing:
        print(f"no department with the code(s) {' '.join(missing)}", file=sys.stderr)
        return 1
    return 0


def cmd_department_list(_args) -> int:
    from api.models import Department

    async def run() -> None:
        for department in await Department.all().order_by("code"):
            print(f"{department.code:10} {department.name}")

    asyncio.run(_with_orm(run))
    return 0


def cmd_rotate_ingest_secret(args) -> int:
    """The older spelling of ``department secret CODE... --rotate`` (issue #10), kept for scripts that use it."""
    args.rotate = True
    return cmd_department_secret(args)


def cmd_calendar(args) -> int:
    from api.domain.calendar import CalendarDataError
    from api.services.calendar import read_year_file, store_years

    async def load() -> None:
        schedules = [read_year_file(Path(name)) for name in args.files]
        await store_years(schedules, replace=True)  # one transaction, with every case's clock row recomputed
        for schedule in schedules:
            print(f"{schedule.year}: {len(schedule.holidays)} holidays, {len(schedule.workdays)} make-up working days")

    async def show() -> None:
        from api.models import CalendarYear

        for row in await CalendarYear.all().order_by("year"):
            print(f"{row.year}  {row.source}  (loaded {row.loaded_at:%Y-%m-%d %H:%M})")

    try:
        asyncio.run(_with_orm(load if args.calendar_command == "load" else show))
    except CalendarDataError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


def cmd_exchange_push(args) -> int:
    import datetime as dt

    from api.services.exchange import push

    url = args.to or get_settings().exchange_url
    if not url:
        print("no exchange database: give --to postgres://… or set JIANSHEN_EXCHANGE_URL", file=sys.stderr)
        return 2
    since = None
    if args.since:
        try:
            since = dt.datetime.fromisoformat(args.since)
        except ValueError:
            print(f"--since: not an ISO date or time: {args.since!r}", file=sys.stderr)
            return 2
        if since.tzinfo is None:
            since = since.replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))  # a local (Beijing) time
    import asyncpg

    try:
        report = asyncio.run(_with_orm(lambda: push(url, since=since, dry_run=args.dry_run)))
    except (OSError, ValueError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        print(f"the exchange database could not be written, nothing pushed: {error}", file=sys.stderr)
        return 1
    print(report.summary())
    if args.dry_run:
        for table, rows in report.rows.items():
            for row in rows:
                print(f"{table} {row['DFSJZJ']}")
    return 1 if report.failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api", description="Jianshen (建审) service")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply pending migrations").set_defaults(func=cmd_migrate)
    demo = sub.add_parser("load-demo", help="load demo data and write demo tokens")
    demo.add_argument("--tokens", help="write the tokens to this JSON file")
    demo.add_argument("--host", default="127.0.0.1", help="the address `serve` will listen on (links in the PDFs)")
    demo.add_argument("--port", type=int, default=8000, help="the port `serve` will listen on (links in the PDFs)")
    demo.add_argument("--scale", type=int, default=0, metavar="N", help="also generate N cases over the past year")
    demo.add_argument("--seed", type=int, default=14, help="the generator's seed (--scale): the same seed, the same cases")
    demo.set_defaults(func=cmd_load_demo)
    catalog = sub.add_parser("load-catalog", help="validate and load the catalogue files")
    catalog.add_argument("--dir", help="the catalogue folder (default: the shipped api/data/catalog)")
    catalog.add_argument("--check", action="store_true", help="only validate, write nothing")
    catalog.set_defaults(func=cmd_load_catalog)
    serve = sub.add_parser("serve", help="run the service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--demo-tokens", help="the demo's tokens file, named in the start-up banner")
    serve.set_defaults(func=cmd_serve)
    export = sub.add_parser("export-schema", help="write the GraphQL SDL")
    export.add_argument("--output")
    export.set_defaults(func=cmd_export_schema)
    manifest = sub.add_parser("export-manifest", help="write the persisted operations' manifest")
    manifest.add_argument("--output")
    manifest.set_defaults(func=cmd_export_manifest)
    revoked = sub.add_parser("revoked-seals", help="export the revoked seals for python -m esign verify --revoked")
    revoked.add_argument("--output")
    revoked.set_defaults(func=cmd_revoked_seals)
    password = sub.add_parser("set-password", help="set a staff member's password (from stdin)")
    password.add_argument("username")
    password.set_defaults(func=cmd_set_password)
    department = sub.add_parser("department", help="departments: list, ingest secrets")
    department_sub = department.add_subparsers(dest="department_command", required=True)
    department_sub.add_parser("list", help="the departments' codes and names").set_defaults(func=cmd_department_list)
    secret = department_sub.add_parser("secret", help="a department's ingest secret: state, or --rotate")
    secret.add_argument("codes", nargs="+", metavar="CODE")
    secret.add_argument("--rotate", action="store_true", help="give a new random secret, printed once")
    secret.set_defaults(func=cmd_department_secret)
    rotate = sub.add_parser("rotate-ingest-secret", help="= department secret CODE... --rotate")
    rotate.add_argument("codes", nargs="+", metavar="CODE")
    rotate.set_defaults(func=cmd_rotate_ingest_secret)
    calendar = sub.add_parser("calendar", help="holiday calendars")
    calendar_sub = calendar.add_subparsers(dest="calendar_command", required=True)
    load = calendar_sub.add_parser("load", help="load year files (JSON)")
    load.add_argument("files", nargs="+")
    calendar_sub.add_parser("show", help="list loaded years")
    calendar.set_defaults(func=cmd_calendar)
    clocks_parser = sub.add_parser("clocks", help="the cases' clock rows (read model)")
    clocks_sub = clocks_parser.add_subparsers(dest="clocks_command", required=True)
    clocks_sub.add_parser("rebuild", help="recompute every row from the events").set_defaults(func=cmd_clocks)
    exchange = sub.add_parser("exchange", help="the national data-sharing exchange (前置库)")
    exchange_sub = exchange.add_subparsers(dest="exchange_command", required=True)
    push = exchange_sub.add_parser("push", help="push what changed since the last push")
    push.add_argument("--to", help="the exchange database, postgres://… (default: JIANSHEN_EXCHANGE_URL)")
    push.add_argument("--since", help="push everything recorded since this ISO time instead of the watermark")
    push.add_argument("--dry-run", action="store_true", help="write nothing; print what would be written")
    push.set_defaults(func=cmd_exchange_push)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
