"""Alembic environment.

`server.migrate` hands a live synchronous connection in `config.attributes["connection"]`
(the async engine runs Alembic inside `AsyncConnection.run_sync`), so migrations run on the
same driver and URL the server uses, from the CLI and from tests alike.
"""

from alembic import context
from sqlmodel import SQLModel

import server.store.models  # noqa: F401 - registers the tables on SQLModel.metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `inkgraph migrate`, not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
