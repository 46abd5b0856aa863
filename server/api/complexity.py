"""What a document asks for, measured from its AST before anything runs (API.md "Query limits").

`document_counts(document)` gives the figures that depend on the text alone: directive uses and
aliases (a field whose response name differs from its field name; `__typename` counts too), and
the names of the variables that size pages or lists (`first`, `last`, `ids`).

`measure(schema, document, operation, variables)` walks one operation with its fragments
expanded and returns its `depth`, `nodes` and `cost`:

- depth: field nesting; a root field is 1 and every field counts (`nodes`, `edges`, `node`);
  introspection fields (`__schema`, `__type`, `__typename`) are left out.
- nodes: for every `nodes`/`edges` of a connection, its page size times the page sizes of all
  enclosing connections, plus the IDs given to `nodes(ids:)` (GitHub's node count).
- cost: every field returning an object (entity, connection, edge, `pageInfo`) and every
  `totalCount` costs 1 per instance the response can hold.

Page size is `first` or `last` (the larger if both), literal or from the variables, capped at
100; 20 without either. `@skip`/`@include` count as included. The walk is linear in the size of
the document: a fragment is measured once per page size it is spread under (figures are linear in
the multiplier), so a fragment-doubling document costs what its text costs, not 2^n. Fields the
schema does not know count for depth only (validation refuses them afterwards), and a fragment
cycle counts as empty (likewise refused by validation).

Argument caps (`Caps`) are checked on the way: `nodes(ids:)` takes at most `MAX_NODE_IDS` IDs
and any list in an argument at most `MAX_INPUT_LIST` items (0: no cap); `ArgumentCapError` names
the argument.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    ArgumentNode,
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    Node,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
    is_composite_type,
)

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_NODE_IDS = 100  # GitHub's cap on nodes(ids:)
MAX_INPUT_LIST = 250  # Shopify's cap on input arrays
PAGE_ARGUMENTS = ("first", "last")
SIZING_ARGUMENTS = frozenset({*PAGE_ARGUMENTS, "ids"})


class ArgumentCapError(Exception):
    """An argument over its cap: `argument` names it (`nodes.ids`, `posts.filter.title.in`)."""

    def __init__(self, argument: str, actual: int, maximum: int) -> None:
        super().__init__(argument)
        self.argument = argument
        self.actual = actual
        self.maximum = maximum


@dataclass(frozen=True, slots=True)
class Caps:
    node_ids: int = MAX_NODE_IDS
    input_list: int = MAX_INPUT_LIST


@dataclass(frozen=True, slots=True)
class DocumentCounts:
    directives: int
    aliases: int
    sizing_variables: frozenset[str]  # variables whose value changes nodes and cost


@dataclass(frozen=True, slots=True)
class Figures:
    depth: int
    nodes: int
    cost: int


def _children(node: Node) -> Iterator[Node]:
    for key in node.keys:
        if key == "loc":
            continue
        value = getattr(node, key, None)
        if isinstance(value, Node):
            yield value
        elif isinstance(value, tuple | list):
            yield from (item for item in value if isinstance(item, Node))


def document_counts(document: DocumentNode) -> DocumentCounts:
    """Directive uses, aliases and sizing variables anywhere in the document (one pass)."""
    directives = aliases = 0
    sizing: set[str] = set()
    stack: list[Node] = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, DirectiveNode):
            directives += 1
        elif isinstance(node, FieldNode):
            if node.alias is not None and node.alias.value != node.name.value:
                aliases += 1
        elif (
            isinstance(node, ArgumentNode)
            and node.name.value in SIZING_ARGUMENTS
            and isinstance(node.value, VariableNode)
        ):
            sizing.add(node.value.name.value)
        stack.extend(_children(node))
    return DocumentCounts(directives, aliases, frozenset(sizing))


def sizing_key(counts: DocumentCounts, variables: Mapping[str, Any] | None) -> tuple[Any, ...]:
    """What of `variables` the figures depend on: page sizes, and the lengths of lists."""
    if not counts.sizing_variables:
        return ()
    values = variables or {}
    key: list[Any] = []
    for name in sorted(counts.sizing_variables):
        value = values.get(name)
        key.append(len(value) if isinstance(value, list) else _int_or_none(value))
    return tuple(key)


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def check_variable_lists(variables: Mapping[str, Any] | None, cap: int) -> None:
    """Refuse any list longer than `cap` anywhere in the variables' values (0: no cap)."""
    if cap:
        for name, value in (variables or {}).items():
            _check_value_lists(value, f"${name}", cap)


def _check_value_lists(value: Any, where: str, cap: int) -> None:
    if isinstance(value, list):
        if len(value) > cap:
            raise ArgumentCapError(where, len(value), cap)
        for item in value:
            _check_value_lists(item, where, cap)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_value_lists(item, f"{where}.{key}", cap)


def _check_literal_lists(value: ValueNode, where: str, cap: int) -> None:
    if isinstance(value, ListValueNode):
        if len(value.values) > cap:
            raise ArgumentCapError(where, len(value.values), cap)
        for item in value.values:
            _check_literal_lists(item, where, cap)
    elif isinstance(value, ObjectValueNode):
        for field in value.fields:
            _check_literal_lists(field.value, f"{where}.{field.name.value}", cap)


def _is_connection(type_: GraphQLNamedType | None) -> bool:
    fields = getattr(type_, "fields", None)
    return fields is not None and "edges" in fields and "pageInfo" in fields


class _Walk:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        caps: Caps,
    ) -> None:
        self.caps = caps
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.root_query = schema.query_type
        # (fragment, page size it is spread under) -> figures per instance of its parent
        self.memo: dict[tuple[str, int], Figures] = {}
        self.active: set[str] = set()

    def selections(
        self, selection_set: SelectionSetNode, parent: GraphQLNamedType | None, page: int
    ) -> Figures:
        depth = nodes = cost = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                figures = self.field(selection, parent, page)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = parent if condition is None else self.schema.get_type(condition.name.value)
                figures = self.selections(selection.selection_set, target, page)
            elif isinstance(selection, FragmentSpreadNode):
                figures = self.fragment(selection.name.value, page)
            else:  # pragma: no cover - graphql-core has no other selection kinds
                continue
            depth = max(depth, figures.depth)
            nodes += figures.nodes
            cost += figures.cost
        return Figures(depth, nodes, cost)

    def fragment(self, name: str, page: int) -> Figures:
        definition = self.fragments.get(name)
        if definition is None or name in self.active:
            return Figures(0, 0, 0)  # unknown fragment or a cycle: validation refuses both
        target = self.schema.get_type(definition.type_condition.name.value)
        key = (name, page if _is_connection(target) else 0)
        figures = self.memo.get(key)
        if figures is None:
            self.active.add(name)
            try:
                figures = self.memo[key] = self.selections(definition.selection_set, target, page)
            finally:
                self.active.discard(name)
        return figures

    def field(self, node: FieldNode, parent: GraphQLNamedType | None, page: int) -> Figures:
        name = node.name.value
        if name.startswith("__"):
            return Figures(0, 0, 0)
        fields = getattr(parent, "fields", None)
        definition = fields.get(name) if fields is not None else None
        target = None if definition is None else get_named_type(definition.type)
        # Instances of this field per instance of its parent, and whether they are "nodes".
        instances, counted = 1, False
        if _is_connection(parent) and name in ("nodes", "edges"):
            instances, counted = page, True
        elif name == "nodes" and parent is self.root_query and parent is not None:
            instances, counted = self.id_count(node), True
            if self.caps.node_ids and instances > self.caps.node_ids:
                raise ArgumentCapError("nodes.ids", instances, self.caps.node_ids)
        if self.caps.input_list:
            for argument in node.arguments or ():
                where = f"{name}.{argument.name.value}"
                _check_literal_lists(argument.value, where, self.caps.input_list)
        child_page = self.page_size(node) if _is_connection(target) else page
        inner = (
            Figures(0, 0, 0)
            if node.selection_set is None
            else self.selections(node.selection_set, target, child_page)
        )
        own = 1 if name == "totalCount" or (target is not None and is_composite_type(target)) else 0
        return Figures(
            depth=1 + inner.depth,
            nodes=(instances if counted else 0) + instances * inner.nodes,
            cost=instances * (own + inner.cost),
        )

    def value(self, value: ValueNode) -> Any:
        if isinstance(value, VariableNode):
            return self.variables.get(value.name.value)
        if isinstance(value, IntValueNode):
            return int(value.value)
        if isinstance(value, ListValueNode):
            return list(value.values)
        return None

    def page_size(self, node: FieldNode) -> int:
        sizes = [
            _int_or_none(self.value(argument.value))
            for argument in node.arguments or ()
            if argument.name.value in PAGE_ARGUMENTS
        ]
        given = [size for size in sizes if size is not None]
        if not given:
            return DEFAULT_PAGE_SIZE
        return min(max(max(given), 0), MAX_PAGE_SIZE)

    def id_count(self, node: FieldNode) -> int:
        for argument in node.arguments or ():
            if argument.name.value == "ids":
                value = self.value(argument.value)
                return len(value) if isinstance(value, list) else 1 if value is not None else 0
        return 0


def operation_of(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    """The operation that will run: the named one, else the only one (None if unclear)."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is not None:
        return next((op for op in operations if op.name and op.name.value == name), None)
    return operations[0] if len(operations) == 1 else None


def measure(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    caps: Caps = Caps(),
) -> Figures:
    """Depth, nodes and cost of the operation that will run (the largest of all operations
    when the document does not say which; execution refuses such a document anyway)."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    walk = _Walk(schema, fragments, variables or {}, caps)
    chosen = operation_of(document, operation_name)
    operations = (
        [chosen]
        if chosen is not None
        else [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    )
    depth = nodes = cost = 0
    for operation in operations:
        root = schema.get_root_type(operation.operation)
        figures = walk.selections(operation.selection_set, root, DEFAULT_PAGE_SIZE)
        depth, nodes, cost = (
            max(depth, figures.depth),
            max(nodes, figures.nodes),
            max(cost, figures.cost),
        )
    return Figures(depth, nodes, cost)
