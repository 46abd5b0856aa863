"""Column types the loaders rely on (loaders/dialect.py), read back on every backend."""

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from server.store.models import User, table_of

KOLKATA = timezone(timedelta(hours=5, minutes=30))


async def test_instants_come_back_aware_utc_whatever_the_sessions_time_zone(
    engine: AsyncEngine,
) -> None:
    users = table_of(User)
    first = select(users.c.created_at).order_by(users.c.id).limit(1)
    async with engine.connect() as connection:
        if engine.dialect.name != "postgresql":
            created_at = (await connection.execute(first)).scalar_one()
        else:
            # PostgreSQL rows skip the UTC conversion (asyncpg decodes timestamptz as UTC
            # already); a session in another time zone must not change that.
            await connection.execute(text("SET TIME ZONE 'Asia/Kolkata'"))
            shown = func.to_char(users.c.created_at, "YYYY-MM-DD HH24:MI:SS.US")
            row = (await connection.execute(first.add_columns(shown.label("shown")))).one()
            await connection.execute(text("RESET TIME ZONE"))
            created_at = row.created_at
            # The session shows local time (+05:30); the value read is that instant, in UTC.
            assert created_at == datetime.fromisoformat(row.shown).replace(tzinfo=KOLKATA)
    assert isinstance(created_at, datetime)
    assert created_at.tzinfo is not None
    assert created_at.utcoffset() == timedelta(0)
    assert created_at.astimezone(UTC) == created_at
