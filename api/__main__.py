"""Command line: ``python -m api <command>``.

    migrate                       apply pending migrations, seed the shipped holiday calendars the database lacks
    load-demo [--tokens FILE]     load the demo data (idempotent) and write a ready token per demo role
    load-catalog [--dir D] [--check]  validate the catalogue files (api/data/catalog) and load them (idempotent)
    serve [--host H] [--port P]   run the service (uvicorn)
    export-schema [--output F]    write the GraphQL SDL
    export-manifest [--output F]  write graphql/operations/manifest.json (the persisted operations' ids)
    set-password USERNAME         set a staff member's password (read from stdin; the password policy applies)
    rotate-ingest-secret CODE...  give departments new random ingest secrets, printed once
    revoked-seals [--output F]    export the revoked seals (serial → revocation time) for `python -m esign verify --revoked`
    calendar load FILE...         load a year's holiday schedule (国务院办公厅节假日安排) from a JSON file
    calendar show                 list the years the database has
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
    added = asyncio.run(_with_orm(seed_bundled_years))
    if added:
        print("holiday calendars added: " + ", ".join(map(str, added)))
    return 0


def cmd_load_demo(args) -> int:
    from api.demo import load_demo

    settings = get_settings()
    if settings.is_production:
        print("refusing to load demo data in production mode", file=sys.stderr)
        return 2
    tokens = asyncio.run(_with_orm(lambda: load_demo(settings)))
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

    settings = get_settings()
    print(f"GraphQL: http://{args.host}:{args.port}/graphql", flush=True)
    # A WebSocket frame is capped like a POST body (issue #10): uvicorn closes the connection with 1009 past it.
    # uvicorn would believe X-Forwarded-For from 127.0.0.1 by default: anyone on the host could pick the address the
    # rate limits count. Only the proxies the operator names are believed (JIANSHEN_FORWARDED_ALLOW_IPS).
    forwarded = settings.forwarded_allow_ips.strip()
    uvicorn.run(
        create_app(settings), host=args.host, port=args.port, log_level="warning", access_log=False,
        ws_max_size=settings.graphql_max_body_bytes,
        proxy_headers=bool(forwarded), forwarded_allow_ips=forwarded or None,
    )
    return 0


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


def cmd_rotate_ingest_secret(args) -> int:
    """Departments' new HMAC keys for POST /ingest/events: random, printed once (``CODE SECRET`` a line) for their
    systems' configuration. The old key stops working at once."""
    import secrets

    from api.models import Department

    async def run() -> list[str]:
        missing = []
        for code in args.codes:
            secret = secrets.token_urlsafe(48)  # 64 characters, within the column's 128
            if await Department.filter(code=code).update(ingest_secret=secret):
                print(f"{code} {secret}")
            else:
                missing.append(code)
        return missing

    missing = asyncio.run(_with_orm(run))
    if missing:
        print(f"no department with the code(s) {' '.join(missing)}", file=sys.stderr)
        return 1
    return 0


def cmd_calendar(args) -> int:
    from api.domain.calendar import CalendarDataError
    from api.services.calendar import read_year_file, store_year

    async def load() -> None:
        for name in args.files:
            schedule = read_year_file(Path(name))
            await store_year(schedule, replace=True)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api", description="Jianshen (建审) service")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply pending migrations").set_defaults(func=cmd_migrate)
    demo = sub.add_parser("load-demo", help="load demo data and write demo tokens")
    demo.add_argument("--tokens", help="write the tokens to this JSON file")
    demo.set_defaults(func=cmd_load_demo)
    catalog = sub.add_parser("load-catalog", help="validate and load the catalogue files")
    catalog.add_argument("--dir", help="the catalogue folder (default: the shipped api/data/catalog)")
    catalog.add_argument("--check", action="store_true", help="only validate, write nothing")
    catalog.set_defaults(func=cmd_load_catalog)
    serve = sub.add_parser("serve", help="run the service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
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
    rotate = sub.add_parser("rotate-ingest-secret", help="give departments new ingest secrets (printed once)")
    rotate.add_argument("codes", nargs="+", metavar="CODE")
    rotate.set_defaults(func=cmd_rotate_ingest_secret)
    calendar = sub.add_parser("calendar", help="holiday calendars")
    calendar_sub = calendar.add_subparsers(dest="calendar_command", required=True)
    load = calendar_sub.add_parser("load", help="load year files (JSON)")
    load.add_argument("files", nargs="+")
    calendar_sub.add_parser("show", help="list loaded years")
    calendar.set_defaults(func=cmd_calendar)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
