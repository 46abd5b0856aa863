"""Which fields a query selects below the current one (to load relations a page ahead).

`selected_names(info, "node")` is the set of field names the query asks for on the objects
below the current field, following `path` (e.g. edges → node), through fragments and inline
fragments, leaving out what `@skip` / `@include` turn off. It is computed once per field of
the query document and request, not once per parent.

Private API used here (pins in pyproject.toml; tests/test_private_api.py fails when it moves):

- strawberry-graphql 0.341.2 (pinned exactly): `strawberry.Info._raw_info`, graphql-core's
  own resolve info, for its `field_nodes` and `fragments` (strawberry has no public spelling
  for either; strawberry-django reads `_raw_info` the same way). The variables come through
  the public `Info.variable_values`.
- graphql-core 3.3.x: only public names (the AST node classes, `GraphQLResolveInfo`'s fields).

The walk re-implements a small part of graphql-core's field collection (fragments and
`@skip`/`@include`, by name, ignoring type conditions: on the concrete node types of a
connection every valid fragment applies). Calling `graphql.execution.collect_fields` instead
would need the runtime type at each step and graphql-core's `VariableValues`, which strawberry
does not hand to resolvers; so a test compares the two on a battery of documents instead.
"""

from typing import Any

from graphql import (
    BooleanValueNode,
    FieldNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
    VariableNode,
)

from server.api.context import Info


def selected_names(info: Info, *path: str) -> frozenset[str]:
    raw = info._raw_info  # graphql-core's info: the AST nodes and fragments
    key = (id(raw.field_nodes[0]), path)
    cache = info.context.selections
    names = cache.get(key)
    if names is None:
        variables = info.variable_values
        sets = [node.selection_set for node in raw.field_nodes]
        for step in path:
            sets = [
                field.selection_set
                for field in _fields(sets, raw.fragments, variables)
                if field.name.value == step
            ]
        names = frozenset(field.name.value for field in _fields(sets, raw.fragments, variables))
        cache[key] = names
    return names


def _fields(
    selection_sets: list[SelectionSetNode | None], fragments: Any, variables: Any
) -> list[FieldNode]:
    fields: list[FieldNode] = []
    pending = [s for s in selection_sets if s is not None]
    while pending:
        for selection in pending.pop().selections:
            if not _included(selection, variables):
                continue
            if isinstance(selection, FieldNode):
                fields.append(selection)
            elif isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = fragments.get(selection.name.value)
                if fragment is not None:
                    pending.append(fragment.selection_set)
    return fields


def _included(node: Any, variables: Any) -> bool:
    for directive in node.directives or ():
        name = directive.name.value
        if name not in ("skip", "include"):
            continue
        condition = next((a.value for a in directive.arguments if a.name.value == "if"), None)
        if isinstance(condition, BooleanValueNode):
            value = condition.value
        elif isinstance(condition, VariableNode):
            value = bool(variables.get(condition.name.value))
        else:
            continue
        if value == (name == "skip"):
            return False
    return True
