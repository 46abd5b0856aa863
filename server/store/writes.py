"""The SQL of every mutation, one small function per statement, run inside one transaction.

Callers open the transaction (`Database.transaction()`); any exception rolls all of it back.
Tokens are rows here too: the secret is handed out once and only its sha256 is stored, so the
token check every mutation starts with (`user_for_token`) is SQL of this module as well.
Deleting a user or an article spells out each step instead of leaning on ON DELETE rules, so the
outcome does not depend on a backend enforcing foreign keys (the rules stay as a safety net).
"""

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, Table, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

from loaders import Database
from loaders.dialect import now
from loaders.filters import NUL
from server.store.models import Article, Comment, Post, Token, User, table_of

USERS, POSTS = table_of(User), table_of(Post)
ARTICLES, COMMENTS, TOKENS = table_of(Article), table_of(Comment), table_of(Token)
TOKEN_PREFIX = "ink_"
VIEWER_COLUMNS = ("id", "username", "username_key", "created_at", "is_editor")


async def insert_row(connection: AsyncConnection, table: Table, **values: Any) -> int:
    """Insert one row (created_at set here, in UTC) and return its primary key."""
    result = await connection.execute(insert(table).values(created_at=now(), **values))
    (pk,) = result.inserted_primary_key or (None,)
    assert isinstance(pk, int)
    return pk


async def update_row(connection: AsyncConnection, table: Table, pk: int, **values: Any) -> None:
    await connection.execute(update(table).where(table.c.id == pk).values(**values))


async def delete_row(connection: AsyncConnection, table: Table, pk: int) -> None:
    await connection.execute(delete(table).where(table.c.id == pk))


async def fetch_one(
    connection: AsyncConnection, table: Table, pk: int, *columns: str
) -> Row[Any] | None:
    """Selected columns of one row, read inside the transaction (for ownership checks)."""
    statement = select(*(table.c[name] for name in columns)).where(table.c.id == pk)
    return (await connection.execute(statement)).first()


async def user_by_username(connection: AsyncConnection, username: str) -> Row[Any, Any] | None:
    """id and password hash of the user with this name, ignoring case (for login)."""
    if NUL in username:
        return None  # no username holds one, and PostgreSQL refuses it as a parameter
    statement = select(USERS.c.id, USERS.c.password_hash).where(
        USERS.c.username_key == username.lower()
    )
    return (await connection.execute(statement)).first()


async def delete_user(connection: AsyncConnection, user_id: int) -> None:
    """Remove a user: tokens and posts go, comments stay with no author."""
    await connection.execute(delete(TOKENS).where(TOKENS.c.user_id == user_id))
    await clear_comment_authors(connection, user_id)
    await connection.execute(delete(POSTS).where(POSTS.c.user_id == user_id))
    await delete_row(connection, USERS, user_id)


async def clear_comment_authors(connection: AsyncConnection, user_id: int) -> None:
    await connection.execute(
        update(COMMENTS).where(COMMENTS.c.author_id == user_id).values(author_id=None)
    )


async def delete_article(connection: AsyncConnection, article_id: int) -> None:
    """Remove an article and its comments."""
    await connection.execute(delete(COMMENTS).where(COMMENTS.c.article_id == article_id))
    await delete_row(connection, ARTICLES, article_id)


async def set_editor(connection: AsyncConnection, username: str) -> bool:
    """Grant the editor right (CLI only). False when no user has that name."""
    result = await connection.execute(
        update(USERS).where(USERS.c.username_key == username.lower()).values(is_editor=True)
    )
    return result.rowcount > 0


async def sync_id_sequences(connection: AsyncConnection) -> None:
    """After inserts with explicit ids, move PostgreSQL's id sequences past the largest id
    (MariaDB's AUTO_INCREMENT and SQLite's rowid follow by themselves): every table of the
    models whose key is an `id` column, so a new table is covered by being declared."""
    if connection.dialect.name != "postgresql":
        return
    for table in id_tables():
        await connection.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                f"coalesce((SELECT max(id) FROM {table.name}), 0) + 1, false)"
            )
        )


def id_tables() -> list[Table]:
    """The models' tables keyed by one integer `id` column, in dependency order."""
    return [
        table
        for table in SQLModel.metadata.sorted_tables
        if [c.name for c in table.primary_key.columns] == ["id"]
    ]


def is_username_conflict(error: IntegrityError) -> bool:
    """True when a write broke the case-insensitive username uniqueness (every backend names
    the index or column `username_key` in its message)."""
    return "username_key" in str(error.orig)


async def count_rows(connection: AsyncConnection, table: Table) -> int:
    return int((await connection.execute(select(func.count()).select_from(table))).scalar_one())


# ---------------------------------------------------------------------------- tokens


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_token(connection: AsyncConnection, user_id: int, ttl: timedelta) -> str:
    """Create a token for `user_id` inside the caller's transaction; returns it in clear once."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    issued = now()
    await connection.execute(
        insert(TOKENS).values(
            user_id=user_id,
            token_hash=hash_token(token),
            created_at=issued,
            expires_at=issued + ttl,
        )
    )
    return token


async def revoke_token(connection: AsyncConnection, token: str) -> bool:
    result = await connection.execute(
        update(TOKENS)
        .where(TOKENS.c.token_hash == hash_token(token), TOKENS.c.revoked_at.is_(None))
        .values(revoked_at=now())
    )
    return result.rowcount > 0


async def revoke_other_tokens(connection: AsyncConnection, user_id: int, keep: str | None) -> None:
    """After a password change, every other session of the user ends."""
    statement = update(TOKENS).where(TOKENS.c.user_id == user_id, TOKENS.c.revoked_at.is_(None))
    if keep is not None:
        statement = statement.where(TOKENS.c.token_hash != hash_token(keep))
    await connection.execute(statement.values(revoked_at=now()))


async def user_for_token(db: Database, token: str, at: datetime) -> Row[Any] | None:
    """The user a valid (known, unexpired, unrevoked) token belongs to, else None."""
    statement = (
        select(*(USERS.c[name] for name in VIEWER_COLUMNS))
        .join(TOKENS, TOKENS.c.user_id == USERS.c.id)
        .where(
            TOKENS.c.token_hash == hash_token(token),
            TOKENS.c.revoked_at.is_(None),
            TOKENS.c.expires_at > at,
        )
    )
    rows = await db.fetch(statement)
    return rows[0] if rows else None
