"""Apply Alembic migrations over an async engine (`inkgraph migrate`, `make run`, tests)."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from server.store.engine import transaction

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent.parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config built in code: no alembic.ini at the top level."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database behind `engine` to `revision`. Idempotent."""

    def run(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    async with transaction(engine) as connection:
        await connection.run_sync(run)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    def run(connection: Connection) -> None:
        command.downgrade(alembic_config(connection), revision)

    async with transaction(engine) as connection:
        await connection.run_sync(run)
