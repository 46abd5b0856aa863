"""The entity protocol (server/api/nodes/base.py): the registry is complete and consistent, and
an entity declared by halves fails at import or schema build with a message that says what
is missing — never as an INTERNAL_SERVER_ERROR at run time."""

from collections.abc import Iterator
from enum import Enum
from typing import Any, get_args

import pytest
import strawberry
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import RelationshipDirection
from sqlmodel import SQLModel
from strawberry.types.field import StrawberryField

from loaders import Op, Relation
from server.api.inputs import OrderDirection, StringFilter, filter_operators
from server.api.nodes import ENTITIES, EntityError, RowNode
from server.api.nodes.base import Entity, Registry, attach, connect, register, to_one
from server.api.nodes.post import POST, Post
from server.api.nodes.user import User
from server.api.relay import CONNECTION_FIELD
from server.api.schema import build_schema
from server.store import models, writes
from server.store.models import table_of


@pytest.fixture(scope="module")
def schema() -> strawberry.Schema:
    return build_schema()


def test_registry_follows_the_models_declaration_order() -> None:
    tables = list(SQLModel.metadata.tables)
    positions = [tables.index(entity.table.name) for entity in ENTITIES]
    assert positions == sorted(positions)
    assert [e.name for e in ENTITIES][:4] == ["User", "Post", "Article", "Comment"]


def test_every_node_implementation_in_the_schema_is_registered(schema: strawberry.Schema) -> None:
    node = schema._schema.get_type("Node")
    assert node is not None
    implementations = {t.name for t in schema._schema.get_possible_types(node)}  # type: ignore[arg-type]
    assert implementations == {e.name for e in ENTITIES}


def test_every_root_connection_is_on_query(schema: strawberry.Schema) -> None:
    query = schema._schema.query_type
    assert query is not None
    for entity in ENTITIES:
        if entity.root is not None:
            assert f"{entity.name}Connection" == str(query.fields[entity.root].type).rstrip("!")


def _connection_fields(schema: strawberry.Schema) -> Iterator[tuple[str, str, Any]]:
    for type_name, graphql_type in schema._schema.type_map.items():
        for field_name, field in getattr(graphql_type, "fields", {}).items():
            definition = (field.extensions or {}).get("strawberry-definition")
            meta = None if definition is None else definition.metadata.get(CONNECTION_FIELD)
            if meta is not None:
                yield type_name, field_name, meta


def test_cursor_keys_are_where_the_connections_sit(schema: strawberry.Schema) -> None:
    found = list(_connection_fields(schema))
    assert len(found) == len(ENTITIES.connections) + sum(e.root is not None for e in ENTITIES)
    for type_name, field_name, meta in found:
        assert meta.field == f"{type_name}.{field_name}"


def test_every_relation_joins_its_entities_tables() -> None:
    for entity in ENTITIES:
        for relation in entity.to_one.values():
            assert relation.parent is entity.table
            ENTITIES.of_table(relation.target)
    for nested in ENTITIES.connections:
        assert nested.relation.parent is ENTITIES[nested.owner].table
        assert nested.relation.target is nested.entity.table


def test_every_id_table_gets_its_sequence_synced() -> None:
    synced = {t.name for t in writes.id_tables()}
    assert {e.table.name for e in ENTITIES} <= synced
    assert table_of(models.Token).name in synced


# ---------------------------------------------------------------------------- by halves


@strawberry.enum
class GhostOrderField(Enum):
    ID = "id"


@strawberry.input
class GhostOrder:
    field: GhostOrderField
    direction: OrderDirection | None = OrderDirection.ASC


@strawberry.input
class GhostFilter:
    title: StringFilter | None = None


def test_a_node_type_missing_from_the_registry_fails_at_schema_build() -> None:
    @strawberry.type
    class Ghost(RowNode):
        title: str

    @strawberry.type
    class Query:
        @strawberry.field
        def ghost(self) -> Ghost | None:
            return None

    schema = strawberry.Schema(query=Query)
    with pytest.raises(EntityError, match=r"Ghost is not registered"):
        ENTITIES.check(schema)


def test_an_unregistered_type_refuses_rows_with_a_clear_message() -> None:
    @strawberry.type
    class Ghost(RowNode):
        title: str

    with pytest.raises(EntityError, match=r"Ghost is not registered"):
        Ghost.from_row(None)  # type: ignore[arg-type] # refused before the row is read


def test_a_relation_the_models_lack_fails_at_declaration() -> None:
    with pytest.raises(KeyError, match=r"Post has no relationship 'likes'; valid: .*user"):
        to_one(Relation.of(models.Post, "likes"), User)
    with pytest.raises(KeyError, match=r"User has no relationship 'likes'; valid: comments, "):
        connect(User, "likes", POST)


def test_a_one_to_many_relation_is_not_a_to_one_field() -> None:
    with pytest.raises(EntityError, match=r"User.posts is one-to-many: declare it with `connect`"):
        to_one(Relation.of(models.User, "posts"), Post)


def test_a_connection_over_another_tables_relation_is_refused() -> None:
    with pytest.raises(EntityError, match=r"User.comments: User.comments does not lead to"):
        connect(User, "comments", POST)


def test_a_connection_on_an_unregistered_owner_is_refused() -> None:
    @strawberry.type
    class Ghost(RowNode):
        title: str

    with pytest.raises(EntityError, match=r"Ghost is not registered"):
        connect(Ghost, "posts", POST)


def test_a_field_declared_twice_is_refused() -> None:
    with pytest.raises(EntityError, match=r"User already has a field 'posts'"):
        attach(User, "posts", StrawberryField())


def test_a_scalar_without_a_column_fails_at_registration() -> None:
    @strawberry.type
    class Ghost(RowNode):
        headline: str

    with pytest.raises(EntityError, match=r"Ghost.headline: table 'posts' has no such column"):
        register(Ghost, models.Post, order=GhostOrder, filter=GhostFilter)
    assert "Ghost" not in ENTITIES


def test_a_type_that_is_not_a_row_node_is_refused() -> None:
    @strawberry.type
    class Plain:
        title: str

    with pytest.raises(EntityError, match=r"Plain must subclass RowNode"):
        register(Plain, models.Post, order=GhostOrder, filter=GhostFilter)  # type: ignore[type-var]


def test_a_to_one_field_from_another_table_fails_the_check() -> None:
    # An entity whose many-to-one starts at another table: a page of it would batch by the
    # wrong column. Built by hand in a registry of its own, to leave ENTITIES alone.
    registry = Registry()
    for entity in ENTITIES:
        registry.add(entity)
    wrong = Entity(
        cls=User,
        model=models.User,
        table=table_of(models.User),
        order=GhostOrder,
        filter=GhostFilter,
        root=None,
        to_one={"article": Relation.of(models.Comment, "article")},
    )
    registry._by_name["User"] = wrong
    with pytest.raises(EntityError, match=r"User.article: Comment.article starts at table"):
        registry.check(build_schema())


def test_an_entity_registered_twice_is_refused() -> None:
    with pytest.raises(EntityError, match=r"Post is registered twice"):
        ENTITIES.add(POST)


@strawberry.input
class SuffixFilter:
    ends_with: str | None = None


@strawberry.input
class SuffixedFilter:
    title: SuffixFilter | None = None


@strawberry.input
class HeadlineFilter:
    headline: StringFilter | None = None


@pytest.mark.parametrize(
    ("filter_input", "message"),
    [
        # `endsWith` added to a column filter but not to `loaders.specs.Op` (and its SQL)
        # would otherwise type-check and fail only when a client used it.
        (SuffixedFilter, r"Ghost: 'ends_with' is not a loader operator"),
        (HeadlineFilter, r"Ghost: HeadlineFilter.headline names no column"),
    ],
)
def test_a_filter_the_loaders_cannot_run_fails_at_registration(
    filter_input: type, message: str
) -> None:
    @strawberry.type
    class Ghost(RowNode):
        title: str

    with pytest.raises(EntityError, match=message):
        register(Ghost, models.Post, order=GhostOrder, filter=filter_input)
    assert "Ghost" not in ENTITIES


def test_every_filter_operator_of_the_api_is_a_loader_operator() -> None:
    ops = set[str]()
    for entity in ENTITIES:
        ops |= filter_operators(entity.filter, set(entity.table.columns.keys()))
    assert ops == set(get_args(Op))  # and each has SQL: loaders.filters.predicate's match


# Tables of the models that are deliberately no entity, and why.
NOT_ENTITIES = {"tokens": "credentials: stored as a SHA-256, never part of the API"}


def test_every_table_of_the_models_is_an_entity_or_says_why_not() -> None:
    """A model whose `register(...)` was forgotten would just be missing from the API."""
    entities = {entity.table.name for entity in ENTITIES}
    assert set(SQLModel.metadata.tables) - entities == set(NOT_ENTITIES)


def test_every_relationship_between_entities_is_a_field() -> None:
    """A forgotten `to_one(...)` or `connect(...)` would just be missing from the API."""
    exposed = {relation.name for entity in ENTITIES for relation in entity.to_one.values()}
    exposed |= {nested.relation.name for nested in ENTITIES.connections}
    declared = {
        f"{entity.model.__name__}.{name}"
        for entity in ENTITIES
        for name, prop in sa_inspect(entity.model).relationships.items()
        if prop.mapper.local_table.name not in NOT_ENTITIES
    }
    assert declared - exposed == set()


def test_every_relationship_loads_only_through_the_loaders() -> None:
    """`lazy="raise"` (a resolver touching `user.posts` fails instead of querying per row)
    and, one-to-many, `passive_deletes` (the database cascades): what `_rel` in
    server/store/models.py gives, and what a copied `Relationship(...)` may forget."""
    for model in {entity.model for entity in ENTITIES}:
        for name, prop in sa_inspect(model).relationships.items():
            assert prop.lazy == "raise", f"{model.__name__}.{name}"
            if prop.direction is RelationshipDirection.ONETOMANY:
                assert prop.passive_deletes, f"{model.__name__}.{name}"
