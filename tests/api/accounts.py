"""Helpers of the account tests: send the mini-program's operations with a bearer token, log in through the fake."""

from __future__ import annotations

import pytest

from api.settings import Settings
from tests.conftest import operation


@pytest.fixture
def settings(database_url: str, tmp_path, fake_wechat) -> Settings:
    """The app talks to the fake WeChat server (tests/fakes/wechat.py)."""
    return Settings(database_url=database_url, upload_dir=tmp_path / "uploads", **fake_wechat.settings_overrides())


async def send(client, name: str, variables: dict | None = None, *, token: str | None = None, query: str | None = None):
    """POST one operation; returns the HTTP response (a bad token is a 401 before GraphQL)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await client.post(
        "/graphql", json={"query": query or operation(name), "variables": variables or {}}, headers=headers
    )


async def data(client, name: str, variables: dict | None = None, *, token: str | None = None, query: str | None = None):
    response = await send(client, name, variables, token=token, query=query)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


async def login(client, fake, openid: str | None = None) -> dict:
    code = fake.issue_login_code(openid)
    payload = (await data(client, "LoginWithWechat", {"input": {"code": code}}))["loginWithWechat"]
    assert payload["errors"] == [], payload["errors"]
    return payload


async def viewer(client, token: str):
    response = await send(client, "Viewer", token=token)
    return response.status_code, response.json()
