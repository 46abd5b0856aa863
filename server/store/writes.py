"""The SQL of every mutation, one small function per statement, run inside one transaction.

Callers open the transaction (`Database.transaction()`); any exception rolls all of it back.
Deleting a user or an article spells out each step instead of leaning on ON DELETE rules, so the
outcome does not depend on a backend enforcing foreign keys (the rules stay as a safety net).
"""

from typing import Any

from sqlalchemy import Row, Table, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from loaders.dialect import now
from server.store.models import Article, Comment, Post, Token, User, table_of

USERS, POSTS = table_of(User), table_of(Post)
ARTICLES, COMMENTS, TOKENS = table_of(Article), table_of(Comment), table_of(Token)


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
    (MariaDB's AUTO_INCREMENT and SQLite's rowid follow by themselves)."""
    if connection.dialect.name != "postgresql":
        return
    for table in (USERS, POSTS, ARTICLES, COMMENTS, TOKENS):
        await connection.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                f"coalesce((SELECT max(id) FROM {table.name}), 0) + 1, false)"
            )
        )


def is_username_conflict(error: IntegrityError) -> bool:
    """True when a write broke the case-insensitive username uniqueness (every backend names
    the index or column `username_key` in its message)."""
    return "username_key" in str(error.orig)


async def count_rows(connection: AsyncConnection, table: Table) -> int:
    return int((await connection.execute(select(func.count()).select_from(table))).scalar_one())
