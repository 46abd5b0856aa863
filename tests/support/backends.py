"""Throw-away databases on each backend, created and dropped by the tests themselves.

PostgreSQL and MariaDB are reached through TEST_POSTGRES_URL / TEST_MARIADB_URL (defaults: the
local servers this project's machines run). When a server is unreachable its tests are skipped
with the reason — unless CI is set, where an unreachable backend fails the run.
"""

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from server.settings import Settings, to_async_url
from server.store.engine import make_engine
from server.store.migrate import upgrade
from tests.support import shadow

BACKENDS = ("sqlite", "postgresql", "mariadb")

ADMIN_URLS = {
    "postgresql": os.environ.get(
        "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    ),
    "mariadb": os.environ.get("TEST_MARIADB_URL", "mysql://root@127.0.0.1:3306/test"),
}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


async def _admin(backend: str, statement: str) -> None:
    engine = make_engine(Settings(database_url=ADMIN_URLS[backend]), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def unreachable_reason(backend: str) -> str | None:
    """None when the backend's server answers, else why not."""
    if backend == "sqlite":
        return None
    try:
        await _admin(backend, "SELECT 1")
    except Exception as error:  # any failure to connect means "unreachable"
        url = make_url(ADMIN_URLS[backend]).render_as_string(hide_password=True)
        return f"{backend} at {url} is unreachable: {type(error).__name__}: {error}"[:300]
    return None


@asynccontextmanager
async def fresh_database(backend: str, tmp_dir: Path) -> AsyncIterator[AsyncEngine]:
    """A new, migrated, empty database on `backend`; dropped afterwards."""
    name = f"inkgraph_test_{uuid.uuid4().hex[:10]}"
    if backend == "sqlite":
        url = f"sqlite:///{tmp_dir / (name + '.db')}"
    else:
        await _admin(backend, f"CREATE DATABASE {name}")
        url = (
            to_async_url(ADMIN_URLS[backend])
            .set(database=name)
            .render_as_string(hide_password=False)
        )
    engine = make_engine(Settings(database_url=url))
    try:
        await upgrade(engine)
        yield engine
    finally:
        await shadow.dispose(engine)  # its connections would keep the database from dropping
        await engine.dispose()
        if backend != "sqlite":
            await _admin(backend, f"DROP DATABASE {name}")
