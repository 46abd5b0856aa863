"""HTTP limits at the connection: uvicorn's h11 protocol with a header-block cap, head and body
deadlines and a cap on open connections (API.md "HTTP limits").

What uvicorn 0.54 itself bounds, read in its source, and what this module adds:

- `timeout_keep_alive` is armed only after a response and cancelled by the next byte; it is the
  keep-alive idle limit and is used as is (`HTTP_KEEPALIVE_TIMEOUT`).
- `h11_max_incomplete_event_size` makes h11 refuse a head still incomplete past that size
  (status hint 431), but uvicorn answers it `400`, and a head that arrives whole in one read is
  never measured. Here both are answered `431` and the connection is closed.
- Nothing limits how long a head or a body may take: a client sending one byte every few
  seconds holds its connection for ever (`timeout_keep_alive` does not run during a request).
  Here the head must be complete `header_timeout` after the connection opened (or after the
  first byte of the next request on a keep-alive connection), and the body `body_timeout`
  after the head: a total, so a drip is cut off too.
- `limit_concurrency` is checked only once a request head is complete, so silent connections
  are never refused, and its `503` carries no `Retry-After`. Here a connection beyond
  `max_connections` is answered `503` with `Retry-After` as soon as it opens, and closed.

The protocol gets its limits as a constructor argument: `uvicorn_options(settings)` passes a
`functools.partial` as uvicorn's `http` class, which pickles, so `--workers` children get the
same limits.
"""

import asyncio
import functools
import logging
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import STATUS_PHRASES, H11Protocol
from uvicorn.server import ServerState

from server.events import events

if TYPE_CHECKING:
    # Not at run time: `--workers` children unpickle the protocol before they answer uvicorn's
    # health check, and pydantic plus SQLAlchemy take seconds to import on a busy machine.
    from server.settings import Settings

# Seconds a client refused by the connection cap is asked to wait: about one keep-alive idle
# period, after which idle connections have been closed.
RETRY_AFTER_SECONDS = 5
# uvicorn wants numbers where our settings say 0 for "off".
_UNLIMITED_BYTES = sys.maxsize
_UNLIMITED_SECONDS = 365 * 24 * 3600.0

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
        "http": functools.partial(LimitedH11Protocol, limits=limits),
        "h11_max_incomplete_event_size": limits.max_header_bytes or _UNLIMITED_BYTES,
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


def head_size(request: h11.Request) -> int:
    """Bytes of the request line and header lines, as sent (CRLFs included)."""
    line = len(request.method) + len(request.target) + len(b"HTTP/1.1") + 4
    fields = sum(len(name) + len(value) + 4 for name, value in request.headers.raw_items())
    return line + fields + 2


class _Connection(h11.Connection):
    """h11's connection, telling the protocol when a head and a body are complete, and
    refusing a complete head larger than the limit (h11 only measures incomplete ones)."""

    def __init__(self, protocol: "LimitedH11Protocol", max_header_bytes: int) -> None:
        super().__init__(h11.SERVER, max_header_bytes or _UNLIMITED_BYTES)
        self.protocol = protocol
        self.max_header_bytes = max_header_bytes

    def next_event(self) -> Any:
        try:
            event = super().next_event()
        except h11.RemoteProtocolError as error:
            if error.error_status_hint != 431:
                raise  # uvicorn answers it 400
            # Answered here rather than re-raised: uvicorn would log a warning for every one.
            self.protocol.refuse_header_block(len(self.trailing_data[0]))
            return h11.NEED_DATA
        if isinstance(event, h11.Request):
            size = head_size(event)
            if self.max_header_bytes and size > self.max_header_bytes:
                self.protocol.refuse_header_block(size)
                return h11.NEED_DATA
            self.protocol.head_complete()
        elif isinstance(event, h11.EndOfMessage):
            self.protocol.body_complete()
        return event


class LimitedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with `HttpLimits` (see the module docstring)."""

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
        self.conn = _Connection(self, limits.max_header_bytes)
        self._deadline: asyncio.TimerHandle | None = None
        self._phase = ""
        self._phase_started = 0.0
        self._refused = False

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
                status=503,
                open=len(self.connections),
                max=cap,
            )
            return
        super().connection_made(transport)
        self._start("headers", self.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop()
        if self._refused:
            return
        super().connection_lost(exc)

    # --------------------------------------------------------------------- deadlines

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        # The first byte of a new request on a kept-alive connection starts its head deadline.
        if self._deadline is None and self.conn.their_state is h11.IDLE:
            self._start("headers", self.limits.header_timeout)
        super().data_received(data)

    def head_complete(self) -> None:
        self._stop()
        # Called from inside h11 after the state change: SEND_BODY means a body follows.
        if self.conn.their_state is h11.SEND_BODY:
            self._start("body", self.limits.body_timeout)

    def body_complete(self) -> None:
        self._stop()

    def _start(self, phase: str, seconds: float) -> None:
        self._stop()
        if seconds:
            self._phase = phase
            self._phase_started = time.monotonic()
            self._deadline = self.loop.call_later(seconds, self._cut_off)

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
            phase=self._phase,
            after=f"{time.monotonic() - self._phase_started:.1f}s",
        )
        # Closing marks a request in progress as disconnected: the app's receive() answers
        # http.disconnect and its response is dropped.
        self.transport.close()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        # The WebSocket protocol owns the transport from here; a body deadline started by the
        # upgrade request's head would otherwise close the socket.
        self._stop()
        super().handle_websocket_upgrade(event)

    # --------------------------------------------------------------------- header block

    def refuse_header_block(self, length: int) -> None:
        """Answer `431` to a head over the limit and close the connection."""
        self._stop()
        events.emit(
            logging.WARNING,
            "header too large",
            client=self.client[0] if self.client else "-",
            status=431,
            length=length,
            max=self.limits.max_header_bytes,
        )
        body = b"Request header fields too large.\n"
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"%d" % len(body)),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=431, headers=headers, reason=STATUS_PHRASES[431]),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()
