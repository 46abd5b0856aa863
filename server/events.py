"""What an operator sees: one log line per event, tagged with who caused it, repeats folded.

Every line of the `inkgraph.events` logger reads

    <event> client=<address> operation=<name or -> request=<id> key=value …

and repeats of one event for one client are folded: the first is logged at once, the rest of
the next `FOLD_SECONDS` are counted, and the next line after that window carries
`repeated=<count>`. An attacker who sends a thousand refused queries a second thus costs the
log one line per 10 s, not a thousand. The database's transitions (server/health.py) are never
folded: each is one line, and there are only as many as the database goes down and up.

`client_address(scope, trusted)` is the address the limits and the log attribute a request to:
the TCP peer, or the first untrusted hop of `X-Forwarded-For` when the peer is a trusted proxy.
`request_id(scope)` gives each request one id, for every line it causes.
"""

import ipaddress
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("inkgraph.events")

FOLD_SECONDS = 10.0
# Folding state is bounded: past this many distinct (event, client) pairs the oldest go first.
_MAX_KEYS = 10_000

_REQUEST_ID = "inkgraph.request_id"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Who:
    """Whom a log line names: the client address, the operation name, the request id."""

    client: str = "-"
    operation: str | None = None
    request: str = "-"


def new_request_id() -> str:
    """A fresh id, for a request that never got as far as an ASGI scope (a head cut off)."""
    return secrets.token_hex(6)


def request_id(scope: dict[str, Any]) -> str:
    """This request's id (made on first use, then kept in the ASGI scope)."""
    value = scope.get(_REQUEST_ID)
    if value is None:
        value = scope[_REQUEST_ID] = new_request_id()
    return str(value)


def parse_networks(raw: str | Iterable[str]) -> tuple[Network, ...]:
    """`"10.0.0.0/8, 127.0.0.1"` → networks; a bare address is a /32 (or /128)."""
    items = raw.split(",") if isinstance(raw, str) else raw
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items if item.strip())


def _is_trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_address(scope: dict[str, Any], trusted: tuple[Network, ...] = ()) -> str:
    """The client a request comes from: the TCP peer, unless that peer is a trusted proxy; then
    the right-most `X-Forwarded-For` hop that is not itself trusted (hops left of it could be
    written by the client, so they are never believed)."""
    peer = scope.get("client")
    address = str(peer[0]) if peer else "-"
    if not trusted or not _is_trusted(address, trusted):
        return address
    forwarded: list[str] = [
        value.decode("latin-1")
        for name, value in scope.get("headers", ())
        if name.lower() == b"x-forwarded-for"
    ]
    hops = [hop.strip() for value in forwarded for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else address


class EventLog:
    """Writes event lines, folding repeats of one (event, client) pair within `fold_seconds`."""

    def __init__(
        self,
        fold_seconds: float = FOLD_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        target: logging.Logger = logger,
    ) -> None:
        self.fold_seconds = fold_seconds
        self.clock = clock
        self.target = target
        self._lock = threading.Lock()
        # (event, client) -> [time of the last line written, repeats not written since]
        self._seen: dict[tuple[str, str], list[float]] = {}

    def emit(
        self,
        level: int,
        event: str,
        *,
        client: str = "-",
        operation: str | None = None,
        request: str = "-",
        exc_info: BaseException | None = None,
        fold: bool = True,
        **fields: object,
    ) -> bool:
        """Log `event` unless a line for it and `client` went out less than `fold_seconds` ago.
        Returns whether a line was written. `fold=False` for events that are rare by nature
        and must each be seen (the database's transitions): always written."""
        if not fold:
            self.target.log(
                level, _line(event, client, operation, request, fields), exc_info=exc_info
            )
            return True
        now = self.clock()
        key = (event, client)
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen[0] < self.fold_seconds:
                seen[1] += 1
                return False
            repeated = int(seen[1]) if seen is not None else 0
            self._seen.pop(key, None)
            self._seen[key] = [now, 0]
            if len(self._seen) > _MAX_KEYS:
                del self._seen[next(iter(self._seen))]
        if repeated:
            fields = {**fields, "repeated": repeated}
        self.target.log(level, _line(event, client, operation, request, fields), exc_info=exc_info)
        return True

    def emit_for(
        self,
        who: Who,
        level: int,
        event: str,
        *,
        exc_info: BaseException | None = None,
        fold: bool = True,
        **fields: object,
    ) -> bool:
        """`emit`, naming `who`'s client, operation and request."""
        return self.emit(
            level,
            event,
            client=who.client,
            operation=who.operation,
            request=who.request,
            exc_info=exc_info,
            fold=fold,
            **fields,
        )


def _line(
    event: str, client: str, operation: str | None, request: str, fields: dict[str, object]
) -> str:
    parts = [event, f"client={client}", f"operation={operation or '-'}", f"request={request}"]
    parts += [f"{name}={value}" for name, value in fields.items()]
    return " ".join(parts)


events = EventLog()
"""The process's event log; tests may build their own `EventLog` with a fake clock."""
