"""`BodyLimit`: an ASGI middleware that refuses a request body over `max_bytes` with `413`.

- A `Content-Length` over the limit is answered before one body byte is read.
- A chunked body (or one that lies about its length) is counted as it arrives; the moment it
  passes the limit the app's `receive()` raises, and the client gets `413` if no response has
  started yet. Nothing beyond the limit is buffered: uvicorn pauses reading past 64 KiB.
- Every `413` carries `Connection: close`, so the server stops reading the rest of the body
  instead of draining it.

It also keeps a client's departure quiet: when the client has gone (receive() answered
`http.disconnect`, for example after the body deadline of server/httplimits.py closed the
connection), Starlette's `ClientDisconnect` is not logged as an application error.
"""

import logging
from typing import Any, cast

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.events import Network, client_address, events, request_id

_BODY = b"Request body too large.\n"


class _TooLarge(Exception):
    """Raised from `receive()` when the body passes the limit."""


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, trusted: tuple[Network, ...] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.trusted = trusted  # proxies whose X-Forwarded-For names the client in the log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if self.max_bytes and length is not None and length > self.max_bytes:
            await self._refuse(scope, send, length)
            return

        received = 0
        started = False
        disconnected = False

        async def limited_receive() -> Message:
            nonlocal received, disconnected
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected = True
            elif message["type"] == "http.request":
                received += len(message.get("body", b""))
                if self.max_bytes and received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except _TooLarge:
            if not started:
                await self._refuse(scope, send, received)
        except ClientDisconnect:
            if not disconnected:
                raise

    async def _refuse(self, scope: Scope, send: Send, length: int) -> None:
        events.emit(
            logging.WARNING,
            "body too large",
            client=client_address(cast(dict[str, Any], scope), self.trusted),
            request=request_id(cast(dict[str, Any], scope)),
            status=413,
            length=length,
            max=self.max_bytes,
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", b"%d" % len(_BODY)),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _BODY})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP parser has refused it already
    return None
