"""Engine construction: one place that knows each backend's connection quirks.

- SQLite: foreign keys are off unless switched on per connection; `py_lower` gives SQL the same
  case folding as Python's `str.lower()` (SQLite's own `lower()` folds ASCII only).
- MariaDB/MySQL: every session runs in UTC so that `UTC_TIMESTAMP(6)` defaults and naive
  `DATETIME(6)` values mean the same instant.
- Every backend runs in autocommit: a read is its SELECTs and nothing else (no BEGIN, no
  ROLLBACK when the connection goes back to the pool, no pre-ping). Work that must be
  all-or-nothing says so: `transaction(engine)` here, `Database.transaction()` for mutations,
  both sending BEGIN … COMMIT themselves (`loaders.database.explicit_transaction`).
- No pre-ping: a pooled connection that died while idle fails its first statement, which
  `loaders.database.Database` retries once on a fresh connection (reads only), and SQLAlchemy
  then drops every connection of the pool that is older than the failure.
- Bounded waits (seconds, 0 = off): `DB_CONNECT_TIMEOUT` for opening a connection (the whole
  handshake, not just the TCP connect), `DB_POOL_TIMEOUT` for a pooled one, and
  `DB_STATEMENT_TIMEOUT` for one statement — PostgreSQL `statement_timeout`, MariaDB
  `max_statement_time` (MySQL `max_execution_time`), SQLite a progress handler that
  interrupts the statement.
- Every pooled backend: `DB_POOL_SIZE` connections stay open, `DB_MAX_OVERFLOW` more under a burst.
- PostgreSQL: `DB_RAW_READS` (default on) runs the loaders' cached statements straight on
  asyncpg (loaders/rawpg.py).
"""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.util import await_

from loaders.database import explicit_transaction, fair_checkouts, raw_reads
from server.settings import Settings, sqlite_path

# SQLite checks its deadline every this many virtual-machine instructions (well under 1 ms).
_SQLITE_PROGRESS_STEPS = 20_000
_DEADLINE = "inkgraph.deadline"


def _py_lower(value: str | None) -> str | None:
    return None if value is None else value.lower()


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.create_function("py_lower", 1, _py_lower, deterministic=True)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _sqlite_statement_timeout(engine: AsyncEngine, seconds: float) -> None:
    """Interrupt a statement that runs past `seconds`: SQLite calls a progress handler every
    few thousand instructions, and a non-zero answer aborts the statement ("interrupted")."""

    def install(dbapi_connection: Any, record: Any) -> None:
        info = record.info  # the pool record's info, which `conn.info` below also is
        info[_DEADLINE] = float("inf")

        def past_deadline() -> int:
            return 1 if time.monotonic() > info[_DEADLINE] else 0

        driver = dbapi_connection.driver_connection
        await_(driver.set_progress_handler(past_deadline, _SQLITE_PROGRESS_STEPS))

    def arm(conn: Any, *_args: Any) -> None:
        conn.info[_DEADLINE] = time.monotonic() + seconds

    def disarm(conn: Any, *_args: Any) -> None:
        conn.info[_DEADLINE] = float("inf")

    event.listen(engine.sync_engine, "connect", install)
    event.listen(engine.sync_engine, "before_cursor_execute", arm)
    event.listen(engine.sync_engine, "after_cursor_execute", disarm)

    def on_error(context: Any) -> None:
        if context.connection is not None:
            disarm(context.connection)

    event.listen(engine.sync_engine, "handle_error", on_error)


def _mysql_connect_hook(statement_timeout: float) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        settings = ["time_zone = '+00:00'"]
        if statement_timeout:
            version = str(getattr(dbapi_connection.driver_connection, "server_version", ""))
            if "mariadb" in version.lower():
                settings.append(f"max_statement_time = {statement_timeout:g}")
            else:  # MySQL: milliseconds, and SELECTs only
                settings.append(f"max_execution_time = {round(statement_timeout * 1000)}")
        cursor = dbapi_connection.cursor()
        cursor.execute("SET " + ", ".join(settings))  # one round trip per new connection
        cursor.close()

    return on_connect


def _bounded(connect: Callable[..., Awaitable[Any]], seconds: float) -> Callable[..., Any]:
    """`connect` with a deadline on the whole handshake. asyncmy's own `connect_timeout` covers
    only the TCP connect: a host that accepts and then says nothing would hang it forever."""

    async def bounded(*args: Any, **kwargs: Any) -> Any:
        async with asyncio.timeout(seconds):
            return await connect(*args, **kwargs)

    return bounded


def make_engine(settings: Settings, **engine_kwargs: Any) -> AsyncEngine:
    """Build the async engine for `settings.database_url`, with the per-backend connect hooks.

    The caller owns the engine and must `await engine.dispose()` when done.
    """
    url = settings.async_url()
    backend = url.get_backend_name()
    connect_timeout = settings.db_connect_timeout or None
    statement_timeout = settings.db_statement_timeout
    kwargs: dict[str, Any] = {
        "echo": settings.log_sql,
        "isolation_level": "AUTOCOMMIT",
        "skip_autocommit_rollback": True,
    }
    pool = {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_timeout": settings.db_pool_timeout or None,
        "pool_pre_ping": False,
    }
    connect_args: dict[str, Any] = {}
    if backend == "sqlite":
        path = sqlite_path(url)
        if path is not None:  # a file: a queue pool (an in-memory database has a single one)
            if path.parent != path:
                path.parent.mkdir(parents=True, exist_ok=True)
            kwargs.update(pool)
    else:
        kwargs.update(pool, pool_recycle=1800)
    if backend == "postgresql":
        if connect_timeout:
            connect_args["timeout"] = connect_timeout
        if statement_timeout:
            ms = str(round(statement_timeout * 1000))
            connect_args["server_settings"] = {"statement_timeout": ms}
    elif backend in {"mysql", "mariadb"} and connect_timeout:
        import asyncmy  # the driver SQLAlchemy would call; imported only for this backend

        connect_args["connect_timeout"] = connect_timeout
        connect_args["async_creator_fn"] = _bounded(asyncmy.connect, connect_timeout)
    kwargs["connect_args"] = connect_args
    kwargs.update(engine_kwargs)
    engine = create_async_engine(url, **kwargs)
    if isinstance(engine.pool, AsyncAdaptedQueuePool) and "pool_size" in kwargs:
        # Requests are admitted to the pool first come, first served (loaders/database.py).
        capacity = kwargs["pool_size"] + max(kwargs.get("max_overflow", 0), 0)
        fair_checkouts(engine, capacity, kwargs.get("pool_timeout"))
    raw_reads(engine, settings.db_raw_reads)
    if backend == "sqlite":
        event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
        if statement_timeout:
            _sqlite_statement_timeout(engine, statement_timeout)
    elif backend in {"mysql", "mariadb"}:
        event.listen(engine.sync_engine, "connect", _mysql_connect_hook(statement_timeout))
    return engine


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One all-or-nothing transaction on a connection of `engine` (migrations, seeding, the
    CLI): the autocommit engine's replacement for `engine.begin()`."""
    async with engine.connect() as connection, explicit_transaction(connection):
        yield connection
