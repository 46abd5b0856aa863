"""The one seam between loaders and the database: `Database.fetch(statement)`.

One request gets one `Database`. Its statements run on one pooled connection, taken at the first
statement and given back by `close()` at the end of the request, so a request costs at most one
pool checkout (and one pre-ping). aiodataloader dispatches the batches of different loaders
concurrently, but a connection can run one statement at a time, so `fetch` queues them behind a
lock: the work done is the same, and every statement of a request sees one connection's view.
Before a long wait that needs no database (a password hash) the request calls `release()`, so
a burst of such requests cannot drain the pool that every other request needs.

`interrupt()` stops the request's database work at once (execution timeout, client gone): no
statement starts any more, and the one in flight is cancelled in the database itself —
SQLite's `sqlite3_interrupt`, PostgreSQL's `pg_cancel_backend`, MariaDB's `KILL QUERY`, the last
two from a second pooled connection. Cancelling only the Python task would leave the statement
running (SQLite in its thread, the others on the server) and the task stuck in SQLAlchemy's
graceful close of the connection until it ends. The connection stays usable.

`busy()` / `idle()` tell `loaders.rounds.Rounds` whether a statement of this request is running
or queued: the next round of batches waits until none is.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Executable, Row, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

# Cancelling a statement from a second session must not wait long for a pooled connection.
_CANCEL_TIMEOUT = 2.0


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
        # Set while a statement may be running in the database: from just before it is sent
        # until its result is back (a statement whose awaiting task was cancelled stays "in
        # flight": the database may still be running it).
        self._in_flight = False
        self._driver: Any = None  # the DB-API driver's connection (for interrupting it)
        self._session_id: int | None = None  # PostgreSQL's backend pid, MariaDB's thread id

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

    async def fetch(self, statement: Executable) -> Sequence[Row[Any]]:
        """Run one SELECT and return all its rows."""
        async with self._use() as connection:
            self._in_flight = True
            result = await connection.execute(statement)
            self._in_flight = False
            return result.all()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """Run writes as one transaction on this request's connection: commit on success,
        roll back on any exception. Reads issued afterwards see the committed writes."""
        async with self._use() as connection:
            if connection.in_transaction():
                await connection.commit()  # end the read snapshot; the writes start fresh
            self._in_flight = True  # writes are statements in flight until the COMMIT is back
            try:
                yield connection
            except BaseException:
                await connection.rollback()
                raise
            await connection.commit()
            self._in_flight = False

    async def interrupt(self) -> None:
        """Stop this request's database work now: refuse new statements and cancel the one in
        flight in the database, so that whatever awaits it gets an error at once. Call it
        *before* cancelling the request's task: SQLAlchemy answers a cancelled statement by
        closing the connection gracefully, which waits for the statement to end. Safe to call
        at any time and more than once; failures are ignored (the statement may have ended)."""
        self._closed = True
        if not self._in_flight or self._driver is None:
            return
        with contextlib.suppress(Exception):
            if self.dialect_name == "sqlite":
                await self._driver.interrupt()  # aiosqlite: sqlite3_interrupt, thread-safe
            elif self._session_id is not None:
                # The session running the statement is busy: ask from another one.
                command = (
                    f"SELECT pg_cancel_backend({int(self._session_id)})"
                    if self.dialect_name == "postgresql"
                    else f"KILL QUERY {int(self._session_id)}"
                )
                async with asyncio.timeout(_CANCEL_TIMEOUT), self.engine.connect() as other:
                    await other.execute(text(command))

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
        self._in_flight, self._driver, self._session_id = False, None, None
        if connection is not None:
            await connection.close()

    async def _connect(self) -> AsyncConnection:
        if self._closed:
            raise RuntimeError("this request's database access is closed")
        if self._connection is None:
            self._connection = connection = await self.engine.connect()
            self._in_flight = False
            # Kept now: once a cancelled statement invalidates the connection, SQLAlchemy no
            # longer hands out the driver's.
            driver: Any = connection.sync_connection.connection.driver_connection  # type: ignore[union-attr]
            self._driver = driver
            if self.dialect_name == "postgresql":
                self._session_id = driver.get_server_pid()
            elif self.dialect_name in {"mysql", "mariadb"}:
                self._session_id = driver.thread_id()
        return self._connection
