"""Alembic migrations: the only way inkgraph's schema is created or evolved."""
