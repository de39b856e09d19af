"""``X-Content-Type-Options: nosniff`` on every HTTP answer.

Much of what the service sends back holds text a client chose (a GraphQL answer, an uploaded file's name, what
``POST /verify`` read from a PDF): a browser must take each answer as the type it is labelled with, never sniff it into
HTML and run it. Routes that need more (the ``/verify`` page, the certificate PDF) set their own headers too.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

NOSNIFF = (b"x-content-type-options", b"nosniff")


class NoSniffMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_nosniff(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                if not any(name.lower() == NOSNIFF[0] for name, _ in headers):
                    headers.append(NOSNIFF)
            await send(message)

        await self.app(scope, receive, send_nosniff)
