"""users, posts, articles, comments

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from loaders.dialect import Text, UTCDateTime, utcnow

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL_TABLE = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_nopad_bin",
               "mysql_engine": "InnoDB"}


def _created_at() -> sa.Column:
    return sa.Column("created_at", UTCDateTime(), nullable=False, server_default=utcnow())


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", Text(32), nullable=False),
        sa.Column("username_key", Text(32), sa.Computed("lower(username)", persisted=True)),
        _created_at(),
        **MYSQL_TABLE,
    )
    op.create_index("uq_users_username_key", "users", ["username_key"], unique=True)
    op.create_table(
        "posts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", Text(200), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False),
        _created_at(),
        **MYSQL_TABLE,
    )
    op.create_index("ix_posts_user_id", "posts", ["user_id"])
    op.create_table(
        "articles",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", Text(200), nullable=False),
        _created_at(),
        **MYSQL_TABLE,
    )
    op.create_table(
        "comments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("text", Text(5000), nullable=False),
        sa.Column("article_id", sa.Integer, sa.ForeignKey("articles.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("author_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL"),
                  nullable=True),
        _created_at(),
        **MYSQL_TABLE,
    )
    op.create_index("ix_comments_article_id", "comments", ["article_id"])
    op.create_index("ix_comments_author_id", "comments", ["author_id"])


def downgrade() -> None:
    op.drop_table("comments")
    op.drop_table("articles")
    op.drop_table("posts")
    op.drop_table("users")
