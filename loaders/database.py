"""The one seam between loaders and the database: `Database.fetch(statement)`.

One request gets one `Database`. Its statements run on one pooled connection, taken at the first
statement and given back by `close()` at the end of the request, so a request costs at most one
pool checkout. aiodataloader dispatches the batches of different loaders concurrently, but a
connection can run one statement at a time, so `fetch` queues them behind a lock. Before a long
wait that needs no database (a password hash) the request calls `release()`, so a burst of such
requests cannot drain the pool that every other request needs.

Checkouts are first come, first served (`fair_checkouts`): SQLAlchemy's async queue pool lets a
newcomer take a connection that was just handed back before the request woken for it runs, and
the woken one goes to the back of the queue again. Under a full pool (16 clients, 10
connections) that starved some requests for seconds while others never waited: p50 13 ms,
p99 1 s on the peer race's Q1. The gate in front of the pool admits requests strictly in
arrival order, so a wait is bounded by the requests ahead of it.

Reads and writes (the engine runs in autocommit, see server/store/engine.py):

- A read is its SELECTs and nothing more: no BEGIN, no ROLLBACK, no ping. A pooled connection
  that died while idle fails the first statement of its checkout; that statement, and only
  that one, is retried once on a fresh connection (a SELECT run twice changes nothing).
- `transaction()` is all-or-nothing: BEGIN, the writes, COMMIT; any exception sends ROLLBACK.
  It reports success only once COMMIT has returned. When the connection breaks during COMMIT,
  or after it while reading the write back, the fault says `outcome_unknown`.

Faults become two exceptions, whatever the driver (the driver's own is chained as the cause):

- `DatabaseUnavailable`: no connection (refused, connect or pool timeout) or one that broke.
  When it breaks during COMMIT the write may or may not have committed (`outcome_unknown`).
- `StatementTimeout`: the server cancelled a statement at the statement timeout.

Clean-up never raises: a connection that cannot be closed cleanly is invalidated (dropped from
the pool), so the end of a request cannot fail after its answer was written.

`interrupt()` stops a request's work at once (execution timeout, client gone): no statement
starts any more, and the one in flight is cancelled in the database itself — SQLite's
`sqlite3_interrupt`, PostgreSQL's `pg_cancel_backend`, MariaDB's `KILL QUERY`, the last two from
a second pooled connection. Cancelling only the Python task would leave the statement running.

On PostgreSQL the loaders' cached statements (`loaders.rawpg.reusable`) run straight on the
asyncpg connection, SQLAlchemy only compiling them once (loaders/rawpg.py; `DB_RAW_READS`). Their
faults mean the same: a connection asyncpg left closed (or a socket error) is a
`DatabaseUnavailable`, the connection is invalidated and the pool's older connections marked
stale, as SQLAlchemy does on a disconnect, and the retry above applies; sqlstate 57014 is a
`StatementTimeout`; other driver errors propagate as asyncpg raised them. A raw statement whose
task is cancelled leaves asyncpg cancelling it in the background: its connection is dropped at
`close()` rather than pooled.

`busy()` / `idle()` tell `loaders.rounds.Rounds` whether a statement of this request is running
or queued: the next round of batches waits until none is.
"""

import asyncio
import contextlib
import logging
import sqlite3
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

from sqlalchemy import Connection, Executable, Row, text
from sqlalchemy.exc import DBAPIError, TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from loaders.rawpg import RawStatement, raw_statement

logger = logging.getLogger("inkgraph.db")

_PG_QUERY_CANCELED = "57014"  # statement_timeout (and a cancel request)
_MYSQL_STATEMENT_TIMEOUTS = {1969, 3024}  # MariaDB max_statement_time, MySQL max_execution_time


class DatabaseUnavailable(Exception):
    """The database could not be reached, or the connection to it broke."""

    def __init__(self, reason: str, *, outcome_unknown: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.outcome_unknown = outcome_unknown


class StatementTimeout(Exception):
    """The database cancelled a statement that ran past the statement timeout."""


def fault(error: BaseException) -> DatabaseUnavailable | StatementTimeout | None:
    """What a driver or pool error means for the client, or None when it is no fault of the
    database's (a constraint violation, a bug)."""
    if isinstance(error, DatabaseUnavailable | StatementTimeout):
        return error
    if isinstance(error, PoolTimeout):
        return DatabaseUnavailable("no pooled connection became free in time")
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return DatabaseUnavailable("the connection broke")
        if _is_statement_timeout(error.orig):
            return StatementTimeout("the statement ran past the statement timeout")
        if isinstance(error.orig, OSError):
            return DatabaseUnavailable("the connection broke")
        if _is_sqlite_busy(error.orig):
            # Another writer held the file past the busy timeout: the database did not answer.
            return DatabaseUnavailable("the database is busy")
        return None
    if isinstance(error, OSError):  # also TimeoutError and ConnectionError, raw from a driver
        return DatabaseUnavailable("the database does not answer")
    return None


def _is_sqlite_busy(orig: BaseException | None) -> bool:
    return isinstance(orig, sqlite3.OperationalError) and str(orig) == "database is locked"


def _is_statement_timeout(orig: BaseException | None) -> bool:
    if getattr(orig, "sqlstate", None) == _PG_QUERY_CANCELED:
        return True
    if isinstance(orig, sqlite3.OperationalError) or "sqlite" in type(orig).__module__:
        return str(orig) == "interrupted"
    args: tuple[Any, ...] = getattr(orig, "args", ())
    return bool(args) and args[0] in _MYSQL_STATEMENT_TIMEOUTS


def begin_statement(dialect_name: str) -> str:
    """How a write transaction starts. On SQLite `BEGIN IMMEDIATE`: a plain (deferred) BEGIN
    reads first (the token, the article) and asks for the write lock only at its INSERT, and a
    reader that cannot upgrade because another connection wrote meanwhile gets "database is
    locked" at once, without the busy timeout. IMMEDIATE takes the write lock first, waiting up
    to `PRAGMA busy_timeout` for it, so concurrent writers queue instead of failing."""
    return "BEGIN IMMEDIATE" if dialect_name == "sqlite" else "BEGIN"


@asynccontextmanager
async def explicit_transaction(connection: AsyncConnection) -> AsyncIterator[AsyncConnection]:
    """BEGIN … COMMIT on an autocommit connection; ROLLBACK on any exception (a rollback that
    fails too leaves the connection invalidated, and the first exception is what propagates)."""
    await connection.exec_driver_sql(begin_statement(connection.dialect.name))
    try:
        yield connection
    except BaseException:
        await _rollback_quietly(connection)
        raise
    await connection.exec_driver_sql("COMMIT")


async def _rollback_quietly(connection: AsyncConnection) -> None:
    try:
        await connection.exec_driver_sql("ROLLBACK")
    except Exception:  # the connection is gone or unusable: the server rolls back on its own
        logger.debug("rollback failed; dropping the connection", exc_info=True)
        await _invalidate_quietly(connection)


async def _invalidate_quietly(connection: AsyncConnection) -> None:
    with contextlib.suppress(Exception):
        await connection.invalidate()


# Cancelling a statement from a second session must not wait long for a pooled connection.
_CANCEL_TIMEOUT = 2.0


@dataclass(frozen=True)
class _Admission:
    capacity: int
    timeout: float | None
    # One semaphore per event loop (an asyncio primitive belongs to the loop it first waits on).
    gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]

    def gate(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        gate = self.gates.get(loop)
        if gate is None:
            gate = self.gates[loop] = asyncio.Semaphore(self.capacity)
        return gate


_ADMISSIONS: weakref.WeakKeyDictionary[Any, _Admission] = weakref.WeakKeyDictionary()


def fair_checkouts(engine: AsyncEngine, capacity: int, timeout: float | None) -> None:
    """Admit this engine's request checkouts in arrival order, at most `capacity` at once (the
    pool's size plus its overflow), waiting at most `timeout` seconds (the pool timeout; None
    waits for ever). asyncio.Semaphore is FIFO: a newcomer never overtakes a waiter."""
    _ADMISSIONS[engine.sync_engine] = _Admission(capacity, timeout, weakref.WeakKeyDictionary())


def _observed(sync: Connection) -> bool:
    """Whether something would miss a statement run raw: SQL echo, a statement or error event
    listener. `_has_events` stays set once any listener was added, so the listeners themselves
    are looked at (the connection's dispatch is joined with the engine's)."""
    if sync._echo or sync.dialect.dispatch.handle_error:
        return True
    if not (sync._has_events or sync.engine._has_events):
        return False
    events = sync.dispatch
    return bool(
        events.before_cursor_execute
        or events.after_cursor_execute
        or events.before_execute
        or events.after_execute
    )


_RAW_READS: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def raw_reads(engine: AsyncEngine, enabled: bool) -> None:
    """Whether this engine's `Database`s run reusable reads straight on asyncpg (the default
    on PostgreSQL; loaders/rawpg.py). Off, every statement goes through SQLAlchemy."""
    _RAW_READS[engine.sync_engine] = enabled


class Database:
    """Per-request access to the database. Call `close()` when the request is done.

    `outage` is the first outage this request met (None if none), `timed_out` whether a
    statement hit the statement timeout, and `reached` whether any statement succeeded: the
    server's health log reads them.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect_name = engine.dialect.name
        # Reusable reads straight on asyncpg (loaders/rawpg.py), unless turned off for the
        # engine (`raw_reads(engine, False)`, DB_RAW_READS).
        self._raw = _RAW_READS.get(engine.sync_engine, True) and engine.dialect.driver == "asyncpg"
        self._poisoned = False  # a cancelled raw statement left the connection busy
        self.outage: DatabaseUnavailable | None = None
        self.reached = False
        self.timed_out = False
        self.committed = False  # a transaction of this request has committed
        # A COMMIT was sent and its answer has not come back (the request was cancelled while
        # waiting for it, or the connection broke): it may have committed.
        self.commit_pending = False
        self._connection: AsyncConnection | None = None
        self._admission = _ADMISSIONS.get(engine.sync_engine)
        self._admitted: asyncio.Semaphore | None = None  # the gate this checkout holds
        self._fresh_checkout = False  # no statement has run on this checkout yet
        self._closed = False
        self._lock = asyncio.Lock()
        self._users = 0  # statements and transactions running or waiting for the connection
        self._idle = asyncio.Event()
        self._idle.set()
        # Set while a statement may be running in the database: from just before it is sent
        # until its result is back (a statement whose awaiting task was cancelled stays "in
        # flight": the database may still be running it). See `interrupt`.
        self._in_flight = False
        self._driver: Any = None  # the DB-API driver's connection (for interrupting it)
        self._session_id: int | None = None  # PostgreSQL's backend pid, MariaDB's thread id

    @property
    def may_have_written(self) -> bool:
        """Whether a write of this request committed, or may have: an answer that is an error
        must then say its outcome is unknown (API.md "Acknowledged means committed")."""
        return self.committed or self.commit_pending

    def busy(self) -> bool:
        return self._users > 0

    async def idle(self) -> None:
        """Wait until no statement of this request is running or queued."""
        await self._idle.wait()

    @asynccontextmanager
    async def _use(self) -> AsyncIterator[None]:
        self._users += 1
        self._idle.clear()
        try:
            async with self._lock:
                yield
        finally:
            self._users -= 1
            if not self._users:
                self._idle.set()

    async def fetch(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> Sequence[Row[Any]]:
        """Run one SELECT (with `parameters` for its unvalued bind parameters) and return all
        its rows."""
        async with self._use():
            connection = await self._connect()
            retry = self._fresh_checkout
            try:
                return await self._run(connection, statement, parameters)
            except Exception as error:
                if not (retry and isinstance(fault(error), DatabaseUnavailable)):
                    self._raise(error)
            # A connection that died in the pool: once more, on a fresh one.
            await self._disconnect()
            connection = await self._connect()
            try:
                return await self._run(connection, statement, parameters)
            except Exception as error:
                self._raise(error)

    async def _run(
        self,
        connection: AsyncConnection,
        statement: Executable,
        parameters: Mapping[str, Any] | None,
    ) -> Sequence[Row[Any]]:
        raw = self._raw_statement(connection, statement)
        self._in_flight = True
        if raw is None:
            rows = (await connection.execute(statement, parameters)).all()
        else:
            rows = await self._fetch_raw(connection, raw, parameters)
        self._in_flight = False
        self._fresh_checkout = False
        self.reached = True
        return rows

    def _raw_statement(
        self, connection: AsyncConnection, statement: Executable
    ) -> RawStatement | None:
        """The statement's raw form when it may bypass SQLAlchemy's execution (loaders/rawpg.py):
        a reusable statement, on asyncpg, with no event listener to notify and no SQL echo."""
        if not self._raw or self._driver is None:
            return None
        sync = connection.sync_connection
        if sync is None or _observed(sync):
            return None
        return raw_statement(statement, self.engine.dialect)

    async def _fetch_raw(
        self,
        connection: AsyncConnection,
        raw: RawStatement,
        parameters: Mapping[str, Any] | None,
    ) -> Sequence[Row[Any]]:
        """The rows of `raw` from the asyncpg connection itself, its faults mapped as
        SQLAlchemy's are."""
        driver = self._driver
        try:
            records = await driver.fetch(raw.sql, *raw.args(parameters))
        except Exception as error:
            # SQLAlchemy's asyncpg dialect calls an error a disconnect when it left the
            # connection closed (`is_disconnect`); a socket error is one too.
            if driver.is_closed() or isinstance(error, OSError):
                await self._invalidate_broken(connection, error)
                raise DatabaseUnavailable("the connection broke") from error
            if getattr(error, "sqlstate", None) == _PG_QUERY_CANCELED:
                raise StatementTimeout("the statement ran past the statement timeout") from error
            raise
        except BaseException:
            # Cancelled (execution timeout, client gone): asyncpg is still cancelling the query
            # in the background and the connection is busy until it has; it must not go back
            # to the pool. `_disconnect` drops it.
            self._poisoned = True
            raise
        return raw.rows(records)  # type: ignore[return-value]  # namedtuples that read like Rows

    async def _invalidate_broken(self, connection: AsyncConnection, error: Exception) -> None:
        """What SQLAlchemy does on a disconnect: drop this connection, and mark every pooled
        connection opened before it stale (recycled at its next checkout), since a server that
        went away took them all."""
        with contextlib.suppress(Exception):
            sync = connection.sync_connection
            if sync is not None and sync.connection is not None:
                self.engine.sync_engine.pool._invalidate(sync.connection, error, _checkin=False)
        await _invalidate_quietly(connection)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """Run writes as one transaction on this request's connection: commit on success,
        roll back on any exception. Database faults come out as `DatabaseUnavailable` or
        `StatementTimeout`; other exceptions (a `Rejected`, an IntegrityError) unchanged."""
        async with self._use():
            connection = await self._begin()
            self._in_flight = True  # writes are statements in flight until the COMMIT is back
            try:
                yield connection
            except BaseException as error:  # also a cancellation: roll back, let it go on
                await _rollback_quietly(connection)
                if isinstance(error, Exception):
                    self._raise(error)
                raise
            self.commit_pending = True  # stays set if the task is cancelled while waiting
            try:
                await connection.exec_driver_sql("COMMIT")
            except Exception as error:
                problem = fault(error)
                if isinstance(problem, DatabaseUnavailable):
                    # COMMIT may have reached the server before the connection broke.
                    unknown = DatabaseUnavailable(problem.reason, outcome_unknown=True)
                    self._raise(error, unknown)
                self.commit_pending = False  # the database answered: it did not commit
                await _rollback_quietly(connection)
                self._raise(error)
            self.commit_pending = False
            self.reached = self.committed = True
            self._in_flight = False
            # The transaction is over: the next read may be retried, so that a connection
            # breaking right after COMMIT does not turn a saved write into an error.
            self._fresh_checkout = True

    async def _begin(self) -> AsyncConnection:
        connection = await self._connect()
        retry = self._fresh_checkout
        try:
            await connection.exec_driver_sql(begin_statement(self.dialect_name))
        except Exception as error:
            if not (retry and isinstance(fault(error), DatabaseUnavailable)):
                self._raise(error)
            await self._disconnect()  # nothing was written: BEGIN again on a fresh connection
            connection = await self._connect()
            try:
                await connection.exec_driver_sql(begin_statement(self.dialect_name))
            except Exception as error:
                self._raise(error)
        self._fresh_checkout = False
        return connection

    def _raise(self, error: Exception, problem: Exception | None = None) -> NoReturn:
        """Raise `error` as the fault it means (chained), remembering an outage."""
        problem = problem or fault(error)
        if isinstance(problem, DatabaseUnavailable) and self.committed:
            # This request's write was committed; what broke afterwards is the reading back.
            problem = DatabaseUnavailable(problem.reason, outcome_unknown=True)
        if isinstance(problem, DatabaseUnavailable) and self.outage is None:
            self.outage = problem
        self.timed_out = self.timed_out or isinstance(problem, StatementTimeout)
        if problem is None or problem is error:
            raise error
        raise problem from error

    async def interrupt(self) -> None:
        """Stop this request's database work now: refuse new statements and cancel the one in
        flight in the database, so that whatever awaits it gets an error at once. Cancel the
        request's task first (then nothing the interruption fails is reported): SQLAlchemy
        answers a cancelled statement by closing the connection gracefully, which waits for
        the statement to end. Safe at any time and more than once; failures are ignored."""
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
        returns). Never raises for a broken connection."""
        self._closed = True
        await self._disconnect()

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        self._in_flight, self._driver, self._session_id = False, None, None
        poisoned, self._poisoned = self._poisoned, False
        if connection is None:
            return
        try:
            if poisoned:
                await connection.invalidate()
            await connection.close()
        except Exception:  # a broken connection: drop it; the failure was already answered
            logger.debug("closing a connection failed; dropping it", exc_info=True)
            await _invalidate_quietly(connection)
        finally:
            self._leave()

    async def _admit(self) -> None:
        if self._admission is None:
            return
        gate = self._admission.gate()
        if not gate.locked():  # a free place and nobody waiting: no deadline to set up
            await gate.acquire()
            self._admitted = gate
            return
        try:
            async with asyncio.timeout(self._admission.timeout):
                await gate.acquire()
        except TimeoutError:
            raise DatabaseUnavailable("no pooled connection became free in time") from None
        self._admitted = gate

    def _ended(self) -> bool:
        # A method, not the attribute: `close()` may have run while this request awaited.
        return self._closed

    def _leave(self) -> None:
        gate, self._admitted = self._admitted, None
        if gate is not None:
            gate.release()

    def _remember_driver(self, connection: AsyncConnection) -> None:
        # Kept now: once a cancelled statement invalidates the connection, SQLAlchemy no
        # longer hands out the driver's.
        self._in_flight = False
        with contextlib.suppress(Exception):
            driver: Any = connection.sync_connection.connection.driver_connection  # type: ignore[union-attr]
            self._driver = driver
            if self.dialect_name == "postgresql":
                self._session_id = driver.get_server_pid()
            elif self.dialect_name in {"mysql", "mariadb"}:
                self._session_id = driver.thread_id()

    async def _connect(self) -> AsyncConnection:
        if self._closed:
            raise RuntimeError("this request's database access is closed")
        if self._connection is None:
            try:
                await self._admit()
            except DatabaseUnavailable as error:
                self._raise(error)
            try:
                self._connection = await self.engine.connect()
            except BaseException as error:  # also a cancellation: give the place back
                self._leave()
                if not isinstance(error, Exception):
                    raise
                problem = fault(error) or DatabaseUnavailable("cannot connect to the database")
                self._raise(error, problem)
            if self._ended():  # the request ended while this batch waited for a place
                await self._disconnect()
                raise RuntimeError("this request's database access is closed")
            self._fresh_checkout = True
            self._remember_driver(self._connection)
        return self._connection
