"""Deterministic demo data for `inkgraph seed` (and `make run`): only into an empty database."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from server.auth import Passwords
from server.store import models
from server.store.engine import transaction
from server.store.models import table_of
from server.store.writes import sync_id_sequences

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)

USERNAMES = [
    "ada",
    "grace",
    "linus",
    "margaret",
    "ken",
    "barbara",
    "dennis",
    "frances",
    "edsger",
    "radia",
    "unicode_fan",
    "percent.sign",
]
_TOPICS = [
    "GraphQL",
    "SQL",
    "Pagination",
    "Dataloaders",
    "Relay",
    "Keyset cursors",
    "Window functions",
    "Migrations",
    "Testing",
    "Unicode",
]


def _at(minutes: int) -> datetime:
    return _EPOCH + timedelta(minutes=minutes)


# Demo accounts for trying every mutation in GraphiQL (README, "Try the write API").
EDITOR = ("ada", "ada-lovelace-1843")
READER = ("grace", "grace-hopper-1906")


async def seed(engine: AsyncEngine, passwords: Passwords | None = None) -> bool:
    """Insert the demo data set. Returns False (and writes nothing) if users already exist.

    `ada` is an editor and `grace` a regular user; both can log in with the passwords above.
    """
    passwords = passwords or Passwords()
    hashes = {name: await passwords.hash(secret) for name, secret in (EDITOR, READER)}
    users_t = table_of(models.User)
    async with transaction(engine) as connection:
        existing = (await connection.execute(select(func.count()).select_from(users_t))).scalar()
        if existing:
            return False
        users = [
            {
                "id": i + 1,
                "username": name,
                "created_at": _at(i),
                "password_hash": hashes.get(name),
                "is_editor": name == EDITOR[0],
            }
            for i, name in enumerate(USERNAMES)
        ]
        await connection.execute(insert(users_t), users)
        posts = [
            {
                "id": n + 1,
                "user_id": (n % len(users)) + 1,
                "title": f"{_TOPICS[n % len(_TOPICS)]} notes #{n + 1}",
                "created_at": _at(100 + n),
            }
            for n in range(60)
        ]
        await connection.execute(insert(table_of(models.Post)), posts)
        articles = [
            {"id": n + 1, "title": f"On {_TOPICS[n]}", "created_at": _at(200 + n)}
            for n in range(len(_TOPICS))
        ]
        await connection.execute(insert(table_of(models.Article)), articles)
        comments = [
            {
                "id": n + 1,
                "article_id": (n % len(articles)) + 1,
                "author_id": None if n % 7 == 6 else (n % len(users)) + 1,
                "text": f"Comment {n + 1}: {'Great' if n % 2 else 'naïve'} take on "
                f"{_TOPICS[n % len(_TOPICS)]} (100% agree_)",
                "created_at": _at(300 + n),
            }
            for n in range(80)
        ]
        await connection.execute(insert(table_of(models.Comment)), comments)
        await sync_id_sequences(connection)
    return True
