"""The contract data set: small, deterministic, full of the awkward cases.

Tests compute what they expect from these lists in Python (code-point order, `str.lower()`),
so every backend is held to the same reference behaviour.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from server.store import models
from server.store.engine import transaction
from server.store.models import table_of
from server.store.writes import sync_id_sequences

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@dataclass(frozen=True)
class UserRow:
    id: int
    username: str
    created_at: datetime


@dataclass(frozen=True)
class PostRow:
    id: int
    title: str
    user_id: int
    created_at: datetime


@dataclass(frozen=True)
class ArticleRow:
    id: int
    title: str
    created_at: datetime


@dataclass(frozen=True)
class CommentRow:
    id: int
    text: str
    article_id: int
    author_id: int | None
    created_at: datetime


_NAMES = [
    "alice",
    "Bob",
    "carol_x",
    "carolXx",
    "dave%",
    "Eve.lynn",
    "zed",
    "ALICE2",
    "b-ob",
    "quiet",
]
# Users 2 and 3 share a timestamp: ordering by CREATED_AT must break the tie by id.
USERS = [UserRow(i + 1, name, at(10 if i in (1, 2) else i)) for i, name in enumerate(_NAMES)]

_TRICKY_TITLES = [
    "Hello World",
    "hello world",
    "HELLO there",
    "100% sure",
    "100 percent",
    "snake_case",
    "snakeXcase",
    "back\\slash",
    "backXslash",
    "Ünïcødé rocks",
    "ünïcødé lower",
    "naïve approach",
    "naive approach",
    "Padded",
    "Padded ",
    "Zebra",
    "apple",
    "Äpfel",
    "Ωmega",
    "slash/path",
]
# User 1 has 25 posts (more than the default page of 20); users 2, 4, 5 a few; 3 none.
_OWNERS = [1] * 25 + [2, 2, 2, 4, 5, 5, 6, 7, 8, 9]
POSTS = [
    PostRow(
        id=n + 1,
        title=_TRICKY_TITLES[n] if n < len(_TRICKY_TITLES) else f"Post {n + 1:02d}",
        user_id=owner,
        # Every fifth post shares its timestamp with the one before (ties on CREATED_AT).
        created_at=at(100 + n - (n % 5 == 4)),
    )
    for n, owner in enumerate(_OWNERS)
]
# The same title twice, on different users: ties on TITLE too.
POSTS[27] = PostRow(28, "Zebra", 2, POSTS[27].created_at)

ARTICLES = [
    ArticleRow(1, "Busy article", at(500)),
    ArticleRow(2, "Quiet article", at(501)),
    ArticleRow(3, "Empty article", at(502)),
    ArticleRow(4, "ärticle four", at(503)),
]

_COMMENT_TEXTS = [
    "First!",
    "first again",
    "100% agree",
    "under_score",
    "UNDER-SCORE",
    "ÜNÏCØDÉ",
    "ünïcødé",
    "naïve",
    "naive",
    "back\\slash",
]
_COMMENT_PLAN = [
    (1, 1),
    (1, 2),
    (1, None),
    (1, 1),
    (1, 3),
    (1, 4),
    (1, 1),
    (1, 2),
    (1, None),
    (1, 5),
    (1, 6),
    (1, 1),
    (2, 7),
    (4, 1),
    (4, 2),
    (4, 8),
    (4, None),
    (4, 9),
]
COMMENTS = [
    CommentRow(
        id=n + 1,
        text=_COMMENT_TEXTS[n] if n < len(_COMMENT_TEXTS) else f"Comment {n + 1}",
        article_id=article,
        author_id=author,
        created_at=at(600 + n // 2),  # pairs share a timestamp
    )
    for n, (article, author) in enumerate(_COMMENT_PLAN)
]


# Every table's rows, by table name: the registry-driven tests (tests/support/connections.py)
# find an entity's reference rows here.
ROWS: dict[str, list[Any]] = {
    table_of(models.User).name: USERS,
    table_of(models.Post).name: POSTS,
    table_of(models.Article).name: ARTICLES,
    table_of(models.Comment).name: COMMENTS,
}


async def load(engine: AsyncEngine) -> None:
    """Insert the whole data set with plain SQL inserts (explicit ids, as the contract allows)."""
    async with transaction(engine) as connection:
        for table in SQLModel.metadata.sorted_tables:
            rows = ROWS.get(table.name)
            if rows:
                await connection.execute(insert(table), [vars(row) for row in rows])
        await sync_id_sequences(connection)
