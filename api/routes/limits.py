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
