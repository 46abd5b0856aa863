"""`LeafFastPathContext`: graphql-core execution with scalar fields read in one step.

graphql-core executes every field the same way: build a `GraphQLResolveInfo`, coerce the
arguments, call the resolver, check for an awaitable, then complete the value through the
type's wrappers. For a plain scalar attribute of one of our row-backed types (`title`,
`databaseId`, `createdAt`…) that machinery is almost all of the cost of a large page: a
1,000-row page has 2,000–3,000 such fields and only a handful of relation fields.

This context reads such a field directly — `getattr` on the object, then the scalar's own
output coercion — and hands every other field (relations, connections, anything with
arguments, a resolver, an extension or a middleware) to graphql-core unchanged. Whatever does
not fit the fast path exactly (a null in a non-null field, a value the scalar refuses) also
goes the normal way, so errors, their paths and their messages are graphql-core's own.
`tests/test_execution.py` proves that responses are identical with and without it.

`execute_fields` below follows graphql-core 3.3's own (the dependency is pinned to 3.3.x).

Private API used here (pins in pyproject.toml; tests/test_private_api.py fails when it moves):

- graphql-core 3.3.x (locked 3.3.2): overrides `Executor.execute_fields` (":meta private:");
  calls the executor's `execute_field`, `is_awaitable` and `settle_in_background` and reads
  its `middleware_manager`; imports `GroupedFieldSet` from `graphql.execution.collect_fields`
  (not re-exported by `graphql.execution`).
- strawberry-graphql 0.341.2 (pinned exactly): subclasses
  `strawberry.schema.schema.StrawberryGraphQLCoreExecutionContext`, and finds a field's
  strawberry definition under `GraphQLCoreConverter.DEFINITION_BACKREF` in its extensions.
  Whether a field has a resolver of its own is asked through the public
  `strawberry.resolvers.is_default_resolver`.

If one of these moves the fast path does not break loudly: it switches itself off (every field
takes graphql-core's path) and only `make bench` would notice, hence the tripwires.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from graphql import (
    GraphQLObjectType,
    Undefined,
    get_nullable_type,
    is_leaf_type,
    is_non_null_type,
)
from graphql.execution.collect_fields import GroupedFieldSet
from graphql.pyutils import AwaitableOrValue, Path, gather_with_cancel
from strawberry.resolvers import is_default_resolver
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter


@dataclass(frozen=True, slots=True)
class Leaf:
    """How to read one scalar field: the Python attribute and the scalar's output coercion."""

    attribute: str
    coerce: Callable[[Any], Any]
    nullable: bool


@lru_cache(maxsize=512)
def leaves_of(parent_type: GraphQLObjectType) -> dict[str, Leaf]:
    """The fields of `parent_type` that are plain attributes of a scalar or enum type.

    Only strawberry's "basic" fields qualify (no resolver, no field extension, no
    permission): strawberry itself resolves them as `getattr(source, python_name)`.
    """
    leaves: dict[str, Leaf] = {}
    for name, field in parent_type.fields.items():
        if field.args or field.resolve is None or not is_default_resolver(field.resolve):
            continue
        named = get_nullable_type(field.type)
        definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
        coerce = getattr(named, "coerce_output_value", None)
        if not is_leaf_type(named) or definition is None or coerce is None:
            continue
        leaves[name] = Leaf(definition.python_name, coerce, not is_non_null_type(field.type))
    return leaves


class LeafFastPathContext(StrawberryGraphQLCoreExecutionContext):
    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        leaves = leaves_of(parent_type)
        if not leaves or _has_middleware(self):
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for response_name, field_details_list in grouped_field_set.items():
                leaf = leaves.get(field_details_list[0].node.name.value)
                if leaf is not None:
                    value = _read(source_value, leaf)
                    if value is not Undefined:
                        results[response_name] = value
                        continue
                result = self.execute_field(
                    parent_type,
                    source_value,
                    field_details_list,
                    Path(path, response_name, parent_type.name),
                    position_context,
                )
                if result is not Undefined:
                    results[response_name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[field] for field in awaitable_fields])
            raise
        if not awaitable_fields:
            return results
        return _await_fields(results, awaitable_fields)


async def _await_fields(results: dict[str, Any], awaitable_fields: list[str]) -> dict[str, Any]:
    if len(awaitable_fields) == 1:
        field = awaitable_fields[0]
        results[field] = await results[field]
    else:
        awaited = await gather_with_cancel(*(results[field] for field in awaitable_fields))
        results.update(zip(awaitable_fields, awaited, strict=True))
    return results


def _has_middleware(context: StrawberryGraphQLCoreExecutionContext) -> bool:
    """A schema extension with a `resolve` hook must see every field: no fast path then."""
    manager = context.middleware_manager
    return manager is not None and bool(manager.middlewares)


def _read(source: Any, leaf: Leaf) -> Any:
    """The completed value of a leaf field, or Undefined to take graphql-core's path."""
    try:
        value = getattr(source, leaf.attribute)
        if value is None:
            return None if leaf.nullable else Undefined
        coerced = leaf.coerce(value)
    except Exception:  # graphql-core raises it again, with its own error and path
        return Undefined
    return Undefined if coerced is None else coerced
