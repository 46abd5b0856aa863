"""bench/floor.py's check on the contract data set: for every peer-race query, the hand-written
floor sends inkgraph's statements with inkgraph's parameters and answers inkgraph's bytes.

PostgreSQL only (the floor is raw asyncpg): `backend` is narrowed to it here, so the test is
skipped like every PostgreSQL test when the server is unreachable, and fails under CI. The
contract data has what the benchmark data lacks — comments without an author, a user without
posts, an article without comments — so the floor's shaping meets those cases too.
"""

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from bench import floor
from bench.cpu import QUERIES, make_client, send
from server.settings import Settings

pytestmark = pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", marks=pytest.mark.postgresql)], indirect=True
)


@pytest_asyncio.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[Any]:
    connection = await asyncpg.connect(floor.asyncpg_dsn(engine))
    try:
        yield connection
    finally:
        await connection.close()


@pytest_asyncio.fixture
async def app(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(engine, Settings(graphql_compiled_plan=True)) as client:
        yield client


@pytest.mark.parametrize("query", list(QUERIES))
async def test_the_floor_sends_inkgraphs_statements_and_answers_its_bytes(
    engine: AsyncEngine, app: httpx.AsyncClient, connection: Any, query: str
) -> None:
    by_hand = await floor.verify(engine, app, connection, query)
    # What is measured is the floor without verify's recording: the same bytes too.
    assert await by_hand() == await send(app, orjson.dumps({"query": QUERIES[query]}))


async def test_a_floor_that_answers_other_bytes_fails_loudly(
    engine: AsyncEngine,
    app: httpx.AsyncClient,
    connection: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def no_usernames(db: floor.Floor) -> bytes:
        users = (await db.run(0, 101))[:100]
        return orjson.dumps({"data": {"users": {"nodes": [{"id": u["id"]} for u in users]}}})

    monkeypatch.setitem(floor.FLOORS, "q1", no_usernames)
    with pytest.raises(floor.FloorMismatch, match="differs from inkgraph's at byte"):
        await floor.verify(engine, app, connection, "q1")


async def test_a_floor_that_sends_other_parameters_fails_loudly(
    engine: AsyncEngine,
    app: httpx.AsyncClient,
    connection: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def one_row_short(db: floor.Floor) -> bytes:
        await db.run(0, 100)  # first: 100 without the row for hasNextPage
        return b""

    monkeypatch.setitem(floor.FLOORS, "q1", one_row_short)
    with pytest.raises(floor.FloorMismatch, match="statements are not inkgraph's"):
        await floor.verify(engine, app, connection, "q1")
