"""Passwords and bearer tokens.

- Passwords are hashed with argon2id (pwdlib). Hashing is deliberately slow (about 120 ms of
  CPU with the defaults), so it runs in worker threads, by default one fewer than the cores
  (at least one): a burst of logins queues there while the event loop keeps a core of its
  own for every other request.
- `login` with an unknown username verifies against a dummy hash, so it costs the same time
  and gives the same answer as a wrong password.
- Tokens are 256 random bits, handed out once; the database keeps only their sha256 (a fast
  hash is right for high-entropy secrets), an expiry and a revocation time.
"""

import asyncio
import hashlib
import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from loaders import Database
from loaders.dialect import now
from server.store.models import Token, User, table_of

TOKEN_PREFIX = "ink_"


@dataclass
class Passwords:
    """argon2id hashing off the event loop. Cost parameters come from Settings."""

    time_cost: int = 3
    memory_cost_kib: int = 65536
    parallelism: int = 1
    workers: int = field(default_factory=lambda: default_hash_workers())
    _hasher: PasswordHash = field(init=False)
    _slots: asyncio.Semaphore = field(init=False)
    _dummy: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self._hasher = PasswordHash(
            (
                Argon2Hasher(
                    time_cost=self.time_cost,
                    memory_cost=self.memory_cost_kib,
                    parallelism=self.parallelism,
                ),
            )
        )
        self._slots = asyncio.Semaphore(self.workers)

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """Check `password`; with no hash (unknown user) still spend the same time, then fail."""
        if password_hash is None:
            if not self._dummy:
                self._dummy = await self.hash(secrets.token_hex(16))
            await self._verify(password, self._dummy)
            return False
        return await self._verify(password, password_hash)

    async def _verify(self, password: str, password_hash: str) -> bool:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.verify, password, password_hash)


def default_hash_workers() -> int:
    """Hashes in flight at once: all cores but one, which stays with the event loop."""
    return max(1, (os.cpu_count() or 1) - 1)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_token(connection: AsyncConnection, user_id: int, ttl: timedelta) -> str:
    """Create a token for `user_id` inside the caller's transaction; returns it in clear once."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    issued = now()
    await connection.execute(
        table_of(Token)
        .insert()
        .values(
            user_id=user_id,
            token_hash=hash_token(token),
            created_at=issued,
            expires_at=issued + ttl,
        )
    )
    return token


async def revoke_token(connection: AsyncConnection, token: str) -> bool:
    tokens = table_of(Token)
    result = await connection.execute(
        update(tokens)
        .where(tokens.c.token_hash == hash_token(token), tokens.c.revoked_at.is_(None))
        .values(revoked_at=now())
    )
    return result.rowcount > 0


async def revoke_other_tokens(connection: AsyncConnection, user_id: int, keep: str | None) -> None:
    """After a password change, every other session of the user ends."""
    tokens = table_of(Token)
    statement = update(tokens).where(tokens.c.user_id == user_id, tokens.c.revoked_at.is_(None))
    if keep is not None:
        statement = statement.where(tokens.c.token_hash != hash_token(keep))
    await connection.execute(statement.values(revoked_at=now()))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, if there is one."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return ""  # a header that is there but malformed: a bad token, not an anonymous call
    return token.strip()


VIEWER_COLUMNS = ("id", "username", "username_key", "created_at", "is_editor")


async def user_for_token(db: Database, token: str, at: datetime) -> Row[Any] | None:
    """The user a valid (known, unexpired, unrevoked) token belongs to, else None."""
    users, tokens = table_of(User), table_of(Token)
    statement = (
        select(*(users.c[name] for name in VIEWER_COLUMNS))
        .join(tokens, tokens.c.user_id == users.c.id)
        .where(
            tokens.c.token_hash == hash_token(token),
            tokens.c.revoked_at.is_(None),
            tokens.c.expires_at > at,
        )
    )
    rows = await db.fetch(statement)
    return rows[0] if rows else None
