"""Every connection field of the schema, read from the entity registry (server/api/nodes/).

The filter and pagination tests are parametrised over `CONNECTIONS`, so a new connection —
a root `Query.xs` or a nested `Parent.xs` — gets their tests from its declaration alone; its
reference rows come from `tests/support/dataset.py` (`ROWS`, by table name).
"""

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from server.api.inputs import DateTimeFilter, StringFilter
from server.api.nodes import ENTITIES, Entity
from tests.support import dataset

Row = Any  # one of the dataset's frozen row classes


@dataclass(frozen=True)
class Conn:
    """One connection field: how to query it and what it must return, computed in Python."""

    name: str  # as in cursors and test ids: "Query.posts", "User.posts", …
    field: str  # the GraphQL field
    node_type: str  # "Post": gives PostOrder, PostFilter
    orders: dict[str, Callable[[Row], Any]]  # orderBy field -> sort value
    rows: Callable[[int | None], list[Row]]  # parent database id (None for a root) -> rows
    text: str  # the StringFilter column: GraphQL filter field == dataset attribute
    has_created_at_filter: bool
    parent_type: str | None = None  # "User" / "Article" for nested connections
    parents: tuple[int, ...] = ()  # every parent's database id

    @property
    def nested(self) -> bool:
        return self.parent_type is not None


def _filter_fields(entity: Entity[Any], kind: type) -> list[str]:
    return [f.name for f in dataclasses.fields(entity.filter) if kind.__name__ in str(f.type)]


def _orders(entity: Entity[Any]) -> dict[str, Callable[[Row], Any]]:
    order_field = next(f for f in dataclasses.fields(entity.order) if f.name == "field")
    enum = order_field.type
    assert isinstance(enum, type)
    return {member.name: attrgetter(member.value) for member in enum}  # type: ignore[attr-defined]


def _conn(
    entity: Entity[Any],
    name: str,
    field: str,
    rows: Callable[[int | None], list[Row]],
    parent: Entity[Any] | None = None,
) -> Conn:
    texts = _filter_fields(entity, StringFilter)
    assert texts, f"{entity.name}Filter has no StringFilter field to test"
    return Conn(
        name=name,
        field=field,
        node_type=entity.name,
        orders=_orders(entity),
        rows=rows,
        text=texts[0],
        has_created_at_filter="created_at" in _filter_fields(entity, DateTimeFilter),
        parent_type=None if parent is None else parent.name,
        parents=() if parent is None else tuple(r.id for r in dataset.ROWS[parent.table.name]),
    )


def _all() -> list[Conn]:
    conns = []
    for entity in ENTITIES:
        if entity.root is not None:

            def every(
                _: int | None, rows: list[Row] = dataset.ROWS[entity.table.name]
            ) -> list[Row]:
                return list(rows)

            conns.append(_conn(entity, f"Query.{entity.root}", entity.root, every))
    for nested in ENTITIES.connections:
        rows = dataset.ROWS[nested.entity.table.name]
        column = nested.relation.remote_column.name

        def children(parent: int | None, rows: list[Row] = rows, column: str = column) -> list[Row]:
            return [r for r in rows if getattr(r, column) == parent]

        conns.append(
            _conn(
                nested.entity,
                f"{nested.owner}.{nested.field}",
                nested.field,
                children,
                ENTITIES[nested.owner],
            )
        )
    return conns


CONNECTIONS: dict[str, Conn] = {conn.name: conn for conn in _all()}
# The root connection listing each parent type, for queries that reach nested connections.
PARENT_LIST: dict[str, str] = {e.name: e.root for e in ENTITIES if e.root is not None}
