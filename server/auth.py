"""Passwords and the bearer header (the token rows themselves live in `server/store/writes.py`).

- Passwords are hashed with argon2id (pwdlib). Hashing is deliberately slow (about 120 ms of
  CPU with the defaults), so it runs in worker threads, by default one fewer than the cores
  (at least one): a burst of logins queues there while the event loop keeps a core of its
  own for every other request.
- `login` with an unknown username verifies against a dummy hash, so it costs the same time
  and gives the same answer as a wrong password.
- Tokens are 256 random bits, handed out once; the database keeps only their sha256 (a fast
  hash is right for high-entropy secrets), an expiry and a revocation time (`writes.py`).
"""

import asyncio
import os
import secrets
from dataclasses import dataclass, field

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher


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


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, if there is one."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return ""  # a header that is there but malformed: a bad token, not an anonymous call
    return token.strip()
