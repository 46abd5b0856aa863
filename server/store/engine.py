"""Engine construction: one place that knows each backend's connection quirks.

- SQLite: foreign keys are off unless switched on per connection; `py_lower` gives SQL the same
  case folding as Python's `str.lower()` (SQLite's own `lower()` folds ASCII only).
- MariaDB/MySQL: every session runs in UTC so that `UTC_TIMESTAMP(6)` defaults and naive
  `DATETIME(6)` values mean the same instant.
- PostgreSQL/MariaDB: `pool_pre_ping` so a connection killed while idle is replaced, not reported.
- Every pooled backend: `DB_POOL_SIZE` connections stay open, `DB_MAX_OVERFLOW` more under a burst.
"""

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from server.settings import Settings, sqlite_path


def _py_lower(value: str | None) -> str | None:
    return None if value is None else value.lower()


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.create_function("py_lower", 1, _py_lower, deterministic=True)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _on_mysql_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("SET time_zone = '+00:00'")
    cursor.close()


def make_engine(settings: Settings, **engine_kwargs: Any) -> AsyncEngine:
    """Build the async engine for `settings.database_url`, with the per-backend connect hooks.

    The caller owns the engine and must `await engine.dispose()` when done.
    """
    url = settings.async_url()
    backend = url.get_backend_name()
    kwargs: dict[str, Any] = {"echo": settings.log_sql}
    pool = {"pool_size": settings.db_pool_size, "max_overflow": settings.db_max_overflow}
    if backend == "sqlite":
        path = sqlite_path(url)
        if path is not None:  # a file: a queue pool (an in-memory database has a single one)
            if path.parent != path:
                path.parent.mkdir(parents=True, exist_ok=True)
            kwargs.update(pool)
    else:
        kwargs.update(pool, pool_pre_ping=True, pool_recycle=1800)
    kwargs.update(engine_kwargs)
    engine = create_async_engine(url, **kwargs)
    if backend == "sqlite":
        event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
    elif backend in {"mysql", "mariadb"}:
        event.listen(engine.sync_engine, "connect", _on_mysql_connect)
    return engine
