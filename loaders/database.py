"""The one seam between loaders and the database: `Database.fetch(statement)`.

One request gets one `Database`. Its statements run on one pooled connection, taken at the first
statement and given back by `close()` at the end of the request, so a request costs at most one
pool checkout (and one pre-ping). aiodataloader dispatches the batches of different loaders
concurrently, but a connection can run one statement at a time, so `fetch` queues them behind a
lock: the work done is the same, and every statement of a request sees one connection's view.
Before a long wait that needs no database (a password hash) the request calls `release()`, so
a burst of such requests cannot drain the pool that every other request needs.

`busy()` / `idle()` tell `loaders.rounds.Rounds` whether a statement of this request is running
or queued: the next round of batches waits until none is.
"""

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Executable, Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


class Database:
    """Per-request access to the database. Call `close()` when the request is done."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect_name = engine.dialect.name
        self._connection: AsyncConnection | None = None
        self._closed = False
        self._lock = asyncio.Lock()
        self._users = 0  # statements and transactions running or waiting for the connection
        self._idle = asyncio.Event()
        self._idle.set()

    def busy(self) -> bool:
        return self._users > 0

    async def idle(self) -> None:
        """Wait until no statement of this request is running or queued."""
        await self._idle.wait()

    @asynccontextmanager
    async def _use(self) -> AsyncIterator[AsyncConnection]:
        self._users += 1
        self._idle.clear()
        try:
            async with self._lock:
                yield await self._connect()
        finally:
            self._users -= 1
            if not self._users:
                self._idle.set()

    async def fetch(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> Sequence[Row[Any]]:
        """Run one SELECT (with `parameters` for its unvalued bind parameters) and return all
        its rows."""
        async with self._use() as connection:
            result = await connection.execute(statement, parameters)
            return result.all()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """Run writes as one transaction on this request's connection: commit on success,
        roll back on any exception. Reads issued afterwards see the committed writes."""
        async with self._use() as connection:
            if connection.in_transaction():
                await connection.commit()  # end the read snapshot; the writes start fresh
            try:
                yield connection
            except BaseException:
                await connection.rollback()
                raise
            await connection.commit()

    async def release(self) -> None:
        """Give the connection back to the pool now; the next statement takes a new one."""
        async with self._lock:
            await self._disconnect()

    async def close(self) -> None:
        """The request is over: give the connection back; later statements are refused (a
        batch still pending when a request ends must not check out a connection nobody
        returns)."""
        self._closed = True
        await self._disconnect()

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()

    async def _connect(self) -> AsyncConnection:
        if self._closed:
            raise RuntimeError("this request's database access is closed")
        if self._connection is None:
            self._connection = await self.engine.connect()
        return self._connection
