"""Login and sign-up throttling (shared/API.md, "Login and sign-up throttling").

Three counters, each a fixed window of the `limits` library (the window opens at the first
counted attempt and lasts LOGIN_WINDOW or SIGNUP_WINDOW seconds):

    login-username  failed logins per username, case-folded as for uniqueness, keyed by a
                    sha256 prefix so no username is stored or logged in clear
    login-address   failed logins per client address
    signup-address  `createUser` attempts per client address

Every field invocation is counted *before* anything is checked, with one atomic increment, so
aliased `login`s in one request (executed one after the other, or at once) are counted one by
one and can never all slip through a check-then-count gap. An attempt over its limit is refused
without looking at the password or the database: the right password is refused too, and an
unknown username is throttled exactly like an existing one. A successful login clears its
username's counter and gives back the one attempt it took from its address (successes are not
failures; an address's earlier failures stay).

The counters live in this process (`memory://`) or in Redis (`redis://…`), which several replicas
share so the limits hold per deployment. When the shared storage does not answer, logins and
sign-ups are refused (`StorageUnavailable`) rather than left unthrottled.
"""

import hashlib
import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string

from server.events import EventLog, Network, client_address, events, parse_networks, request_id
from server.settings import Settings, throttle_storage_uri

# A shared storage that does not answer must not hold a login for long.
STORAGE_TIMEOUT = 2.0


class Throttled(Exception):
    """An attempt over its limit; `retry_after` seconds until its window has room."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"throttled for {retry_after} s")
        self.retry_after = retry_after


class StorageUnavailable(Exception):
    """The throttle's storage did not answer; the attempt was neither counted nor checked."""


@dataclass(frozen=True, slots=True)
class Caller:
    """Who makes an attempt, for the key and for the operator's log line."""

    address: str
    request: str = "-"
    operation: str | None = None

    @classmethod
    def of(
        cls, scope: dict[str, Any], operation: str | None, trusted: tuple[Network, ...]
    ) -> "Caller":
        return cls(client_address(scope, trusted), request_id(scope), operation)


@dataclass(frozen=True, slots=True)
class Limit:
    """One counter: `name` in keys and logs, at most `amount` per `window` seconds; 0 is off."""

    name: str
    amount: int
    window: int

    def item(self) -> RateLimitItem | None:
        if self.amount <= 0:
            return None
        return RateLimitItemPerSecond(self.amount, self.window, namespace=self.name)


def username_key(username: str) -> str:
    """The username part of a key: a sha256 prefix of the case-folded name (as stored)."""
    return hashlib.sha256(username.lower().encode()).hexdigest()[:16]


def open_storage(url: str, key_prefix: str) -> Storage:
    """An async `limits` storage for `memory://` or `redis://…` (redis-py's asyncio client)."""
    uri = throttle_storage_uri(url)
    options: dict[str, Any] = {"wrap_exceptions": True}
    if not uri.startswith("async+memory"):
        options.update(
            implementation="redispy",
            key_prefix=key_prefix,
            socket_connect_timeout=STORAGE_TIMEOUT,
            socket_timeout=STORAGE_TIMEOUT,
        )
    storage = storage_from_string(uri, **options)
    assert isinstance(storage, Storage)
    return storage


class Throttle:
    """The three counters over one storage. Build it with `from_settings`; `aclose` on shutdown."""

    def __init__(
        self,
        storage: Storage | None = None,
        *,
        login_per_username: int = 10,
        login_per_address: int = 100,
        login_window: int = 900,
        signup_per_address: int = 20,
        signup_window: int = 3600,
        trusted: tuple[Network, ...] = (),
        log: EventLog = events,
    ) -> None:
        self.storage = storage if storage is not None else open_storage("memory://", "inkgraph")
        self.limiter = FixedWindowRateLimiter(self.storage)
        self.login_username = Limit("login-username", login_per_username, login_window)
        self.login_address = Limit("login-address", login_per_address, login_window)
        self.signup_address = Limit("signup-address", signup_per_address, signup_window)
        self.trusted = trusted
        self.log = log

    @classmethod
    def from_settings(cls, settings: Settings) -> "Throttle":
        return cls(
            open_storage(settings.throttle_storage_url, settings.throttle_key_prefix),
            login_per_username=settings.login_max_failures_per_username,
            login_per_address=settings.login_max_failures_per_address,
            login_window=settings.login_window,
            signup_per_address=settings.signup_max_per_address,
            signup_window=settings.signup_window,
            trusted=parse_networks(settings.trusted_proxies),
        )

    def caller(self, scope: dict[str, Any], operation: str | None) -> Caller:
        return Caller.of(scope, operation, self.trusted)

    async def login_attempt(self, username: str, caller: Caller) -> None:
        """Count one login attempt against its address, then its username; `Throttled` when
        either is over its limit (the username is not counted when the address already is)."""
        await self._count("login throttled", self.login_address, caller.address, caller)
        await self._count(
            "login throttled", self.login_username, username_key(username), caller, "username"
        )

    async def login_succeeded(self, username: str, caller: Caller) -> None:
        """Clear the username's failures; give back the attempt counted for the address."""
        async with self._storage():
            item = self.login_username.item()
            if item is not None:
                await self.limiter.clear(item, username_key(username))
            item = self.login_address.item()
            if item is not None:
                # Fixed-window counters are plain integers, so giving one back is one
                # decrement (limits has no "un-hit"; a negative increment is its decrement).
                # Should the window end between the attempt and this line, the next window
                # starts at -1: one extra attempt, once, never a lost failure.
                key = item.key_for(caller.address)
                await self.storage.incr(key, item.get_expiry(), amount=-1)

    async def sign_up_attempt(self, caller: Caller) -> None:
        """Count one `createUser` attempt against its address; `Throttled` when over."""
        await self._count("sign-up throttled", self.signup_address, caller.address, caller)

    async def aclose(self) -> None:
        """Close the storage's connections (Redis); the memory storage has none."""
        bridge = getattr(self.storage, "bridge", None)
        client = getattr(bridge, "storage", None)
        if client is not None:
            await client.aclose()

    async def _count(
        self, event: str, limit: Limit, identifier: str, caller: Caller, kind: str = "address"
    ) -> None:
        item = limit.item()
        if item is None:
            return
        async with self._storage():
            if await self.limiter.hit(item, identifier):
                return
            count = await self.storage.get(item.key_for(identifier))
            reset, _remaining = await self.limiter.get_window_stats(item, identifier)
        retry_after = max(1, math.ceil(reset - time.time()))
        self.log.emit(
            logging.WARNING,
            event,
            client=caller.address,
            operation=caller.operation,
            request=caller.request,
            key=f"{kind}:{identifier}",
            count=count,
            window=f"{limit.window}s",
        )
        raise Throttled(retry_after)

    @asynccontextmanager
    async def _storage(self) -> AsyncIterator[None]:
        """Turns a storage failure into `StorageUnavailable`, logged (folded) as an event."""
        try:
            yield
        except (StorageError, TimeoutError, OSError) as error:
            self.log.emit(
                logging.ERROR,
                "throttle storage unreachable",
                reason=type(getattr(error, "storage_error", error)).__name__,
            )
            raise StorageUnavailable from error
