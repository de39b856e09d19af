"""ECharts is vendored, not fetched (issue #14, DESIGN.md §3b): api/static/echarts/ holds the file of the npm package
with its licences (SOURCES.md, SHA256SUMS), the service serves it, and the dashboard's pages name no other host."""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path

from api.routes.dashboard import API_DIR, STATIC

ECHARTS = STATIC["/static/echarts"]
REPO = Path(__file__).resolve().parents[2]


def test_the_vendored_files_match_their_checksums_and_have_licences():
    listed = {}
    for line in (ECHARTS / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, name = line.split(maxsplit=1)
        listed[name] = digest
    present = {str(p.relative_to(ECHARTS)) for p in ECHARTS.rglob("*") if p.is_file()}
    assert present - {"SHA256SUMS", "SOURCES.md"} == set(listed), "every vendored file is in SHA256SUMS"
    for name, digest in listed.items():
        assert hashlib.sha256((ECHARTS / name).read_bytes()).hexdigest() == digest, name
    sources = (ECHARTS / "SOURCES.md").read_text(encoding="utf-8")
    for name in listed:
        assert f"| {name} |" in sources, name
    assert {"LICENSE", "NOTICE", "licenses/zrender.LICENSE", "licenses/LICENSE-d3"} <= set(listed)
    assert "Apache License" in (ECHARTS / "LICENSE").read_text(encoding="utf-8")
    head = (ECHARTS / "echarts.min.js").read_bytes()[:2000].decode("utf-8", "replace")
    assert "Licensed to the Apache Software Foundation" in head


def test_the_package_ships_the_templates_and_assets():
    with (REPO / "pyproject.toml").open("rb") as handle:
        globs = tomllib.load(handle)["tool"]["setuptools"]["package-data"]["api"]
    shipped = {p for g in globs for p in API_DIR.glob(g) if p.is_file()}
    for folder in (ECHARTS, STATIC["/static/dashboard"], API_DIR / "templates" / "dashboard"):
        for path in folder.rglob("*"):
            if path.is_file():
                assert path in shipped, path


async def test_the_service_serves_them_and_the_pages_name_no_other_host(client):
    asset = await client.get("/static/echarts/echarts.min.js")
    assert asset.status_code == 200 and asset.content == (ECHARTS / "echarts.min.js").read_bytes()
    assert (await client.get("/static/dashboard/dashboard.js")).status_code == 200
    for template in (API_DIR / "templates" / "dashboard").glob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert not re.search(r"(src|href)=\"(https?:)?//", text), template.name
        assert "<script>" not in text and "style=" not in text, template.name  # the CSP allows neither
