"""`DirectQueries`: a query operation executed without strawberry's extension runner.

strawberry's `Schema.execute` takes every request through an extension runner: a fresh
execution context and fresh instances of our three extensions (`ErrorCodes`,
`DatabaseFaults`, `LimitsExtension`), each with generator hooks entered and left around the
operation, parsing, validation and execution. Their work is a few dictionary lookups on a
repeated document; the runner around it is about a sixth of the server's CPU for a small
query such as one user and their posts (README "Performance", `bench.cpu --compare direct`).

For a query operation whose document keeps to every limit and validates without error, all
known from the caches that `LimitsExtension` fills, this module does the same steps directly:
it records the operation's name for the operator's log, calls graphql-core's `execute` as
strawberry does (same executor class, `is_awaitable`, `hide_suggestions`), codes the errors
(`server.api.errors.coded`, ErrorCodes' own function) and reports to the app's health
(`server.api.faults.observe`, DatabaseFaults' own function). Every other request — a document
that is refused, does not parse or validate, does not name one operation, a mutation, an
operation the transport does not allow (a mutation over GET) — is left to strawberry before
anything has happened, so each of its errors is made in one place only.

It is used only by a schema whose extensions are exactly those three and that has no
directives of its own (`direct_queries_fit`): an extension added later runs, because such a
schema takes strawberry's path for every request. `tests/test_direct.py` compares the two
paths; the shadow (tests/support/shadow.py) compares every API test's query with plain
graphql-core through strawberry's path.

Private API used here (strawberry-graphql pinned exactly in pyproject.toml): the schema's
`extensions` and `directives` lists and `_schema` (the graphql-core schema), and
`strawberry.execution.is_awaitable.optimized_is_awaitable`, the predicate strawberry passes
to graphql-core.
"""

from collections.abc import Iterable
from typing import Any, cast

from graphql import (
    ExecutionResult as GraphQLExecutionResult,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    execute,
)
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType as StrawberryOperationType

from server.api.errors import coded
from server.api.faults import OPERATION_SCOPE_KEY, observe, request_scope
from server.api.limits import QueryLimits, admitted, parsed


def only_operation(document: Any, name: str | None) -> OperationDefinitionNode | None:
    """The operation `name` selects (the only one when `name` is None), else None."""
    found: OperationDefinitionNode | None = None
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        if name is None:
            if found is not None:
                return None  # several operations and no name: graphql-core's error
            found = definition
        elif definition.name is not None and definition.name.value == name:
            return definition
    return found


class DirectQueries:
    """Runs admitted query operations of one schema (see the module docstring)."""

    def __init__(self, schema: GraphQLSchema, limits: QueryLimits, executor_class: type) -> None:
        self.schema = schema
        self.limits = limits
        self.executor_class = executor_class

    async def run(
        self,
        query: str | None,
        variables: Any,
        context: Any,
        root_value: Any,
        operation_name: str | None,
        allowed: Iterable[StrawberryOperationType] | None,
    ) -> ExecutionResult | None:
        """The result of the query, or None when strawberry's pipeline must answer it
        (decided before anything is executed or logged)."""
        if not query or (allowed is not None and StrawberryOperationType.QUERY not in allowed):
            return None
        if variables is not None and not isinstance(variables, dict):
            return None
        document = parsed(query, self.limits)
        if document is None:
            return None
        operation = only_operation(document, operation_name)
        if operation is None or operation.operation is not OperationType.QUERY:
            return None
        # strawberry's name for it (the operator's log, the cached figures): the given one,
        # else the operation's own.
        name = operation_name
        if name is None and operation.name is not None:
            name = operation.name.value
        if admitted(self.schema, self.limits, query, name, variables) is None:
            return None
        scope = request_scope(context)
        if scope is not None:
            scope[OPERATION_SCOPE_KEY] = name
        try:
            result = execute(
                self.schema,
                document,
                root_value=root_value,
                context_value=context,
                variable_values=variables,
                operation_name=operation_name,
                executor_class=self.executor_class,
                is_awaitable=cast(Any, optimized_is_awaitable),
                hide_suggestions=not self.limits.suggestions,
            )
            if not isinstance(result, GraphQLExecutionResult):
                result = await result
            data, errors = result.data, result.errors
        except Exception as error:  # as strawberry: an error of the request, never a 500
            data = None
            errors = [error if isinstance(error, GraphQLError) else _wrapped(error)]
        if errors:
            errors = coded(list(errors), context, name)
        observe(context, name)
        return ExecutionResult(data=data, errors=errors or None, extensions={})


def _wrapped(error: Exception) -> GraphQLError:
    return GraphQLError(str(error), original_error=error)
