"""GraphiQL works offline (issue #12, DESIGN.md §3b): its scripts and styles are vendored from their npm packages
(api/static/graphiql/: SOURCES.md, licences, SHA256SUMS) and served by the service; a headless Chromium with every
outside address blocked loads the page and runs a query, and asks nothing of any other host."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from api.graphiql import PREFIX, STATIC_DIR, VENDORED
from tests.api.test_subscriptions import api_process  # noqa: F401 (fixture)

CHROMIUM = "/usr/bin/chromium"  # Debian's: Playwright's own browser download is unavailable (DESIGN.md §3b)


def test_the_vendored_files_match_their_checksums_and_have_licences():
    listed = {}
    for line in (STATIC_DIR / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, name = line.split(maxsplit=1)
        listed[name] = digest
    present = {str(p.relative_to(STATIC_DIR)) for p in STATIC_DIR.rglob("*") if p.is_file()}
    assert present - {"SHA256SUMS", "SOURCES.md"} == set(listed), "every vendored file is in SHA256SUMS"
    for name, digest in listed.items():
        assert hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest() == digest, name
    sources = (STATIC_DIR / "SOURCES.md").read_text(encoding="utf-8")
    for name in VENDORED.values():
        assert name in listed and f"| {name} |" in sources, name
    for licence in re.findall(r"licenses/[\w.-]+\.LICENSE", sources):
        assert licence in listed, licence


async def test_the_page_names_only_files_the_service_serves(client):
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert urls and not [u for u in urls if not u.startswith(PREFIX) and not u.startswith("data:")], urls
    for url in urls:
        if url.startswith(PREFIX):
            asset = await client.get(url)
            assert asset.status_code == 200, url
            assert asset.content == (STATIC_DIR / url.removeprefix(PREFIX)).read_bytes()
    # The integrity attributes Strawberry published are kept, and the files match them.
    for url, integrity in re.findall(r'(?:src|href)="([^"]+)"\s+integrity="sha384-([^"]+)"', page.text):
        content = (STATIC_DIR / url.removeprefix(PREFIX)).read_bytes()
        assert base64.b64encode(hashlib.sha384(content).digest()).decode() == integrity, url


async def test_graphiql_loads_and_runs_a_query_with_the_network_blocked(world, settings, sqlite_only):
    from playwright.async_api import async_playwright

    token = world.token("supervisor")
    with api_process(settings) as host:
        own = f"http://{host}"
        outside: list[str] = []
        failed: list[str] = []
        async with async_playwright() as playwright:
            # No name resolves except our own loopback address, and every request elsewhere is aborted and recorded.
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True,
                args=["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--no-sandbox"],
            )
            try:
                context = await browser.new_context()

                async def guard(route):
                    url = route.request.url
                    if url.startswith("data:") or urlsplit(url).netloc == host:
                        await route.continue_()
                    else:
                        outside.append(url)
                        await route.abort()

                await context.route("**/*", guard)
                page = await context.new_page()
                page.on("requestfailed", lambda request: failed.append(request.url))
                page.on("pageerror", lambda error: failed.append(f"page error: {error}"))
                query = "{ viewer { displayName role } }"
                headers = json.dumps({"Authorization": f"Bearer {token}"})
                await page.goto(f"{own}/graphql?q={quote(query)}&headers={quote(headers)}", wait_until="load")
                await page.locator(".graphiql-execute-button").click(timeout=30_000)
                result = page.locator(".result-window")
                await result.get_by_text('"SUPERVISOR"').wait_for(timeout=30_000)
                text = await result.inner_text()
            finally:
                await browser.close()
    assert '"role": "SUPERVISOR"' in text, text
    assert outside == [] and failed == [], (outside, failed)


def test_chromium_is_installed_by_the_system_deps_script():
    script = (Path(__file__).resolve().parents[2] / "scripts" / "install-system-deps.sh").read_text(encoding="utf-8")
    assert 'need chromium "chromium' in script
    assert Path(CHROMIUM).exists(), "apt-get install -y chromium (scripts/install-system-deps.sh)"

