"""accounts: password hashes, editor flag, bearer tokens

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Both new user columns are nullable or have a server default, so plain SQL inserts into `users`
keep working (such a user simply cannot log in until a password is set).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from loaders.dialect import UTCDateTime, utcnow

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL_TABLE = {
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_nopad_bin",
    "mysql_engine": "InnoDB",
}


def upgrade() -> None:
    # Plain ADD COLUMN, not batch mode: SQLite supports it, and batch mode would copy the
    # table, which SQLite refuses for the generated username_key column.
    op.add_column("users", sa.Column("password_hash", sa.String(255), nullable=True))
    op.add_column(
        "users", sa.Column("is_editor", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        # sha256 of the bearer token, hex: the token itself is never stored.
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False, server_default=utcnow()),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        **MYSQL_TABLE,
    )
    op.create_index("uq_tokens_token_hash", "tokens", ["token_hash"], unique=True)
    op.create_index("ix_tokens_user_id", "tokens", ["user_id"])


def downgrade() -> None:
    op.drop_table("tokens")
    op.drop_column("users", "is_editor")
    op.drop_column("users", "password_hash")
