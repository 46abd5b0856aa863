"""The tables of the contract and their relation pairs (plus the author link and tokens).

User 1–n Post (`Post.user`), Article 1–n Comment (`Comment.article`), and User 1–n Comment
(`Comment.author`, nullable: SET NULL when the user goes). Every relationship is `lazy="raise"`:
rows are loaded by `loaders/`, and a resolver that touches `user.posts` directly fails loudly
instead of running a hidden query per row. Deletes cascade in the database (`passive_deletes`).

No `from __future__ import annotations` here: SQLModel's Relationship needs real annotations.
"""

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import (
    Boolean,
    Column,
    Computed,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    false,
)
from sqlmodel import Field, Relationship, SQLModel

from loaders.dialect import Text, UTCDateTime, now, utcnow

USERNAME_MAX = 32
TITLE_MAX = 200
TEXT_MAX = 5000


def table_of(model: type[SQLModel]) -> Table:
    """The Core table behind a SQLModel table class (loaders work on tables, not classes)."""
    table = model.__table__  # type: ignore[attr-defined] # set by SQLModel for table=True
    assert isinstance(table, Table)
    return table


def _rel(**kwargs: Any) -> dict[str, Any]:
    return {"lazy": "raise", **kwargs}


def _created_at() -> Any:
    return Field(
        default_factory=now,
        sa_column=Column(UTCDateTime(), nullable=False, server_default=utcnow()),
    )


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (Index("uq_users_username_key", "username_key", unique=True),)

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    username: str = Field(sa_column=Column(Text(USERNAME_MAX), nullable=False))
    # Uniqueness ignoring case, on all three backends: MariaDB has no expression indexes,
    # so the folded name is a generated column with a unique index.
    username_key: str | None = Field(
        default=None,
        sa_column=Column(Text(USERNAME_MAX), Computed("lower(username)", persisted=True)),
    )
    created_at: datetime = _created_at()
    # `private` columns are never selected by the read loaders (see loaders.batch).
    password_hash: str | None = Field(
        default=None, sa_column=Column(String(255), nullable=True, info={"private": True})
    )
    is_editor: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )

    posts: list["Post"] = Relationship(
        back_populates="user", sa_relationship_kwargs=_rel(passive_deletes=True)
    )
    comments: list["Comment"] = Relationship(
        back_populates="author", sa_relationship_kwargs=_rel(passive_deletes=True)
    )


class Post(SQLModel, table=True):
    __tablename__ = "posts"

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    title: str = Field(sa_column=Column(Text(TITLE_MAX), nullable=False))
    user_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    created_at: datetime = _created_at()

    user: User = Relationship(back_populates="posts", sa_relationship_kwargs=_rel())


class Article(SQLModel, table=True):
    __tablename__ = "articles"

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    title: str = Field(sa_column=Column(Text(TITLE_MAX), nullable=False))
    created_at: datetime = _created_at()

    comments: list["Comment"] = Relationship(
        back_populates="article", sa_relationship_kwargs=_rel(passive_deletes=True)
    )


class Comment(SQLModel, table=True):
    __tablename__ = "comments"

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    text: str = Field(sa_column=Column(Text(TEXT_MAX), nullable=False))
    article_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("articles.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    author_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("users.id", ondelete="SET NULL"), nullable=True, index=True
        ),
    )
    created_at: datetime = _created_at()

    article: Article = Relationship(back_populates="comments", sa_relationship_kwargs=_rel())
    author: Optional[User] = Relationship(  # noqa: UP045 - SQLModel needs Optional[...] here
        back_populates="comments", sa_relationship_kwargs=_rel()
    )


class Token(SQLModel, table=True):
    """A bearer token, stored only as the sha256 of what the client holds."""

    __tablename__ = "tokens"
    # An index, as migration 0002 creates it (a UNIQUE column would be a constraint instead).
    __table_args__ = (Index("uq_tokens_token_hash", "token_hash", unique=True),)

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    user_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    token_hash: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: datetime = _created_at()
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
