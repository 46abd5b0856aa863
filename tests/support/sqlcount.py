"""Count SQL statements through SQLAlchemy engine events (the batching proofs use this)."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


class Statements(list[str]):
    def listing(self) -> str:
        return "\n".join(f"  {n}. {sql[:400]}" for n, sql in enumerate(self, 1))


@contextmanager
def count_statements(engine: AsyncEngine) -> Iterator[Statements]:
    """Record every statement `engine` sends while the block runs."""
    seen = Statements()

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
