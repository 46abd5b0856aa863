"""Fixtures of the loader tests."""

from collections.abc import AsyncIterator

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from loaders import Database


@pytest_asyncio.fixture
async def db(engine: AsyncEngine) -> AsyncIterator[Database]:
    """One request's database access over the test engine, closed afterwards."""
    database = Database(engine)
    try:
        yield database
    finally:
        await database.close()
