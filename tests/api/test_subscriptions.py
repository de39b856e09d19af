"""The live thread of a complaint over graphql-transport-ws (issue #6): a message posted by one party reaches the other
at once — through the in-process broker in embedded mode, and through Redis pub/sub between two API processes.

The servers are real ``python -m api serve`` processes on 127.0.0.1 sharing the test's database; the test talks to
them with a real WebSocket client. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import websockets

from tests.servers import free_port, port_is_open, stop_process

ROOT = Path(__file__).resolve().parents[2]
SUBSCRIBE = "subscription($id: ID!) { complaintMessages(complaintId: $id) { text fromFiler authorName } }"
POST = """mutation($i: PostComplaintMessageInput!) { postComplaintMessage(input: $i) { message { id } errors { code } } }"""


@contextlib.contextmanager
def api_process(settings, redis_url: str | None = None, extra_env: dict[str, str] | None = None):
    """One API process on a free port, on the test's database; stopped at the end whatever happens."""
    port = free_port()
    env = {
        **os.environ,
        "JIANSHEN_DATABASE_URL": settings.database_url,
        "JIANSHEN_UPLOAD_DIR": str(settings.upload_dir),
        "JIANSHEN_LOG_LEVEL": "WARNING",
    }
    env.pop("JIANSHEN_REDIS_URL", None)
    if redis_url:
        env["JIANSHEN_REDIS_URL"] = redis_url
    env.update(extra_env or {})
    process = subprocess.Popen(
        [sys.executable, "-m", "api", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        for _ in range(300):  # up to 30 s
            if port_is_open(port):
                break
            if process.poll() is not None:
                raise RuntimeError(f"API process exited: {process.stderr.read().decode()[-2000:]}")
            import time

            time.sleep(0.1)
        else:
            raise RuntimeError("API process did not listen in 30 s")
        yield f"127.0.0.1:{port}"
    finally:
        stop_process(process)


@contextlib.asynccontextmanager
async def subscription(host: str, token: str | None, complaint_id: str, init: dict | None = None):
    """A graphql-transport-ws subscription; yields a function that waits (bounded) for the next message.
    ``token`` goes in the Authorization header (None: no header), ``init`` is connection_init's payload."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with websockets.connect(
        f"ws://{host}/graphql", subprotocols=["graphql-transport-ws"], additional_headers=headers, open_timeout=10,
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": init or {}}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert ack["type"] == "connection_ack", ack
        await ws.send(json.dumps({"id": "1", "type": "subscribe",
                                  "payload": {"query": SUBSCRIBE, "variables": {"id": complaint_id}}}))

        async def next_message(timeout: float = 10) -> dict:
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
                if frame["type"] == "ping":
                    await ws.send(json.dumps({"type": "pong"}))
                    continue
                return frame

        yield next_message


async def post(host: str, token: str, complaint_id: str, text: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://{host}", timeout=10) as http:
        response = await http.post(
            "/graphql", json={"query": POST, "variables": {"i": {"complaintId": complaint_id, "text": text}}},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.json()["data"]["postComplaintMessage"]["errors"] == [], response.text


async def assigned_complaint(gql, world) -> str:
    from api.domain.ids import to_global_id

    filed = await gql.op("FileComplaint", {"input": {"kind": "COMPLAINT", "category": "SERVICE_ATTITUDE",
                                                     "text": "窗口人员态度不好"}}, as_user="citizen")
    cid = filed["fileComplaint"]["complaint"]["id"]
    water = to_global_id("Department", world.departments["water"].id)
    assigned = await gql.op("AssignComplaint", {"input": {"complaintId": cid, "departmentId": water}}, as_user="clerk")
    assert assigned["assignComplaint"]["errors"] == []
    return cid


async def wait_subscribed(next_message) -> None:
    """The server subscribes asynchronously after `subscribe`: give it a moment by a bounded round trip."""
    with contextlib.suppress(asyncio.TimeoutError):
        await next_message(timeout=0.5)


async def test_embedded_mode_delivers_to_the_other_party_at_once(gql, world, settings, sqlite_only):
    cid = await assigned_complaint(gql, world)
    with api_process(settings) as host:
        async with subscription(host, world.token("citizen"), cid) as citizen_inbox:
            await wait_subscribed(citizen_inbox)
            await post(host, world.token("water"), cid, "您好，我们已经核实情况")
            frame = await citizen_inbox()
            assert frame["type"] == "next", frame
            assert frame["payload"]["data"]["complaintMessages"] == {
                "text": "您好，我们已经核实情况", "fromFiler": False, "authorName": "珠海市水务局",
            }


async def test_two_processes_deliver_to_each_other_through_redis(gql, world, settings, redis_server):
    cid = await assigned_complaint(gql, world)
    with api_process(settings, redis_server.url) as first, api_process(settings, redis_server.url) as second:
        async with subscription(first, world.token("citizen"), cid) as citizen_inbox, \
                subscription(second, world.token("water"), cid) as water_inbox:
            await wait_subscribed(citizen_inbox)
            await wait_subscribed(water_inbox)
            await post(second, world.token("water"), cid, "已安排专人回访")
            to_citizen = await citizen_inbox()
            assert to_citizen["payload"]["data"]["complaintMessages"]["text"] == "已安排专人回访"
            await post(first, world.token("citizen"), cid, "谢谢")
            for inbox in (water_inbox,):
                frames = [await inbox(), await inbox()]  # the department's own message, then the citizen's
                texts = [f["payload"]["data"]["complaintMessages"]["text"] for f in frames]
                assert texts == ["已安排专人回访", "谢谢"]


async def test_a_stranger_cannot_subscribe(gql, world, settings, sqlite_only):
    from api.domain.accounts import Role

    cid = await assigned_complaint(gql, world)
    await world.add_user("stranger", "钱市民", Role.CITIZEN)
    with api_process(settings) as host:
        async with subscription(host, world.token("stranger"), cid) as inbox:
            frame = await inbox()
            # Refused as if the complaint did not exist; nothing of the thread is sent.
            assert frame["type"] in ("next", "error"), frame
            payload = frame["payload"]
            errors = payload["errors"] if isinstance(payload, dict) else payload
            assert errors[0]["extensions"]["code"] == "NOT_FOUND" and "不存在" in errors[0]["message"]
            assert not (isinstance(payload, dict) and payload.get("data"))


async def test_a_subscription_ends_when_its_viewer_may_no_longer_read(gql, world, settings, sqlite_only):
    """The viewer is read when the subscription begins; a logout (or deactivation, or losing the complaint) before a
    message arrives ends the subscription instead of delivering the thread to someone no longer allowed to read it."""
    cid = await assigned_complaint(gql, world)
    with api_process(settings) as host:
        async with subscription(host, world.token("water"), cid) as water_inbox:
            await wait_subscribed(water_inbox)
            await post(host, world.token("citizen"), cid, "还没有处理吗")
            assert (await water_inbox())["payload"]["data"]["complaintMessages"]["text"] == "还没有处理吗"
            logout = (await gql.op("Logout", {}, as_user="water"))["logout"]
            assert logout["ok"] and logout["errors"] == []
            await post(host, world.token("citizen"), cid, "请尽快答复")
            frame = await water_inbox()
            assert frame["type"] == "complete", frame


async def refusal(host: str, header: str | None, init: dict, protocol: str = "graphql-transport-ws"):
    """How the server ends a connection signed in with ``header`` / ``init``: the close code and reason."""
    headers = {"Authorization": header} if header is not None else {}
    async with websockets.connect(
        f"ws://{host}/graphql", subprotocols=[protocol], additional_headers=headers, open_timeout=10,
    ) as ws:
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send(json.dumps({"type": "connection_init", "payload": init}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:  # nothing may come before the close (no connection_ack)
                frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert frame["type"] not in ("connection_ack", "next"), frame
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def test_a_bad_token_is_refused_not_taken_for_anonymous(gql, world, settings, sqlite_only):
    """Like HTTP's 401: a bad, expired, foreign or ended token closes the socket with 4401, whether it comes in the
    Authorization header or in connection_init's payload (browsers cannot set headers) — many at once."""
    import time

    from api.services.tokens import issue_access_token
    from api.settings import Settings

    good = world.token("citizen")
    citizen = world.users["citizen"]
    expired = issue_access_token(settings, user_id=citizen.id, role=citizen.role.value,
                                 session_id=world.sessions["citizen"], ttl=60, now=int(time.time()) - 3600)
    tampered = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    foreign = issue_access_token(Settings(secret_key="f" * 40), user_id=citizen.id, role=citizen.role.value,
                                 session_id=world.sessions["citizen"])
    ended = world.token("water")
    logout = (await gql.op("Logout", {}, as_user="water"))["logout"]
    assert logout["ok"], logout
    cases = [
        (f"Bearer {expired}", {}),
        (f"Bearer {tampered}", {}),
        ("Bearer not-a-token", {}),
        ("Basic abc", {}),
        (None, {"Authorization": f"Bearer {foreign}"}),
        (None, {"authorization": "Bearer not-a-token"}),
        (None, {"token": ended}),  # signed and unexpired, but its session was logged out
        (None, {"token": 12345}),
        (f"Bearer {good}", {"token": "not-a-token"}),  # the payload's token wins, and it is bad
    ]
    with api_process(settings) as host:
        answers = await asyncio.gather(*(refusal(host, header, init) for header, init in cases),
                                       refusal(host, "Bearer not-a-token", {}, protocol="graphql-ws"))
    assert answers == [(4401, "登录已失效，请重新登录")] * (len(cases) + 1)


async def test_the_token_may_come_in_connection_init(gql, world, settings, sqlite_only):
    cid = await assigned_complaint(gql, world)
    with api_process(settings) as host:
        async with subscription(host, None, cid, init={"token": world.token("citizen")}) as citizen_inbox, \
                subscription(host, None, cid, init={"Authorization": f"Bearer {world.token('water')}"}) as water_inbox:
            await asyncio.gather(wait_subscribed(citizen_inbox), wait_subscribed(water_inbox))
            await post(host, world.token("water"), cid, "您好，我们已经核实情况")
            for inbox in (citizen_inbox, water_inbox):
                frame = await inbox()
                assert frame["type"] == "next", frame
                assert frame["payload"]["data"]["complaintMessages"]["text"] == "您好，我们已经核实情况"
        # Without any token the same subscription is anonymous, and refused as if the complaint did not exist.
        async with subscription(host, None, cid) as anonymous:
            frame = await anonymous()
            errors = frame["payload"]["errors"] if isinstance(frame["payload"], dict) else frame["payload"]
            assert errors[0]["extensions"]["code"] in ("NOT_FOUND", "UNAUTHENTICATED"), frame


async def test_a_socket_that_never_sends_connection_init_is_closed(settings, sqlite_only):
    """The token may come in connection_init, so the socket is accepted before the viewer is known: one that then says
    nothing is closed after JIANSHEN_WS_INIT_TIMEOUT_SECONDS (4408, as graphql-transport-ws says), not kept open."""
    with api_process(settings, extra_env={"JIANSHEN_WS_INIT_TIMEOUT_SECONDS": "1"}) as host:

        async def silent() -> tuple[int, str]:
            async with websockets.connect(f"ws://{host}/graphql", subprotocols=["graphql-transport-ws"],
                                          open_timeout=10) as ws:
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 30)
            return closed.value.rcvd.code, closed.value.rcvd.reason

        assert await asyncio.gather(*(silent() for _ in range(5))) == [(4408, "Connection initialisation timeout")] * 5
