"""The benchmark scripts' cheap parts still run (the benchmarks themselves are not part of the test suite)."""

from __future__ import annotations

import json

import httpx


async def test_graphql_core_floor_executes_the_progress_document(tmp_path):
    """bench/progress.py's floor: graphql-core runs ProjectProgress (validated against graphql/schema.graphql) over an
    answer held as dicts, and gives that answer back (each bench run also compares it with the service's answer)."""
    from bench.progress import floor_app

    answer = {"data": {"project": {
        "id": "UHJvamVjdDox", "code": "P1", "name": "海景花园", "address": "珠海市", "investment": 1.5, "light": "GREEN",
        "currentStage": 1, "processType": {"code": 1, "name": "政府投资"}, "organization": {"name": "甲", "uscc": "1"},
        "buildings": [], "stages": [],
    }}}
    body = tmp_path / "body.json"
    body.write_text(json.dumps(answer, ensure_ascii=False), encoding="utf-8")
    transport = httpx.ASGITransport(app=floor_app(str(body)))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        response = await client.post("/graphql", json={"query": "", "variables": {"code": "P1"}})
    assert response.status_code == 200
    assert response.json() == answer


def test_certificate_bench_issues_distinct_certificates():
    from bench.certificates import documents

    docs = list(documents(3))
    assert len({d.fields[1][1] for d in docs}) == 3  # each its own holder: the glyph cache meets new characters
