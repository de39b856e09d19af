"""The contract: exported SDL in sync, the mini-program's operations valid, migrations complete, bad documents refused."""

import subprocess
import sys
from pathlib import Path

import pytest
from graphql import build_schema as parse_sdl
from graphql import parse, validate

from api.schema import export_sdl

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = sorted((ROOT / "graphql" / "operations").glob("*.graphql"))


def test_exported_sdl_is_current():
    committed = (ROOT / "graphql" / "schema.graphql").read_text(encoding="utf-8")
    assert committed == export_sdl(), "graphql/schema.graphql is stale: run `make schema`"


@pytest.mark.parametrize("path", OPERATIONS, ids=lambda p: p.stem)
def test_operation_is_valid_against_the_schema(path):
    schema = parse_sdl(export_sdl())
    errors = validate(schema, parse(path.read_text(encoding="utf-8")))
    assert errors == []


def test_models_and_migrations_agree(tmp_path):
    """A model change without its migration fails here (run `make migrations`)."""
    script = f"""
import asyncio
from tortoise.migrations.autodetector import MigrationAutodetector
from tortoise.cli.cli import tortoise_cli_context
from api.db import tortoise_config

async def main():
    config = tortoise_config("sqlite://{tmp_path}/check.sqlite3")
    async with tortoise_cli_context(config) as ctx:
        writers = await MigrationAutodetector(ctx.apps, config["apps"]).changes()
    print("CHANGES", [w.name for w in writers])

asyncio.run(main())
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "CHANGES []" in result.stdout, result.stdout


@pytest.mark.parametrize(
    "document",
    [
        "{ viewer { ",  # syntax error
        "{ nosuchfield }",
        "{ " + " ".join(f"a{i}: viewer {{ role }}" for i in range(40)) + " }",  # too many aliases
        "query { projects { edges { node { stages { cases { project { stages { cases { project { stages { cases "
        "{ project { stages { cases { project { code } } } } } } } } } } } } } } } }",  # too deep
    ],
    ids=["syntax", "unknown-field", "aliases", "depth"],
)
async def test_bad_documents_get_a_clear_error_never_a_500(client, world, document):
    response = await client.post(
        "/graphql", json={"query": document}, headers={"Authorization": f"Bearer {world.token('supervisor')}"}
    )
    assert response.status_code in (200, 400)
    body = response.json()
    assert body["errors"] and body["errors"][0]["message"]
    assert "Traceback" not in response.text


async def test_oversized_document_is_refused(client):
    document = "{ viewer { " + "role " * 5000 + "} }"
    response = await client.post("/graphql", json={"query": document})
    assert response.status_code in (200, 400)
    assert response.json()["errors"]


async def test_get_requests_do_not_run_queries(client):
    response = await client.get("/graphql", params={"query": "{ viewer { role } }"})
    assert response.status_code in (400, 405) or "errors" in response.json()


async def test_validation_is_cached_across_requests(client, world):
    """ValidationCache keys on the rule classes: limiters made per request would miss it every time (a 20% cost)."""
    from strawberry.extensions.validation_cache import _get_validate_cache

    cache = _get_validate_cache(256)
    headers = {"Authorization": f"Bearer {world.token('supervisor')}"}
    document = "query CacheProbe { viewer { role displayName } }"
    await client.post("/graphql", json={"query": document}, headers=headers)
    before = cache.cache_info()
    for n in range(3):  # other variables: other requests, so the response cache does not answer them
        response = await client.post("/graphql", json={"query": document, "variables": {"n": n}}, headers=headers)
        assert response.json()["data"]["viewer"]["role"] == "SUPERVISOR"
    after = cache.cache_info()
    assert (after.hits - before.hits, after.misses - before.misses) == (3, 0)


def test_every_error_code_the_services_use_is_in_the_schema():
    """A code missing from ErrorCode would reach the phone as INVALID_INPUT: the app could not tell the cases apart."""
    import re

    from api.schema.base import ErrorCode

    http_only = {"EMPTY_FILE", "FILE_TOO_LARGE", "UNSUPPORTED_TYPE"}  # POST /uploads answers them itself
    used = set()
    for path in (ROOT / "api").rglob("*.py"):
        used |= set(re.findall(r'DomainError\(\s*"([A-Z_]+)"', path.read_text(encoding="utf-8")))
    assert used - http_only - {code.value for code in ErrorCode} == set()
