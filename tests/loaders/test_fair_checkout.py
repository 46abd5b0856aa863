"""A full pool serves requests first come, first served (loaders/database.py, `fair_checkouts`).

SQLAlchemy's async queue pool lets a newcomer take a connection handed back for a waiter, and
the waiter queues again at the back: with more clients than connections some were starved for
the whole run while others never waited. Here 12 clients share 2 connections in a closed loop
(each sends its next request when the last is answered, like a load generator): every client
must get about the same number of answers.
"""

import asyncio
import time

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from loaders import Database, DatabaseUnavailable
from server.settings import Settings
from server.store.engine import make_engine

CLIENTS = 12


async def test_a_full_pool_serves_its_clients_in_turn(engine: AsyncEngine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    small = make_engine(Settings(database_url=url, db_pool_size=2, db_max_overflow=0))
    answered = [0] * CLIENTS
    deadline = time.perf_counter() + 1.5

    async def client(number: int) -> None:
        while time.perf_counter() < deadline:
            db = Database(small)
            try:
                await db.fetch(text("SELECT 1"))
                await asyncio.sleep(0.002)  # the rest of the request, connection held
            finally:
                await db.close()
            answered[number] += 1

    try:
        await asyncio.gather(*(client(n) for n in range(CLIENTS)))
    finally:
        await small.dispose()
    assert min(answered) >= 0.5 * max(answered), answered


async def test_waiting_for_a_place_is_bounded_by_the_pool_timeout(engine: AsyncEngine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    small = make_engine(
        Settings(database_url=url, db_pool_size=1, db_max_overflow=0, db_pool_timeout=0.2)
    )
    holder, waiter = Database(small), Database(small)
    try:
        await holder.fetch(text("SELECT 1"))
        started = time.perf_counter()
        with pytest.raises(DatabaseUnavailable):
            await waiter.fetch(text("SELECT 1"))
        assert time.perf_counter() - started < 1.0
        await holder.close()
        # The place is free again: the next request is served.
        assert (await waiter.fetch(text("SELECT 1")))[0][0] == 1
    finally:
        await holder.close()
        await waiter.close()
        await small.dispose()


async def test_a_request_that_ends_while_waiting_leaves_no_connection_behind(
    engine: AsyncEngine,
) -> None:
    url = engine.url.render_as_string(hide_password=False)
    small = make_engine(Settings(database_url=url, db_pool_size=1, db_max_overflow=0))
    holder, late = Database(small), Database(small)
    try:
        await holder.fetch(text("SELECT 1"))
        waiting = asyncio.ensure_future(late.fetch(text("SELECT 1")))
        await asyncio.sleep(0.05)
        await late.close()  # the request is over; its batch is still queued for a place
        await holder.close()
        with pytest.raises(RuntimeError, match="closed"):
            await waiting
        # The only connection went back: a new request gets it at once.
        fresh = Database(small)
        async with asyncio.timeout(2):
            assert (await fresh.fetch(text("SELECT 1")))[0][0] == 1
        await fresh.close()
    finally:
        await holder.close()
        await late.close()
        await small.dispose()
