"""Which fields a query selects below the current one (to load relations a page ahead).

`selected_names(info, "node")` is the set of field names the query asks for on the objects
below the current field, following `path` (e.g. edges → node), through fragments and inline
fragments, leaving out what `@skip` / `@include` turn off. It is computed once per field of
the query document and request, not once per parent.
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
    raw = info._raw_info  # graphql-core's info: the AST nodes, fragments and variables
    key = (id(raw.field_nodes[0]), path)
    cache = info.context.selections
    names = cache.get(key)
    if names is None:
        sets = [node.selection_set for node in raw.field_nodes]
        for step in path:
            sets = [
                field.selection_set
                for field in _fields(sets, raw.fragments, raw.variable_values)
                if field.name.value == step
            ]
        names = frozenset(
            field.name.value for field in _fields(sets, raw.fragments, raw.variable_values)
        )
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
