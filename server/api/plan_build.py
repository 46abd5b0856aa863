"""Compile an operation's selection sets into a plan (server/api/plan_nodes.py).

Fields are collected with graphql-core's own `collect_fields` / `collect_subfields`, so
fragments, inline fragments on interfaces, aliases and `@skip` / `@include` (under the
request's variable values) give exactly the grouped field sets graphql-core executes.

A field the plan does not know — a resolver other than the ones it mirrors, a field extension,
a type that is not row-backed, introspection — raises `Unplannable`: that operation is left
to graphql-core entirely.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from graphql import (
    GraphQLBoolean,
    GraphQLField,
    GraphQLID,
    GraphQLInt,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLString,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    ValueNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_non_null_type,
)
from graphql.execution.collect_fields import (
    FieldDetailsList,
    FragmentDetails,
    GroupedFieldSet,
    collect_fields,
    collect_subfields,
)
from graphql.execution.values import VariableValues, get_argument_values
from strawberry import UNSET
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.arguments import convert_arguments

from server.api.execution import leaves_of
from server.api.inputs import conditions_of, order_of
from server.api.nodes import ENTITIES
from server.api.plan_nodes import (
    Connection,
    ConnectionArguments,
    ConnectionPlan,
    Constant,
    EdgePlan,
    ObjectPlan,
    Paging,
    Run,
    Scalar,
    ToOne,
)
from server.api.plan_roots import (
    LOOKUPS,
    Lookup,
    RootConnection,
    RootPart,
    Typename,
)
from server.api.relay import CONNECTION_FIELD, ConnectionField, page_spec

# Scalars that hand values of exactly this Python type back unchanged (plan_nodes._coerce_all).
NATURAL: dict[Any, type] = {
    GraphQLString: str,
    GraphQLID: str,
    GraphQLInt: int,
    GraphQLBoolean: bool,
}


class Unplannable(Exception):
    pass


@dataclass(slots=True)
class Compiler:
    schema: GraphQLSchema
    strawberry: Any  # the strawberry Schema (argument conversion)
    fragments: dict[str, FragmentDetails]
    variables: VariableValues
    operation: OperationDefinitionNode
    hide_suggestions: bool

    def root(self) -> list[RootPart]:
        root_type = self.schema.query_type
        if root_type is None:
            raise Unplannable
        grouped, *_ = collect_fields(
            self.schema,
            self.fragments,
            self.variables,
            root_type,
            self.operation,
            self.hide_suggestions,
        )
        return [self._root_part(root_type, key, details) for key, details in _items(grouped)]

    def _root_part(
        self, root_type: GraphQLObjectType, key: str, details: FieldDetailsList
    ) -> RootPart:
        name = details[0].node.name.value
        if name == "__typename":
            return Typename(key)
        field_def = root_type.fields.get(name)
        if field_def is None:
            raise Unplannable  # __schema, __type
        definition = _definition(field_def)
        connection = definition.metadata.get(CONNECTION_FIELD)
        if connection is not None:
            return RootConnection(key, self._connection(field_def, connection, details))
        if name not in LOOKUPS or not _plain(field_def):
            raise Unplannable
        returned = get_named_type(field_def.type)
        if isinstance(returned, GraphQLInterfaceType):
            types = self.schema.get_possible_types(returned)
        elif isinstance(returned, GraphQLObjectType):
            types = [returned]
        else:
            raise Unplannable
        plans = {t.name: self._object(t, details) for t in types if t.name in ENTITIES}
        arguments = _once_if_literal(self._arguments(field_def, details), details)
        return Lookup(key, name, arguments, plans)

    # ---------------------------------------------------------------- arguments

    def _arguments(self, field_def: GraphQLField, details: FieldDetailsList) -> Any:
        """A function of the run giving the resolver's keyword arguments, as strawberry
        converts them (input objects, enums, defaults)."""
        node, fragment_variables = details[0].node, details[0].fragment_variable_values
        if fragment_variables is not None:
            raise Unplannable
        definition = _definition(field_def)
        hide, strawberry = self.hide_suggestions, self.strawberry

        def arguments(run: Run) -> dict[str, Any]:
            # The request's own variables: a plan serves every request of its document.
            raw = get_argument_values(field_def, node, run.variables, None, hide)
            converted: dict[str, Any] = convert_arguments(
                raw,
                definition.arguments,
                scalar_registry=strawberry.schema_converter.scalar_registry,
                config=strawberry.config,
            )
            return {k: (None if v is UNSET else v) for k, v in converted.items()}

        return arguments

    # ---------------------------------------------------------------- objects

    def _object(self, object_type: GraphQLObjectType, details: FieldDetailsList) -> ObjectPlan:
        entity = ENTITIES.get(object_type.name)
        if entity is None:
            raise Unplannable
        grouped = self._subfields(object_type, details)
        leaves = leaves_of(object_type)
        to_one = entity.to_one
        pk = next(iter(entity.table.primary_key.columns)).name
        columns = {c.name for c in entity.table.columns if not c.info.get("private")}
        keys: list[str] = []
        readers: list[tuple[int, Any]] = []
        parts: list[tuple[int, Any]] = []
        for slot, (key, sub) in enumerate(_items(grouped)):
            keys.append(key)
            name = sub[0].node.name.value
            field_def = object_type.fields[name] if name != "__typename" else None
            if field_def is None:
                readers.append((slot, Constant(object_type.name)))
            elif name in leaves:
                leaf = leaves[name]
                attribute = leaf.attribute
                natural = NATURAL.get(get_nullable_type(field_def.type))
                column = pk if attribute in ("id", "database_id") else attribute
                if column not in columns:
                    raise Unplannable
                global_id = object_type.name if attribute == "id" else None
                reader = Scalar(column, leaf.coerce, leaf.nullable, global_id, natural)
                readers.append((slot, reader))
            elif name in to_one and not field_def.args and _plain(field_def):
                target = get_named_type(field_def.type)
                if not isinstance(target, GraphQLObjectType):
                    raise Unplannable
                nullable = not is_non_null_type(field_def.type)
                parts.append((slot, ToOne(to_one[name], self._object(target, sub), nullable)))
            else:
                connection = _definition(field_def).metadata.get(CONNECTION_FIELD)
                if connection is None or connection.relation is None:
                    raise Unplannable
                parts.append((slot, self._connection(field_def, connection, sub)))
        return ObjectPlan(object_type.name, tuple(keys), readers, parts)

    # ---------------------------------------------------------------- connections

    def _connection(
        self, field_def: GraphQLField, meta: ConnectionField, details: FieldDetailsList
    ) -> Connection:
        if not _plain(field_def, resolver=True):
            raise Unplannable
        connection_type = get_nullable_type(field_def.type)
        if not isinstance(connection_type, GraphQLObjectType):
            raise Unplannable
        entity = ENTITIES[meta.target]
        grouped = self._subfields(connection_type, details)
        keys: list[str] = []
        kinds: list[str] = []
        subplans: list[Any] = []
        loads: list[str] = []
        for key, sub in _items(grouped):
            name = sub[0].node.name.value
            keys.append(key)
            kinds.append(name)
            if name == "nodes":
                subplans.append(self._object(_list_item(connection_type, name), sub))
            elif name == "edges":
                subplans.append(self._edges(_list_item(connection_type, name), sub))
            elif name == "pageInfo":
                page_info = get_named_type(connection_type.fields[name].type)
                assert isinstance(page_info, GraphQLObjectType)
                subplans.append(
                    tuple(
                        (k, s[0].node.name.value)
                        for k, s in _items(self._subfields(page_info, sub))
                    )
                )
            elif name in ("totalCount", "__typename"):
                subplans.append(None)
            else:
                raise Unplannable
            what = {"totalCount": "count", "__typename": None}.get(name, "page")
            if what is not None and what not in loads:
                loads.append(what)
        count_type = get_nullable_type(connection_type.fields["totalCount"].type)
        plan = ConnectionPlan(
            tuple(keys),
            tuple(kinds),
            tuple(subplans),
            connection_type.name,
            count_type.coerce_output_value,
            tuple(loads),
        )
        raw_arguments = self._arguments(field_def, details)
        table = entity.table

        def arguments(run: Run) -> ConnectionArguments:
            # As nodes.base.connection_field's resolver does.
            args = raw_arguments(run)
            order = order_of(args.get("order_by"))
            conditions = conditions_of(args.get("filter"))
            spec = page_spec(
                field=meta.field,
                table=table,
                order=order,
                conditions=conditions,
                first=args.get("first"),
                after=args.get("after"),
                last=args.get("last"),
                before=args.get("before"),
            )
            return ConnectionArguments(spec, conditions, Paging(meta.field, order, table))

        return Connection(meta.relation, plan, _once_if_literal(arguments, details))

    def _edges(self, edge_type: GraphQLObjectType, details: FieldDetailsList) -> EdgePlan:
        keys, kinds, node = [], [], None
        for key, sub in _items(self._subfields(edge_type, details)):
            name = sub[0].node.name.value
            if name == "node":
                if node is not None:  # two aliases of node: rare, left to graphql-core
                    raise Unplannable
                target = get_named_type(edge_type.fields["node"].type)
                assert isinstance(target, GraphQLObjectType)
                node = self._object(target, sub)
            elif name not in ("cursor", "__typename"):
                raise Unplannable
            keys.append(key)
            kinds.append(name)
        return EdgePlan(tuple(keys), tuple(kinds), edge_type.name, node)

    def _subfields(self, object_type: GraphQLObjectType, details: FieldDetailsList) -> Any:
        grouped, *_ = collect_subfields(
            self.schema,
            self.fragments,
            self.variables,
            self.operation,
            object_type,
            details,
            self.hide_suggestions,
        )
        return grouped


def _items(grouped: GroupedFieldSet) -> list[tuple[str, FieldDetailsList]]:
    items = list(grouped.items())
    for _, details in items:
        if any(d.defer_usage is not None or d.fragment_variable_values for d in details):
            raise Unplannable
    return items


def _definition(field_def: GraphQLField) -> Any:
    definition = (field_def.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if definition is None:
        raise Unplannable
    return definition


def _plain(field_def: GraphQLField, *, resolver: bool = True) -> bool:
    """A strawberry field with no extension or permission that would see the call."""
    definition = _definition(field_def)
    return not definition.extensions and (not resolver or definition.base_resolver is not None)


def _list_item(parent: GraphQLObjectType, name: str) -> GraphQLObjectType:
    item = get_named_type(parent.fields[name].type)
    if not isinstance(item, GraphQLObjectType):
        raise Unplannable
    return item


_Value = TypeVar("_Value")


def _once_if_literal(
    arguments: Callable[[Run], _Value], details: FieldDetailsList
) -> Callable[[Run], _Value]:
    """`arguments` itself when the field's arguments read variables; otherwise a function
    that computes them at its first successful call and answers the same value after that.

    A plan serves every request of its document, and literal arguments (`first: 100`, an ID
    written in the query) convert to the same value each time: coercing and converting them
    was ≈6 % of a one-user request's CPU. The values are only read downstream (page specs are
    frozen, lookup keys are tuples). A call that raises is not remembered: each request then
    falls back to graphql-core, which reports the error.
    """
    if not all(_literal(argument.value) for argument in details[0].node.arguments or ()):
        return arguments
    known: list[_Value] = []

    def once(run: Run) -> _Value:
        if not known:
            known.append(arguments(run))
        return known[0]

    return once


def _literal(value: ValueNode) -> bool:
    if isinstance(value, VariableNode):
        return False
    if isinstance(value, ListValueNode):
        return all(_literal(item) for item in value.values)
    if isinstance(value, ObjectValueNode):
        return all(_literal(field.value) for field in value.fields)
    return True
