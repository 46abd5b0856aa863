"""Tripwires on the private APIs inkgraph leans on (each module's docstring lists them).

A version bump of strawberry, graphql-core or aiodataloader that moves one of these internals
would not break inkgraph loudly: the scalar fast path would switch itself off, the page-wide
to-one preload would miss fields, or loaders would fall back to next-tick dispatch, and every
functional test would stay green. These tests fail instead:

- the fast path (`server/api/execution.py`) covers every scalar field of every node type, and
  graphql-core still hands object fields to our `execute_fields`;
- the selection walker (`server/api/selection.py`) names the same fields as graphql-core's own
  field collection (`graphql.execution.collect_fields.collect_subfields`) on a battery of
  documents: fragments, inline fragments, `@skip`/`@include` with literals and variables, aliases;
- every key aiodataloader is asked for goes through the rounds (`loaders/rounds.py`).

This file itself reads `strawberry.Schema._schema` (graphql-core's schema; strawberry has no
public spelling for it) and `strawberry.Info._raw_info`, as the modules under test do.
"""

import asyncio
from typing import Any

import pytest
import strawberry
from aiodataloader import DataLoader, Loader, dispatch_queue
from graphql import (
    GraphQLObjectType,
    GraphQLResolveInfo,
    get_named_type,
    get_nullable_type,
    get_variable_values,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetails, FragmentDetails, collect_subfields

from loaders.rounds import RoundLoader, Rounds
from server.api import execution, relay, selection
from server.api.execution import LeafFastPathContext, leaves_of
from server.api.nodes import ENTITIES
from server.api.schema import build_schema
from tests.support.gql import GraphQLClient

SCHEMA = build_schema()._schema


def _node_types() -> list[GraphQLObjectType]:
    return [
        type_
        for type_ in SCHEMA.type_map.values()
        if isinstance(type_, GraphQLObjectType)
        and any(interface.name == "Node" for interface in type_.interfaces)
    ]


def _scalar_fields(type_: GraphQLObjectType) -> set[str]:
    return {
        name
        for name, field in type_.fields.items()
        if not field.args and is_leaf_type(get_nullable_type(field.type))
    }


# ---------------------------------------------------------------------------- the fast path


def test_every_entity_is_a_node_type() -> None:
    assert {type_.name for type_ in _node_types()} == {entity.name for entity in ENTITIES}


@pytest.mark.parametrize("type_name", sorted(type_.name for type_ in _node_types()))
def test_fast_path_reads_every_scalar_field_of_every_node_type(type_name: str) -> None:
    """A scalar field with a resolver of its own would take graphql-core's slow path: if one
    is ever wanted, list it here with its reason."""
    node_type = SCHEMA.type_map[type_name]
    assert isinstance(node_type, GraphQLObjectType)
    leaves = set(leaves_of(node_type))
    assert leaves == _scalar_fields(node_type)
    assert {"id", "databaseId"} <= leaves  # what RowNode gives every entity


@strawberry.type
class Item:
    name: str
    rank: int


@strawberry.type
class ItemQuery:
    @strawberry.field
    def items(self) -> list[Item]:
        return [Item(name="a", rank=1), Item(name="b", rank=2)]


def test_graphql_core_hands_object_fields_to_the_fast_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If graphql-core stopped calling `execute_fields` (renamed, or bypassed for object
    values), the override would be dead code and no answer would change."""
    read: list[str] = []
    original = execution._read

    def counting(source: Any, leaf: execution.Leaf) -> Any:
        read.append(leaf.attribute)
        return original(source, leaf)

    monkeypatch.setattr(execution, "_read", counting)
    schema = strawberry.Schema(query=ItemQuery, execution_context_class=LeafFastPathContext)
    result = schema.execute_sync("{ items { name rank } }")
    assert result.errors is None
    assert result.data == {"items": [{"name": "a", "rank": 1}, {"name": "b", "rank": 2}]}
    assert read == ["name", "rank", "name", "rank"]


# ---------------------------------------------------------------------------- the selection walker


def graphql_core_names(raw: GraphQLResolveInfo[Any], path: tuple[str, ...]) -> frozenset[str]:
    """What graphql-core's own collection finds below `raw`'s field, following `path` by field
    name (as `selected_names` does) across response keys."""
    # strawberry hands resolvers the coerced dict, not graphql-core's VariableValues
    given: Any = raw.variable_values
    inputs: dict[str, Any] = getattr(given, "coerced", given)
    variables = get_variable_values(raw.schema, raw.operation.variable_definitions or (), inputs)
    assert not isinstance(variables, list), variables
    fragments = {name: FragmentDetails(node) for name, node in raw.fragments.items()}
    details = [FieldDetails(node, None) for node in raw.field_nodes]
    parent = get_named_type(raw.return_type)
    for step in (*path, None):
        assert isinstance(parent, GraphQLObjectType)
        grouped = collect_subfields(
            raw.schema, fragments, variables, raw.operation, parent, details
        ).grouped_field_set
        if step is None:
            return frozenset(group[0].node.name.value for group in grouped.values())
        details = [d for group in grouped.values() for d in group if d.node.name.value == step]
        parent = get_named_type(parent.fields[step].type)
    raise AssertionError("unreachable")


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Every `selected_names` call the connections make: (path, ours, graphql-core's)."""
    seen: list[tuple[Any, ...]] = []
    ours = selection.selected_names

    def compared(info: Any, *path: str) -> frozenset[str]:
        names = ours(info, *path)
        seen.append((info.path, names, graphql_core_names(info._raw_info, path)))
        return names

    monkeypatch.setattr(relay, "selected_names", compared)
    return seen


POST_BITS = "fragment PostBits on Post { title user { username } }\n"
EDGE_BITS = "fragment EdgeBits on PostEdge { cursor node { ...PostBits databaseId } }\n"

BATTERY: list[tuple[str, dict[str, Any]]] = [
    ("{ posts(first: 3) { nodes { title user { username } } } }", {}),
    ("{ posts(first: 3) { edges { cursor node { title user { id } } } } }", {}),
    (POST_BITS + "{ posts(first: 2) { nodes { ...PostBits createdAt } } }", {}),
    (
        POST_BITS
        + EDGE_BITS
        + "{ posts(first: 2) { edges { ...EdgeBits node { ...PostBits } } } }",
        {},
    ),
    (
        "{ posts(first: 2) { nodes { ... on Post { title } ... { user { id } } "
        "... on Node { id } __typename } } }",
        {},
    ),
    (
        "{ posts(first: 2) { edges { ... on PostEdge { node { ... { databaseId } } } } } }",
        {},
    ),
    (
        "{ posts(first: 2) { nodes { title @skip(if: true) user @include(if: false) { id } "
        "createdAt @include(if: true) databaseId @skip(if: false) "
        "id @skip(if: false) @include(if: false) } } }",
        {},
    ),
    *(
        (
            "query($a: Boolean!, $b: Boolean!) { posts(first: 2) { nodes { "
            "title @skip(if: $a) user @include(if: $b) { id } } } }",
            {"a": a, "b": b},
        )
        for a in (True, False)
        for b in (True, False)
    ),
    (
        "query($b: Boolean = false) { posts(first: 2) { nodes { title user @include(if: $b) "
        "{ id } } } }",
        {},
    ),
    *(
        (
            POST_BITS + "query($x: Boolean!) { posts(first: 2) { nodes { "
            "...PostBits @include(if: $x) ... @skip(if: $x) { databaseId } } "
            "edges { node @include(if: $x) { title } } } }",
            {"x": x},
        )
        for x in (True, False)
    ),
    (
        "{ posts(first: 2) { a: nodes { t: title } b: nodes { u: user { id } } "
        "e: edges { n: node { title } node { user { id } } } } }",
        {},
    ),
    (
        "{ users(first: 2) { nodes { username posts(first: 2) { nodes { title user { id } } } } } "
        "articles(first: 2) { edges { node { comments(first: 2) { nodes { text author { id } "
        "article { title } } } } } } }",
        {},
    ),
]


@pytest.mark.parametrize(("document", "variables"), BATTERY)
async def test_the_selection_walker_agrees_with_graphql_core(
    client: GraphQLClient,
    walks: list[tuple[Any, ...]],
    document: str,
    variables: dict[str, Any],
) -> None:
    await client.data(document, **variables)
    assert walks, "no connection asked for its selection"
    for path, ours, theirs in walks:
        assert ours == theirs, path


# ---------------------------------------------------------------------------- the rounds


class RecordingRounds(Rounds):
    def __init__(self) -> None:
        super().__init__(
            busy=lambda: False, idle=lambda: asyncio.sleep(0), on_dispatch=lambda: None
        )
        self.added: list[tuple[DataLoader[Any, Any], bool]] = []

    def add(self, loader: DataLoader[Any, Any], *, first: bool) -> None:
        self.added.append((loader, first))
        super().add(loader, first=first)


async def test_every_key_goes_through_the_rounds() -> None:
    """Keys arriving over several ticks go to the batch function together, once the round
    dispatches. Plain aiodataloader would dispatch after the first tick, splitting them."""
    batches: list[list[int]] = []

    async def batch(keys: list[int]) -> list[int]:
        batches.append(list(keys))
        return [key * 10 for key in keys]

    rounds = RecordingRounds()
    loader = RoundLoader(batch, rounds)

    async def later(key: int, ticks: int) -> int:
        for _ in range(ticks):
            await asyncio.sleep(0)
        value: int = await loader.load(key)
        return value

    values = await asyncio.gather(later(1, 0), later(2, 2), later(3, 4), later(1, 5))
    assert list(values) == [10, 20, 30, 10]
    assert batches == [[1, 2, 3]]
    # The repeated key 1 was cached by aiodataloader and never reached the round.
    assert rounds.added == [(loader, True), (loader, False), (loader, False)]


async def test_aiodataloader_internals_keep_their_shape() -> None:
    """The three internals loaders/rounds.py uses, as aiodataloader 0.4.3 has them."""

    async def batch(keys: list[int]) -> list[int]:
        return keys

    loader = DataLoader[Any, Any](batch_load_fn=batch)
    assert loader._queue == []
    assert Loader._fields == ("key", "future")
    assert callable(dispatch_queue)
    assert "do_resolve_reject" in vars(DataLoader)
    assert RoundLoader.do_resolve_reject is not DataLoader.do_resolve_reject
