"""HTTP limits at the connection: uvicorn's httptools protocol with a header-block cap, head
and body deadlines and a cap on open connections (API.md "HTTP limits").

What uvicorn 0.54 itself bounds, read in its source, and what this module adds:

- `timeout_keep_alive` is armed only after a response and cancelled by the next byte; it is the
  keep-alive idle limit and is used as is (`HTTP_KEEPALIVE_TIMEOUT`).
- The header block: httptools has no cap (it buffers a header line until it ends); uvicorn's
  `h11_max_incomplete_event_size` applies to the h11 parser only, answers `400`, and never
  measures a head read in one piece. Here both the parsed head and the raw bytes of a head
  still incomplete are held to `max_header_bytes`, answered `431`, connection closed.
- Nothing limits how long a head or a body may take: a client sending one byte every few
  seconds holds its connection for ever (`timeout_keep_alive` does not run during a request).
  Here the head must be complete `header_timeout` after the connection opened (or after the
  first byte of the next request on a keep-alive connection), and the body `body_timeout`
  after the head: a total, so a drip is cut off too.
- `limit_concurrency` is checked only once a request head is complete, so silent connections
  are never refused, and its `503` carries no `Retry-After`. Here a connection beyond
  `max_connections` is answered `503` with `Retry-After` as soon as it opens, and closed.

httptools rather than h11: the same limits on uvicorn's h11 protocol cost ~0.2 ms of CPU per
request more (h11 parses in Python), several percent of a cheap query.

The protocol gets its limits as a constructor argument: `uvicorn_options(settings)` passes a
`functools.partial` as uvicorn's `http` class, which pickles, so `--workers` children get the
same limits.
"""

import asyncio
import functools
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from server.events import events, new_request_id, request_id

if TYPE_CHECKING:
    # Not at run time: `--workers` children unpickle the protocol before they answer uvicorn's
    # health check, and pydantic plus SQLAlchemy take seconds to import on a busy machine.
    from server.settings import Settings

# Seconds a client refused by the connection cap is asked to wait: about one keep-alive idle
# period, after which idle connections have been closed.
RETRY_AFTER_SECONDS = 5
# uvicorn wants a number where our settings say 0 for "off".
_UNLIMITED_SECONDS = 365 * 24 * 3600.0

_TOO_LARGE_BODY = b"Request header fields too large.\n"
_TOO_LARGE = b"".join(
    [
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
        b"content-type: text/plain; charset=utf-8\r\n",
        b"content-length: %d\r\n" % len(_TOO_LARGE_BODY),
        b"connection: close\r\n\r\n",
        _TOO_LARGE_BODY,
    ]
)
_REFUSED_BODY = b"Too many open connections; retry later.\n"
_REFUSED = b"".join(
    [
        b"HTTP/1.1 503 Service Unavailable\r\n",
        b"content-type: text/plain; charset=utf-8\r\n",
        b"content-length: %d\r\n" % len(_REFUSED_BODY),
        b"retry-after: %d\r\n" % RETRY_AFTER_SECONDS,
        b"connection: close\r\n\r\n",
        _REFUSED_BODY,
    ]
)


@dataclass(frozen=True)
class HttpLimits:
    """The per-connection limits; 0 turns one off."""

    max_header_bytes: int = 16_384
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1000

    @classmethod
    def from_settings(cls, settings: "Settings") -> "HttpLimits":
        return cls(
            max_header_bytes=settings.http_max_header_bytes,
            header_timeout=settings.http_header_timeout,
            body_timeout=settings.http_body_timeout,
            max_connections=settings.http_max_connections,
        )


def uvicorn_options(settings: "Settings") -> dict[str, Any]:
    """The `uvicorn.run` keyword arguments that enforce `settings`' HTTP limits."""
    limits = HttpLimits.from_settings(settings)
    return {
        "http": functools.partial(LimitedHttpToolsProtocol, limits=limits),
        "timeout_keep_alive": settings.http_keepalive_timeout or _UNLIMITED_SECONDS,
    }


def raise_open_files_limit(needed: int) -> tuple[int, int]:
    """Raise this process's soft limit on open files towards `needed`, up to the hard limit
    (many systems start processes at a soft 1024, below the default connection cap plus the
    database pool). Returns (soft limit now, hard limit)."""
    try:
        import resource
    except ImportError:  # not on Unix: nothing to raise
        return needed, needed
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < ceiling:
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
        soft = ceiling
    return soft, hard


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with `HttpLimits` (see the module docstring).

    The parser's callbacks say where a request is: `on_message_begin` .. `on_headers_complete`
    is the head, then the body until `on_message_complete`; between requests the connection is
    idle (uvicorn's keep-alive timer runs) until the next byte arrives.
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: HttpLimits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self._deadline: asyncio.TimerHandle | None = None
        self._phase = "head"  # "head" | "body" | "idle"
        self._phase_started = 0.0
        self._head_bytes = 0  # raw bytes received while the head is incomplete
        self._head_size = 0  # request line and header lines parsed so far
        self._too_large = False
        self._refused = False
        self._message_begun = False  # the current request's scope exists (see _request_id)

    # --------------------------------------------------------------------- connection cap

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        cap = self.limits.max_connections
        if cap and len(self.connections) >= cap:
            # Answered before any request: the client reads it whenever it reads. write_eof
            # keeps the socket open for reading so the client's request does not meet a reset
            # that would hide the answer; the connection is dropped shortly after.
            self._refused = True
            self.transport = transport
            transport.write(_REFUSED)
            if transport.can_write_eof():
                transport.write_eof()
            self.loop.call_later(1.0, transport.close)
            peer = transport.get_extra_info("peername")
            events.emit(
                logging.WARNING,
                "connection refused",
                client=str(peer[0]) if peer else "-",
                request=new_request_id(),
                status=503,
                open=len(self.connections),
                max=cap,
            )
            return
        super().connection_made(transport)
        self._start("head", self.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop()
        if self._refused:
            return
        super().connection_lost(exc)

    # --------------------------------------------------------------------- reading

    def data_received(self, data: bytes) -> None:
        # uvicorn's own, but a head over the limit is answered 431 without a log line of
        # uvicorn's per request (the event log folds ours).
        if self._refused or self._too_large:
            return
        self._unset_keepalive_if_required()
        was_head = self._phase == "head"
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as error:
            if isinstance(error.__context__, _HeaderBlockTooLarge):
                return  # answered already
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
            return
        if self._phase != "head":
            self._head_bytes = 0
            return
        # A head still incomplete: httptools buffers a header line until it ends, so the raw
        # bytes are what bounds memory (the parsed size is checked in _count_head).
        self._head_bytes = (self._head_bytes if was_head else 0) + len(data)
        cap = self.limits.max_header_bytes
        if cap and self._head_bytes > cap:
            self._refuse_header_block(self._head_bytes)

    def send_400_response(self, msg: str) -> None:
        self._stop()
        super().send_400_response(msg)

    def on_message_begin(self) -> None:
        # The first byte of the next request on a kept-alive (or pipelined) connection starts
        # its head deadline; the first request's started when the connection opened.
        if self._phase == "idle":
            self._start("head", self.limits.header_timeout)
        self._head_size = 0
        super().on_message_begin()
        self._message_begun = True

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url) + 14)  # method, spaces, version, CRLF: near enough
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._start("body", self.limits.body_timeout)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._stop()
        self._phase = "idle"
        self._message_begun = False
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        # The WebSocket protocol owns the transport from here; the upgrade request's body
        # deadline would otherwise close the socket.
        self._stop()
        self._phase = "idle"
        super().handle_websocket_upgrade()

    # --------------------------------------------------------------------- deadlines

    def _start(self, phase: str, seconds: float) -> None:
        self._stop()
        self._phase = phase
        if seconds:
            self._phase_started = time.monotonic()
            self._deadline = self.loop.call_later(seconds, self._cut_off)

    def _request_id(self) -> str:
        """The id of the request being read: the one its ASGI scope carries once the request
        line has begun (lines the app writes for it carry the same), else a fresh one."""
        if self._message_begun:
            return request_id(self.scope)  # type: ignore[arg-type] # uvicorn's TypedDict
        return new_request_id()

    def _stop(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _cut_off(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        events.emit(
            logging.INFO,
            "slow client cut off",
            client=self.client[0] if self.client else "-",
            request=self._request_id(),
            phase="headers" if self._phase == "head" else self._phase,
            after=f"{time.monotonic() - self._phase_started:.1f}s",
        )
        # Closing marks a request in progress as disconnected: the app's receive() answers
        # http.disconnect and its response is dropped.
        self.transport.close()

    # --------------------------------------------------------------------- header block

    def _count_head(self, size: int) -> None:
        self._head_size += size
        cap = self.limits.max_header_bytes
        if cap and self._head_size > cap and not self._too_large:
            self._refuse_header_block(self._head_size)
            raise _HeaderBlockTooLarge  # stops the parser; see data_received

    def _refuse_header_block(self, length: int) -> None:
        self._too_large = True
        events.emit(
            logging.WARNING,
            "header too large",
            client=self.client[0] if self.client else "-",
            request=self._request_id(),
            status=431,
            length=length,
            max=self.limits.max_header_bytes,
        )
        self._answer_431()

    def _answer_431(self) -> None:
        self._stop()
        if not self.transport.is_closing():
            self.transport.write(_TOO_LARGE)
            self.transport.close()


class _HeaderBlockTooLarge(Exception):
    """Raised from a parser callback to stop parsing a head over the limit."""
