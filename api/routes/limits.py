"""A cap on how much of a request body a route reads, whether or not the client declared its length.

A ``Content-Length`` above the cap is refused before anything is read. A body without one (``Transfer-Encoding:
chunked``) cannot be judged up front, so the ASGI ``receive`` is wrapped: it counts the bytes as they arrive and raises
``BodyTooLarge`` as soon as the count passes the cap. The route then answers 413 having read at most one chunk past
the cap, never the whole body (DESIGN.md §6: a huge request must cost nothing).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import Message, Receive


class BodyTooLarge(Exception):
    """The request body is larger than the route accepts."""


def declared_too_large(request: Request, limit: int) -> bool:
    """The client announced a body over ``limit`` (a malformed length is left to the counting receive)."""
    declared = request.headers.get("content-length", "")
    return declared.isascii() and declared.isdigit() and int(declared) > limit


def limited(request: Request, limit: int) -> Request:
    """The same request, whose body reading raises ``BodyTooLarge`` once more than ``limit`` bytes arrived."""
    receive: Receive = request.receive
    received = 0

    async def counting_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(f"request body over {limit} bytes")
        return message

    return Request(request.scope, counting_receive)


class CappedBody:
    """ASGI wrapper of an HTTP endpoint (``/graphql``) whose whole body is read by code we do not control: a declared
    ``Content-Length`` over ``limit`` is answered 413 before anything is read; otherwise the body is counted as it
    arrives and the request answered 413 once the count passes ``limit``, the rest never read (issue #10). Other
    scopes (WebSocket: the server's frame limit, ``ws_max_size``) pass through untouched."""

    def __init__(self, app, limit: int, setting: str) -> None:
        self.app = app
        self.limit = limit
        self.setting = setting

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if declared_too_large(Request(scope), self.limit):
            await self.refuse(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(f"request body over {self.limit} bytes")
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self.refuse(scope, receive, send)

    async def refuse(self, scope, receive, send) -> None:
        from starlette.responses import JSONResponse

        message = f"请求体过大：上限 {self.limit} 字节（{self.setting}）"
        extensions = {"code": "REQUEST_TOO_LARGE", "limit": self.setting, "max": self.limit}
        response = JSONResponse({"errors": [{"message": message, "extensions": extensions}]}, status_code=413)
        response.headers["Connection"] = "close"  # the unread rest of the body is not worth draining
        await response(scope, receive, send)
