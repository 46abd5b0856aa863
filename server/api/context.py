"""The per-request context every resolver sees, and the `Info` type that carries it."""

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import strawberry
from sqlalchemy import Row

from loaders import Database, Loaders
from loaders.dialect import now
from server.auth import Passwords, user_for_token
from server.throttle import Throttle


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """What mutations need to authenticate people: built once per app from Settings."""

    passwords: Passwords = field(default_factory=Passwords)
    token_ttl: timedelta = timedelta(days=30)
    # Login and sign-up throttling (server/throttle.py); the contract's limits, in memory.
    throttle: Throttle = field(default_factory=Throttle)


@dataclass(slots=True)
class Context:
    """Built once per request by `server.view.GraphQLView.get_context`.

    `token` is the bearer token the request carried: None without an Authorization header,
    "" when the header is malformed (a bad token, not an anonymous call).
    """

    request: Any
    response: Any
    db: Database
    loaders: Loaders
    auth: AuthConfig = field(default_factory=AuthConfig)
    token: str | None = None
    # Field names selected below a field of the query document (server/api/selection.py).
    selections: dict[Any, frozenset[str]] = field(default_factory=dict, init=False)
    _viewer: Row[Any] | None = field(default=None, init=False)
    _viewer_known: bool = field(default=False, init=False)

    async def viewer(self) -> Row[Any] | None:
        """The user behind a valid token (looked up once per request), else None."""
        if not self._viewer_known:
            if self.token:
                self._viewer = await user_for_token(self.db, self.token, now())
            self._viewer_known = True
        return self._viewer


Info = strawberry.Info[Context, None]
