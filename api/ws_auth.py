"""Who is on the other end of a ``/graphql`` WebSocket (issue #10, item 15).

A subscription is signed in like an HTTP request, and refused like one: a bad, expired or ended token closes the
socket with 4401 (the HTTP 401 of WebSockets) instead of leaving it connected as anonymous. The token comes in the
``Authorization`` header, or — since a browser cannot set headers on a WebSocket — in the payload of the first
message, ``connection_init`` (graphql-transport-ws and the older graphql-ws alike): ``{"Authorization": "Bearer …"}``
or ``{"token": "…"}``; the payload's wins over the header's.

The viewer must be known before the GraphQL view makes the connection's context, and the payload arrives only after
the socket is accepted; so this accepts the socket itself (with the subprotocol the view would pick: the client's
first one it speaks), reads the first message, and then runs the view on the same socket as if nothing had happened:
the ``websocket.connect`` and the first message are replayed to it, and its own ``websocket.accept`` is dropped.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Awaitable, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.services.access import Viewer

REFUSED = 4401
REFUSED_REASON = "登录已失效，请重新登录"
PROTOCOLS = ("graphql-transport-ws", "graphql-ws")  # what the GraphQL view speaks (strawberry's defaults)
Resolve = Callable[[str], Awaitable[Viewer | None]]  # an Authorization value → its viewer, None when refused


def _protocol(scope: Scope) -> str | None:
    return next((p for p in scope.get("subprotocols") or () if p in PROTOCOLS), None)


def _authorization(message: Message) -> str | None:
    """The ``Authorization`` value a ``connection_init`` message carries, if it is one and carries a token."""
    text = message.get("text")
    if message["type"] != "websocket.receive" or text is None:
        return None  # parsed whole (its size is bounded by the server's frame limit): "\u0063onnection_init" is one too
    try:
        frame = json.loads(text)
    except ValueError:
        return None
    payload = frame.get("payload") if isinstance(frame, dict) and frame.get("type") == "connection_init" else None
    if not isinstance(payload, dict):
        return None
    value = payload.get("Authorization") or payload.get("authorization")
    if not value and payload.get("token"):
        value = f"Bearer {payload['token']}" if isinstance(payload["token"], str) else payload["token"]
    if not value:
        return None  # no token (an empty one included, as an empty header): the header's viewer, or anonymous
    return value if isinstance(value, str) else "-"  # a token that is not a string is a bad one


async def _refuse(send: Send, protocol: str | None) -> None:
    await send({"type": "websocket.accept", "subprotocol": protocol, "headers": []})
    await send({"type": "websocket.close", "code": REFUSED, "reason": REFUSED_REASON})


async def serve(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, resolve: Resolve, *, refused: bool, init_timeout: float
) -> None:
    """Run ``app`` on this WebSocket with ``scope["state"]["viewer"]`` set, or close it with 4401.

    ``refused``: the Authorization header carried a bad token (the header's viewer, if any, is already in the scope).
    ``init_timeout``: how long the first message may take (JIANSHEN_WS_INIT_TIMEOUT_SECONDS).
    """
    protocol = _protocol(scope)
    connect = await receive()
    if connect["type"] != "websocket.connect":
        return  # the client left during the handshake
    if refused:
        await _refuse(send, protocol)
        return
    if protocol is None:  # not a GraphQL client: the view closes it (4406) itself
        await app(scope, _replay([connect], receive), send)
        return
    await send({"type": "websocket.accept", "subprotocol": protocol, "headers": []})
    try:  # a client that never speaks must not hold the socket (graphql-transport-ws: 4408 after the wait)
        first = await asyncio.wait_for(receive(), init_timeout)
    except asyncio.TimeoutError:
        await send({"type": "websocket.close", "code": 4408, "reason": "Connection initialisation timeout"})
        return
    authorization = _authorization(first)
    if authorization is not None:
        viewer = await resolve(authorization)
        if viewer is None:
            await send({"type": "websocket.close", "code": REFUSED, "reason": REFUSED_REASON})
            return
        scope["state"]["viewer"] = viewer

    async def send_accepted(message: Message) -> None:
        if message["type"] != "websocket.accept":  # already accepted above
            await send(message)

    await app(scope, _replay([connect, first], receive), send_accepted)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replaying() -> Any:
        return pending.pop(0) if pending else await receive()

    return replaying
