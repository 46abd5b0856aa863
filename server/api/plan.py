"""The compiled execution plan: query operations answered without graphql-core's per-field work.

graphql-core executes every field of every object the same way (resolve info, arguments,
resolver, awaitable check, completion through the type's wrappers) and strawberry wraps each
resolver once more. For a page of a row-backed type that is almost all of a request's CPU.

`PlanExecutor` compiles a validated query operation once (server/api/plan_build.py) into
readers for the row-backed types: scalars are read straight from the rows, each place of the
query asks the same loaders as the resolvers do once for all its rows (same SQL, same rounds,
same statement counts), and the result is built as plain dicts and lists with no awaitable per
field (server/api/plan_nodes.py). Plans are cached beside the parsed document, keyed by the
operation node and the values of the variables that `@skip` / `@include` read; all other
variables are applied at run time.

Anything the plan does not handle goes to graphql-core unchanged: mutations, introspection,
fields it does not know, an extension that sees every field (middleware), and any request
whose answer would carry an error (the plan stops and graphql-core runs the operation, so the
errors, their paths and the data around them are graphql-core's own).

`GRAPHQL_COMPILED_PLAN=false` (Settings.graphql_compiled_plan) turns it off;
tests/support/shadow.py runs every API test's queries both ways and compares the bytes.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from typing import Any

from graphql import (
    DirectiveNode,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    visit,
)
from graphql.language import Visitor

from loaders import Loaders
from server.api.execution import LeafFastPathContext
from server.api.plan_build import Compiler, Unplannable
from server.api.plan_nodes import Fallback, Run, gather
from server.api.plan_roots import RootPart

logger = logging.getLogger("inkgraph.plan")

CACHE_SIZE = 256
# How often each path was taken, for tests and the benchmark: planned, fallback, unplanned.
STATS: Counter[str] = Counter()


class Plan:
    """The root fields of one operation, compiled for one set of @skip/@include values."""

    def __init__(self, parts: list[RootPart]) -> None:
        self.parts = parts
        self.keys = tuple(part.key for part in parts)
        self.nested = [p for part in parts for p in part.parts()]

    async def run(self, run: Run) -> dict[str, Any]:
        for part in self.parts:
            part.prepare(run)
        for nested in self.nested:
            nested.prepare(run)
        values = await gather([part.value(run) for part in self.parts])
        return dict(zip(self.keys, values, strict=True))


class _Cache:
    """Plans by operation node (the parsed documents are cached by strawberry's ParserCache,
    so a repeated query string is the same node) and @skip/@include variable values."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[tuple[Any, ...], tuple[Any, Any, Plan | None]] = OrderedDict()
        self.conditions: dict[int, tuple[OperationDefinitionNode, tuple[str, ...]]] = {}

    def get(self, executor: PlanExecutor) -> Plan | None:
        operation = executor.operation
        names = self._condition_variables(executor)
        coerced = executor.variable_values.coerced
        # Parsed documents are shared by the schemas of one process (strawberry's ParserCache),
        # a plan is not: it holds the schema's own field definitions.
        key = (id(executor.schema), id(operation), tuple(coerced.get(name) for name in names))
        entry = self.entries.get(key)
        if entry is not None and entry[0] is operation and entry[1] is executor.schema:
            self.entries.move_to_end(key)
            return entry[2]
        plan: Plan | None
        try:
            plan = Plan(executor.compiler().root())
        except Unplannable:
            plan = None
        self.entries[key] = (operation, executor.schema, plan)
        if len(self.entries) > self.size:
            self.entries.popitem(last=False)
        return plan

    def _condition_variables(self, executor: PlanExecutor) -> tuple[str, ...]:
        operation = executor.operation
        known = self.conditions.get(id(operation))
        if known is not None and known[0] is operation:
            return known[1]
        names: set[str] = set()
        for node in (operation, *(f.definition for f in executor.fragments.values())):
            visit(node, _DirectiveVariables(names))
        result = tuple(sorted(names))
        if len(self.conditions) > self.size:
            self.conditions.clear()
        self.conditions[id(operation)] = (operation, result)
        return result


class _DirectiveVariables(Visitor):
    def __init__(self, names: set[str]) -> None:
        super().__init__()
        self.names = names

    def enter_directive(self, node: DirectiveNode, *_args: Any) -> None:
        if node.name.value in ("skip", "include"):
            for argument in node.arguments or ():
                if isinstance(argument.value, VariableNode):
                    self.names.add(argument.value.name.value)


PLANS = _Cache(CACHE_SIZE)


class PlanExecutor(LeafFastPathContext):
    """graphql-core's executor, answering query operations through a compiled plan."""

    def compiler(self) -> Compiler:
        return Compiler(
            schema=self.schema,
            strawberry=self.schema._strawberry_schema,  # type: ignore[attr-defined] # set by strawberry
            fragments=self.fragments,
            variables=self.variable_values,
            operation=self.operation,
            hide_suggestions=self.hide_suggestions,
        )

    def execute_operation(self, serially: bool | None = None) -> Any:
        if not self._plannable(serially):
            STATS["unplanned"] += 1
            return super().execute_operation(serially)
        plan = PLANS.get(self)
        if plan is None:
            STATS["unplanned"] += 1
            return super().execute_operation(serially)
        return self._execute(plan)

    def _plannable(self, serially: bool | None) -> bool:
        manager = self.middleware_manager
        return (
            serially is None
            and self.operation.operation is OperationType.QUERY
            and not (manager is not None and manager.middlewares)
            and self.error_propagation
            and self.abort_signal is None
            and isinstance(getattr(self.context_value, "loaders", None), Loaders)
        )

    async def _execute(self, plan: Plan) -> Any:
        try:
            run = Run(self.context_value.loaders, self.context_value, self.variable_values)
            data = await plan.run(run)
        except Exception as error:  # Fallback, or anything else: graphql-core decides
            if not isinstance(error, Fallback):
                logger.debug("compiled plan failed; graphql-core answers", exc_info=True)
            STATS["fallback"] += 1
            result = super().execute_operation()
            return await result if self.is_awaitable(result) else result
        STATS["planned"] += 1
        return self.build_response(data)
