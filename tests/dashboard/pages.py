"""Helpers of the dashboard tests: signing in through the page's own form, reading figures off a page."""

from __future__ import annotations

import re
from html import unescape

import httpx

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, html[:2000]
    return unescape(found.group(1))


async def sign_in(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    """GET the sign-in page (its CSRF cookie and token), then POST the form as a browser would."""
    page = await client.get("/dashboard/login")
    assert page.status_code == 200, page.text
    return await client.post(
        "/dashboard/login", data={"csrf": csrf_of(page.text), "username": username, "password": password}
    )


def figures(html: str, table_id: str) -> dict[str, dict[str, str]]:
    """{row key: {field: raw value}} of a figures table (the data-value of each cell)."""
    table = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    out = {}
    for key, row in re.findall(r'<tr data-key="([^"]*)"[^>]*>(.*?)</tr>', table, re.S):
        out[unescape(key)] = {f: unescape(v) for f, v in re.findall(r'data-field="(\w+)" data-value="([^"]*)"', row)}
    return out
