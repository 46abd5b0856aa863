"""Rounds (loaders/rounds.py) and the request's Database, without GraphQL."""

import asyncio
from typing import Any

import pytest
from sqlalchemy import literal_column, select
from sqlalchemy.ext.asyncio import AsyncEngine

from loaders import Database, Loaders
from server.store import models
from server.store.models import table_of
from tests.support.sqlcount import count_statements

USERS = table_of(models.User)


async def test_keys_that_arrive_while_a_statement_runs_share_one_round(
    engine: AsyncEngine,
) -> None:
    db = Database(engine)
    loaders = Loaders(db)

    async def after_a_statement() -> Any:
        # the request is busy: the pending batch must wait
        await db.fetch(select(literal_column("1")))
        return await loaders.by_id(USERS).load(2)

    try:
        with count_statements(engine) as statements:
            first, second = await asyncio.gather(loaders.by_id(USERS).load(1), after_a_statement())
    finally:
        await db.close()
    assert first is not None
    assert second is not None
    assert (first.id, second.id) == (1, 2)
    # SELECT 1, then ONE users-by-id statement for both keys (plain aiodataloader: two)
    assert len(statements) == 2, statements.listing()
    assert "IN" in statements[1] or "ANY" in statements[1]


async def test_each_round_starts_with_fresh_loaders(engine: AsyncEngine) -> None:
    db = Database(engine)
    loaders = Loaders(db)
    try:
        with count_statements(engine) as statements:
            once = await loaders.by_id(USERS).load(1)
            again = await loaders.by_id(USERS).load(1)  # a later round: loaded again
    finally:
        await db.close()
    assert once == again
    assert len(statements) == 2


async def test_a_closed_database_refuses_statements_but_a_released_one_reconnects(
    engine: AsyncEngine,
) -> None:
    db = Database(engine)
    assert (await db.fetch(select(literal_column("1"))))[0][0] == 1
    await db.release()
    assert (await db.fetch(select(literal_column("2"))))[0][0] == 2
    await db.close()
    assert not db.busy()
    with pytest.raises(RuntimeError, match="closed"):
        await db.fetch(select(literal_column("3")))
