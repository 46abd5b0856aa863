"""Reusable loader statements run straight on asyncpg (loaders/rawpg.py), PostgreSQL only.

- Rows: for every cached statement kind (by column, page, count, root page, root count) the raw
  path answers what SQLAlchemy answers — same SQL text, same column names, same values of the
  same types (aware UTC datetimes, bools) — and the rows read like `Row`s.
- Faults: a backend killed under a request gives `DatabaseUnavailable` and drops the connection;
  a pooled connection killed while idle is retried once on a fresh checkout; the statement
  timeout gives `StatementTimeout`.
- Cancellation (the execution timeout, a client gone): the task's cancel plus `interrupt()` stop
  a raw statement at once, the connection is dropped and not pooled, the next request works.
- Event listeners: with one registered, the statement goes through SQLAlchemy (and is seen).
"""

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import Executable, func, literal, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

import server.store.models as models
from loaders import Database, Order, PageSpec, Relation
from loaders.batch import (
    _by_column_statement,
    _cached_count_statement,
    _page_template,
    _root_count_statement,
    _root_page_statement,
)
from loaders.database import DatabaseUnavailable, StatementTimeout
from loaders.rawpg import compile_raw, raw_statement, reusable
from loaders.specs import Condition, Position
from server.settings import Settings
from server.store.engine import make_engine
from server.store.models import table_of
from tests.support.sqlcount import count_statements

# The raw path is asyncpg's: `backend` is narrowed to PostgreSQL (not skipped elsewhere), so
# an unreachable PostgreSQL skips these like every PostgreSQL test, and fails them under CI.
pytestmark = pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", marks=pytest.mark.postgresql)], indirect=True
)


PG = "postgresql"
USERS, POSTS = table_of(models.User), table_of(models.Post)
COMMENTS, ARTICLES = table_of(models.Comment), table_of(models.Article)
POSTS_OF = Relation.of(models.User, "posts")
COMMENTS_OF = Relation.of(models.Article, "comments")
BY_AUTHOR = Relation.of(models.User, "comments")
NEWEST = Order("created_at", descending=True)

KEYS = {"keys": [1, 2, 3, 5, 8, 13, 21, 34, 999_999]}
STATEMENTS: list[tuple[str, Executable, Mapping[str, Any] | None]] = [
    ("users by id", _by_column_statement(USERS.c.id, PG), KEYS),
    ("posts by id", _by_column_statement(POSTS.c.id, PG), KEYS),
    ("comments by id", _by_column_statement(COMMENTS.c.id, PG), KEYS),
    ("posts page", _page_template(POSTS_OF, PageSpec(first=3), PG), KEYS),
    ("posts page last", _page_template(POSTS_OF, PageSpec(last=2), PG), KEYS),
    ("posts page newest", _page_template(POSTS_OF, PageSpec(order=NEWEST, first=100), PG), KEYS),
    (
        "comments page filtered, after",
        _page_template(
            COMMENTS_OF,
            PageSpec(
                filter=(Condition("text", "contains", "e"),),
                after=Position(sort_value=None, id=3),
                first=5,
            ),
            PG,
        ),
        KEYS,
    ),
    ("comments by author page", _page_template(BY_AUTHOR, PageSpec(first=2), PG), KEYS),
    ("posts count", _cached_count_statement(POSTS_OF, (), PG), KEYS),
    (
        "comments count filtered",
        _cached_count_statement(COMMENTS_OF, (Condition("text", "contains", "e"),), PG),
        KEYS,
    ),
    ("users root page", _root_page_statement(USERS, PageSpec(first=100), PG), None),
    (
        "articles root newest",
        _root_page_statement(ARTICLES, PageSpec(order=NEWEST, last=4), PG),
        None,
    ),
    ("posts root count", _root_count_statement(POSTS, (), PG), None),
]


@contextmanager
def raw_runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The SQL of every statement `Database` runs raw while the block runs."""
    seen: list[str] = []
    original = Database._fetch_raw

    async def spy(self: Database, connection: Any, raw: Any, parameters: Any) -> Any:
        seen.append(raw.sql)
        return await original(self, connection, raw, parameters)

    monkeypatch.setattr(Database, "_fetch_raw", spy)
    yield seen


def _types(rows: Any) -> list[list[type]]:
    return [[type(value) for value in row] for row in rows]


@pytest.mark.parametrize(
    ("statement", "parameters"), [s[1:] for s in STATEMENTS], ids=[s[0] for s in STATEMENTS]
)
async def test_raw_rows_are_sqlalchemy_rows(
    engine: AsyncEngine,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
    statement: Executable,
    parameters: Mapping[str, Any] | None,
) -> None:
    assert compile_raw(statement, engine.dialect) is not None
    with count_statements(engine) as sent:  # a listener: SQLAlchemy's path, and its SQL seen
        async with engine.connect() as connection:
            expected = (await connection.execute(statement, parameters)).all()
    with raw_runs(monkeypatch) as raw:
        got = await db.fetch(statement, parameters)
    assert len(raw) == 1, "not run raw"
    assert " ".join(raw[0].split()) == sent[0]  # the very SQL SQLAlchemy sends
    assert expected, "no rows to compare"
    assert list(got) == [tuple(row) for row in expected]
    assert _types(got) == _types(expected)
    assert got[0]._fields == expected[0]._fields
    for mine, theirs in zip(got, expected, strict=True):
        assert dict(mine._mapping) == dict(theirs._mapping)
        for name in theirs._fields:
            assert getattr(mine, name) == getattr(theirs, name)
            if isinstance(getattr(theirs, name), datetime):
                assert getattr(mine, name).utcoffset() is not None


async def test_rows_read_like_sqlalchemy_rows(db: Database) -> None:
    (row,) = await db.fetch(_by_column_statement(USERS.c.id, PG), {"keys": [1]})
    assert row[0] == row.id == row._mapping["id"] == 1
    assert "password_hash" not in row._fields  # private columns stay out, as before
    assert row == tuple(row)
    assert hash(row) == hash(tuple(row))


async def test_listeners_see_every_statement(
    engine: AsyncEngine, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    statement = _by_column_statement(POSTS.c.id, PG)
    with raw_runs(monkeypatch) as raw, count_statements(engine) as sent:
        await db.fetch(statement, KEYS)
    assert (len(raw), len(sent)) == (0, 1)
    with raw_runs(monkeypatch) as raw:
        await db.fetch(statement, KEYS)
    assert len(raw) == 1


async def test_switched_off(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    url = engine.url.render_as_string(hide_password=False)
    made = make_engine(Settings(database_url=url, db_raw_reads=False))  # DB_RAW_READS=false
    off = Database(made)
    try:
        with raw_runs(monkeypatch) as raw:
            rows = await off.fetch(_by_column_statement(POSTS.c.id, PG), KEYS)
    finally:
        await off.close()
        await made.dispose()
    assert rows
    assert not raw


def test_unfit_statements_are_not_run_raw(engine: AsyncEngine) -> None:
    # Not marked reusable: built per request, compiled by SQLAlchemy's own cache.
    assert raw_statement(select(USERS.c.id), engine.dialect) is None
    # Expanding parameters are rendered per call.
    expanding = select(USERS.c.id).where(USERS.c.id.in_([1, 2]))
    assert compile_raw(expanding, engine.dialect) is None


# ---------------------------------------------------------------------------- faults


def _sleep(seconds: float) -> Executable:
    return reusable(select(func.pg_sleep(literal(seconds)).label("slept")))


@pytest_asyncio.fixture
async def small(engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """An engine on the same database with one pooled connection (plus one for `interrupt`)."""
    url = engine.url.render_as_string(hide_password=False)
    made = make_engine(Settings(database_url=url, db_pool_size=1, db_max_overflow=1))
    try:
        yield made
    finally:
        await made.dispose()


async def _terminate(engine: AsyncEngine, pid: int) -> None:
    async with engine.connect() as other:
        await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    for _ in range(50):  # the backend exits a moment later
        async with engine.connect() as other:
            alive = (
                await other.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
                )
            ).scalar_one()
        if not alive:
            return
        await asyncio.sleep(0.02)


async def test_backend_killed_under_a_request(
    engine: AsyncEngine, small: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    statement = _by_column_statement(POSTS.c.id, PG)
    db = Database(small)
    try:
        with raw_runs(monkeypatch) as raw:
            await db.fetch(statement, KEYS)  # the checkout is no longer fresh: no retry
            pid = db._session_id
            assert pid is not None
            await _terminate(engine, pid)
            with pytest.raises(DatabaseUnavailable) as caught:
                await db.fetch(statement, KEYS)
        assert len(raw) == 2
        assert db.outage is caught.value
        assert caught.value.__cause__ is not None  # the driver's error, chained
    finally:
        await db.close()
    assert small.pool.checkedout() == 0  # type: ignore[attr-defined]
    again = Database(small)
    try:
        assert await again.fetch(statement, KEYS)
        assert again._session_id != pid  # the dead connection was not pooled again
    finally:
        await again.close()


async def test_connection_killed_in_the_pool_is_retried(
    engine: AsyncEngine, small: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    statement = _by_column_statement(POSTS.c.id, PG)
    first = Database(small)
    try:
        expected = await first.fetch(statement, KEYS)
        pid = first._session_id
        assert pid is not None
    finally:
        await first.close()
    await _terminate(engine, pid)
    db = Database(small)
    try:
        with raw_runs(monkeypatch) as raw:
            assert await db.fetch(statement, KEYS) == expected
        assert len(raw) == 2  # the dead pooled connection, then a fresh one
        assert db.outage is None
        assert db._session_id != pid
    finally:
        await db.close()
    assert small.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_statement_timeout(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    url = engine.url.render_as_string(hide_password=False)
    timed = make_engine(Settings(database_url=url, db_statement_timeout=0.2))
    db = Database(timed)
    try:
        with raw_runs(monkeypatch) as raw, pytest.raises(StatementTimeout):
            await db.fetch(_sleep(5))
        assert len(raw) == 1
        assert db.timed_out
        assert await db.fetch(_by_column_statement(POSTS.c.id, PG), KEYS)  # still usable
    finally:
        await db.close()
        await timed.dispose()


async def test_cancelled_raw_statement(
    engine: AsyncEngine, small: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(small)
    with raw_runs(monkeypatch) as raw:
        task = asyncio.create_task(db.fetch(_sleep(30)))
        while not db._in_flight:  # noqa: ASYNC110 - Database has no event for it
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        started = time.monotonic()
        task.cancel()  # as the execution timeout does: cancel first, then interrupt
        await db.interrupt()
        with pytest.raises(asyncio.CancelledError):
            await task
        await db.close()
        assert time.monotonic() - started < 3
    assert len(raw) == 1
    assert small.pool.checkedout() == 0  # type: ignore[attr-defined]
    async with engine.connect() as other:
        running = (
            await other.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE state = 'active' AND query LIKE 'SELECT pg_sleep%'"
                )
            )
        ).scalar_one()
    assert running == 0
    after = Database(small)
    try:
        assert await after.fetch(_by_column_statement(POSTS.c.id, PG), KEYS)
    finally:
        await after.close()
    assert small.pool.checkedout() == 0  # type: ignore[attr-defined]
