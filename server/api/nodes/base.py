"""The entity protocol, declared once: `RowNode`, `to_one`, `connect` and the registry.

Every entity is a `RowNode`: a strawberry type wrapping one database row (kept as a private
field) with its global `id` and `databaseId`. Scalar fields are plain attributes filled once
per row by `from_row` — no resolver per scalar, which is what makes large pages cheap (see
server/api/execution.py) — and each relation is one small resolver that asks the loaders.

An entity module (server/api/nodes/<entity>.py) declares, in this order:

- its `XOrderField` / `XOrder` / `XFilter` inputs (field names are column names);
- the type, a `RowNode` whose many-to-one fields are `to_one(Relation.of(...), Target)`:
  one declaration gives the field, its nullability (from the foreign key) and the relation
  the loaders and the compiled plan batch by;
- `register(Type, Model, order=…, filter=…, root="xs")`, which makes it an `Entity`: `node`,
  `nodes`, the schema's type list, the root connection `Query.xs` and the tests all read the
  registry;
- `connect(Parent, "xs", ENTITY)` for each one-to-many side, which adds the connection field
  `Parent.xs` over the model relation of the same name. Connections are declared by the child,
  so a new entity touches only its own module, and their cursor key is where they sit
  ("User.posts"): one connection never accepts another's cursors.

A half-declared entity fails at import (a relation the models lack, a scalar with no column)
or when the schema is built (`check`: a node type not registered, a relation pointing at a
type of another table), never as an error at run time. tests/test_entities.py proves each.

Strawberry internals used here (strawberry-graphql pinned exactly, see pyproject.toml):
`attach` appends a `StrawberryField` to a finished type's `StrawberryObjectDefinition.fields`
(setting its `python_name` and `origin`, as strawberry's own `_get_fields` does), and `check`
reads the built schema's graphql-core `type_map`. If strawberry stops reading `fields` at
schema build, the attached connections vanish from schema.graphql and tests/test_schema_file.py
and tests/test_entities.py fail.
"""

import asyncio
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Self, TypeVar

import strawberry
from sqlalchemy import Row, Table
from sqlmodel import SQLModel
from strawberry.types.base import get_object_definition
from strawberry.types.field import StrawberryField
from strawberry.utils.str_converters import to_camel_case

from loaders import Relation
from server.api import ids
from server.api.context import Info
from server.api.inputs import UNSET, conditions_of, filter_operators, given, order_of
from server.api.relay import (
    CONNECTION_FIELD,
    Connection,
    ConnectionField,
    PageSource,
    page_spec,
    shareable,
)
from server.store.models import table_of

# Rows a page loaded for its objects' many-to-one fields: relation -> foreign key -> row.
Related = Mapping[Relation, Mapping[Any, Row[Any] | None]] | None
# Key of a many-to-one field's `Relation` in its strawberry metadata.
TO_ONE = "inkgraph.to_one"


class EntityError(TypeError):
    """An entity declared by halves: raised at import or schema build, never at run time."""


@strawberry.interface(description="An object with a global ID, refetchable with `node(id:)`.")
class Node:
    id: strawberry.ID


@strawberry.type
class RowNode(Node):
    """What every entity carries: its global ID, its key, its row and the related rows its page
    preloaded (`entity_objects`)."""

    database_id: int
    row: strawberry.Private[Row[Any]]
    related: strawberry.Private[Related] = None

    # Set by `register`: (attribute, convert) for each scalar read from the row.
    _scalars: ClassVar[tuple[tuple[str, Callable[[Any], Any] | None], ...]] = ()

    @classmethod
    def from_row(cls, row: Row[Any]) -> Self:
        if "_scalars" not in cls.__dict__:
            raise EntityError(f"{cls.__name__} is not registered (server/api/nodes/base.py)")
        values = {
            name: getattr(row, name) if convert is None else convert(getattr(row, name))
            for name, convert in cls._scalars
        }
        return cls(
            id=strawberry.ID(ids.encode(cls.__name__, row.id)),
            database_id=row.id,
            row=row,
            **values,
        )


N = TypeVar("N", bound=RowNode)


@dataclass(frozen=True, slots=True)
class Entity(Generic[N]):
    """One registered entity: its type, table, inputs and relations."""

    cls: type[N]
    model: type[SQLModel]
    table: Table
    order: type
    filter: type
    root: str | None  # the root connection's field name on Query ("posts"), if any
    to_one: Mapping[str, Relation]  # GraphQL field name -> many-to-one relation

    @property
    def name(self) -> str:
        return self.cls.__name__

    def wrap(self, row: Row[Any]) -> N:
        return self.cls.from_row(row)


@dataclass(frozen=True, slots=True)
class Nested:
    """A one-to-many connection field `owner.field` over `relation`, serving `entity`."""

    owner: str
    field: str
    entity: Entity[Any]
    relation: Relation


@dataclass(slots=True)
class Registry:
    """Every entity, in the order their tables are declared in server/store/models.py."""

    _by_name: dict[str, Entity[Any]] = field(default_factory=dict)
    connections: list[Nested] = field(default_factory=list)

    def add(self, entity: Entity[Any]) -> None:
        if entity.name in self._by_name:
            raise EntityError(f"{entity.name} is registered twice")
        self._by_name[entity.name] = entity
        ordered = sorted(self._by_name.values(), key=lambda e: _table_index(e.table))
        self._by_name = {e.name: e for e in ordered}

    def __iter__(self) -> Iterator[Entity[Any]]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> Entity[Any]:
        return self._by_name[name]

    def get(self, name: str) -> Entity[Any] | None:
        return self._by_name.get(name)

    def of_type(self, cls: type[N]) -> Entity[N]:
        entity = self._by_name.get(cls.__name__)
        if entity is None or entity.cls is not cls:
            raise EntityError(f"{cls.__name__} is not registered (server/api/nodes/base.py)")
        return entity

    def of_table(self, table: Table) -> Entity[Any]:
        for entity in self:
            if entity.table is table:
                return entity
        raise EntityError(f"no entity is registered for table {table.name!r}")

    @property
    def types(self) -> list[type[RowNode]]:
        return [entity.cls for entity in self]

    def check(self, schema: strawberry.Schema) -> None:
        """Refuse a schema whose row-backed types are not all registered and consistent."""
        for type_name in schema._schema.type_map:
            cls = getattr(schema.get_type_by_name(type_name), "origin", None)
            if isinstance(cls, type) and issubclass(cls, RowNode):
                self.of_type(cls)
        for entity in self:
            for name, relation in entity.to_one.items():
                if relation.parent is not entity.table:
                    raise EntityError(
                        f"{entity.name}.{name}: {relation.name} starts at table "
                        f"{relation.parent.name!r}, not {entity.table.name!r}"
                    )
                self.of_table(relation.target)


ENTITIES = Registry()


def _table_index(table: Table) -> int:
    return list(SQLModel.metadata.tables).index(table.name)


def _target_index(strawberry_field: StrawberryField) -> int:
    return _table_index(ENTITIES[strawberry_field.metadata[CONNECTION_FIELD].target].table)


def register(
    cls: type[N],
    model: type[SQLModel],
    *,
    order: type,
    filter: type,
    root: str | None = None,
) -> Entity[N]:
    """Make `cls` an entity over `model`'s table (see the module docstring)."""
    if not issubclass(cls, RowNode):
        raise EntityError(f"{cls.__name__} must subclass RowNode")
    definition = get_object_definition(cls, strict=True)
    table = table_of(model)
    columns = set(table.columns.keys())
    scalars: list[tuple[str, Callable[[Any], Any] | None]] = []
    to_one: dict[str, Relation] = {}
    for strawberry_field in definition.fields:
        name = strawberry_field.python_name
        relation = strawberry_field.metadata.get(TO_ONE)
        if relation is not None:
            to_one[strawberry_field.graphql_name or to_camel_case(name)] = relation
        elif strawberry_field.base_resolver is None and name not in ("id", "database_id"):
            if name not in columns:
                raise EntityError(f"{cls.__name__}.{name}: table {table.name!r} has no such column")
            scalars.append((name, bool if strawberry_field.type is bool else None))
    try:
        filter_operators(filter, columns)
    except ValueError as error:
        raise EntityError(f"{cls.__name__}: {error}") from None
    cls._scalars = tuple(scalars)
    entity = Entity(
        cls=cls, model=model, table=table, order=order, filter=filter, root=root, to_one=to_one
    )
    ENTITIES.add(entity)
    return entity


# ---------------------------------------------------------------------------- many-to-one


def to_one(relation: Relation, target: type[RowNode], *, description: str | None = None) -> Any:
    """A many-to-one field over `relation`, answering a `target` (null when the foreign key
    is nullable and null). Declared in the class body of the entity the relation starts at."""
    if relation.many:
        raise EntityError(f"{relation.name} is one-to-many: declare it with `connect`")
    wrap = target.from_row
    nullable = bool(relation.local_column.nullable)

    def resolve(root: Any, info: Info) -> Any:
        fk = root.row._mapping[relation.local_column.name]
        if fk is None:
            return None
        if root.related is not None and relation in root.related:
            row = root.related[relation].get(fk)
            return None if row is None else wrap(row)
        return _load_one(info, relation, root.row, wrap)

    return strawberry.field(
        resolver=resolve,
        graphql_type=target | None if nullable else target,
        description=description,
        metadata={TO_ONE: relation},
    )


async def _load_one(
    info: Info, relation: Relation, row: Row[Any], wrap: Callable[[Row[Any]], Any]
) -> Any:
    target = await info.context.loaders.one(relation, row)
    return None if target is None else wrap(target)


async def entity_objects(
    info: Info, entity: Entity[Any], rows: Sequence[Row[Any]], selected: frozenset[str]
) -> list[Any]:
    """A page's rows as objects of `entity`, with the many-to-one relations the query
    `selected` on them loaded for the whole page in one batch each (no awaitable per row)."""
    wanted = [relation for name, relation in entity.to_one.items() if name in selected]
    objects = [entity.wrap(row) for row in rows]
    if not wanted or not rows:
        return objects
    loaders = info.context.loaders
    found = await asyncio.gather(*(loaders.one_for_each(r, rows) for r in wanted))
    related = dict(zip(wanted, found, strict=True))
    for node in objects:
        node.related = related
    return objects


# ---------------------------------------------------------------------------- connections


def connection_field(
    owner: str,
    name: str,
    entity: Entity[Any],
    relation: Relation | None = None,
    *,
    description: str | None = None,
) -> StrawberryField:
    """A Relay connection field `owner.name` over `entity`'s rows: root (`relation` None) or
    nested. Its cursor key is "owner.name", so its cursors are refused anywhere else."""
    key = f"{owner}.{name}"
    table = entity.table

    def resolve(
        root: Any,
        info: Info,
        first: Any = UNSET,
        after: Any = UNSET,
        last: Any = UNSET,
        before: Any = UNSET,
        order_by: Any = UNSET,
        filter: Any = UNSET,
    ) -> Any:
        order, conditions = order_of(given(order_by)), conditions_of(given(filter))
        spec = page_spec(
            field=key,
            table=table,
            order=order,
            conditions=conditions,
            first=given(first),
            after=given(after),
            last=given(last),
            before=given(before),
        )
        loaders = info.context.loaders
        if relation is None:

            def page() -> Any:
                return shareable(loaders.root_page(table, spec))

            def count() -> Any:
                return loaders.root_count(table, conditions)
        else:

            def page() -> Any:
                return loaders.page(relation, root.row, spec)

            def count() -> Any:
                return loaders.count(relation, root.row, conditions)

        def objects(rows: Sequence[Row[Any]], selected: frozenset[str]) -> Any:
            return entity_objects(info, entity, rows, selected)

        return Connection(
            source=PageSource(
                field=key, table=table, order=order, load_page=page, count=count, objects=objects
            )
        )

    resolve.__annotations__ = {
        "root": Any,
        "info": Info,
        "first": int | None,
        "after": str | None,
        "last": int | None,
        "before": str | None,
        "order_by": entity.order | None,
        "filter": entity.filter | None,
        "return": Connection[entity.cls],  # type: ignore[name-defined] # a runtime class
    }
    result: StrawberryField = strawberry.field(
        resolver=resolve,
        description=description,
        metadata={CONNECTION_FIELD: ConnectionField(entity.name, key, relation)},
    )
    return result


def attach(owner: type, name: str, strawberry_field: StrawberryField) -> None:
    """Add `strawberry_field` to the strawberry type `owner` as `name`, after its fields."""
    definition = get_object_definition(owner, strict=True)
    if any(f.python_name == name for f in definition.fields):
        raise EntityError(f"{owner.__name__} already has a field {name!r}")
    strawberry_field.python_name = name
    strawberry_field.origin = owner
    definition.fields.append(strawberry_field)


def connect(
    owner: type[RowNode],
    name: str,
    entity: Entity[Any],
    *,
    relation: str | None = None,
    description: str | None = None,
) -> None:
    """Give `owner` the connection `name` over `entity`'s rows, through the model relation of
    the same name (or `relation`) on `owner`'s model."""
    parent = ENTITIES.of_type(owner)
    link = Relation.of(parent.model, relation or name)
    if not link.many or link.target is not entity.table:
        raise EntityError(
            f"{owner.__name__}.{name}: {link.name} does not lead to the rows of {entity.name}"
        )
    connection = connection_field(owner.__name__, name, entity, link, description=description)
    attach(owner, name, connection)
    ENTITIES.connections.append(Nested(owner.__name__, name, entity, link))
    # Entity modules are imported in any order: an owner's connections follow its fields in
    # the order their tables are declared in the models, whoever declared them first.
    fields = get_object_definition(owner, strict=True).fields
    nested = [f for f in fields if f.metadata.get(CONNECTION_FIELD)]
    start = min(fields.index(f) for f in nested)
    fields[start:] = sorted(fields[start:], key=_target_index)
