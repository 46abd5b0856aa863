"""`DirectQueries`: a query operation executed without strawberry's extension runner.

strawberry's `Schema.execute` takes every request through an extension runner: a fresh
execution context and fresh instances of our three extensions (`ErrorCodes`,
`DatabaseFaults`, `LimitsExtension`), each with generator hooks entered and left around the
operation, parsing, validation and execution. Their work is a few dictionary lookups on a
repeated document; the runner around it is about a sixth of the server's CPU for a small
query such as one user and their posts (README "Performance", `bench.cpu --compare direct`).

For a query operation whose document keeps to every limit and validates without error, all
known from the caches that `LimitsExtension` fills (`server.api.limits.Admission`), this
module does the same steps directly:
it records the operation's name for the operator's log, calls graphql-core's `execute` as
strawberry does (same executor class, `is_awaitable`, `hide_suggestions`), codes the errors
(`server.api.errors.coded`, ErrorCodes' own function) and reports to the app's health
(`server.api.faults.observe`, DatabaseFaults' own function). Every other request — a document
that is refused, does not parse or validate, does not name one operation, a mutation, an
operation the transport does not allow (a mutation over GET) — is left to strawberry before
anything has happened, so each of its errors is made in one place only.

It stands in for exactly those three extensions: `build_schema` (server/api/schema.py) gives
it to the schema it builds with them, and an extension added there must either be done here
too or turn direct queries off. `tests/test_direct.py` compares the two paths; the shadow
(tests/support/shadow.py) compares every API test's query with plain graphql-core through
strawberry's path.

Private API used here (strawberry-graphql pinned exactly in pyproject.toml):
`strawberry.execution.is_awaitable.optimized_is_awaitable`, the predicate strawberry passes
to graphql-core, and the schema's `_schema` (the graphql-core schema), read by build_schema.
"""

from collections.abc import Iterable
from typing import Any, cast

from graphql import (
    ExecutionResult as GraphQLExecutionResult,
    GraphQLError,
    GraphQLSchema,
    OperationType,
    execute,
    get_operation_ast,
)
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType as StrawberryOperationType

from server.api.errors import coded
from server.api.faults import OPERATION_SCOPE_KEY, observe, request_scope
from server.api.limits import Admission, QueryLimits


class DirectQueries:
    """Runs admitted query operations of one schema (see the module docstring)."""

    def __init__(self, schema: GraphQLSchema, limits: QueryLimits, executor_class: type) -> None:
        self.schema = schema
        self.limits = limits
        self.admission = Admission(schema, limits)
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
        entry = self.admission.parse(query)
        if entry is None:
            return None
        document = entry.document
        # The operation graphql-core will run: the named one, or the only one.
        operation = get_operation_ast(document, operation_name)
        if operation is None or operation.operation is not OperationType.QUERY:
            return None
        # strawberry's name for it (the operator's log, the cached figures): the given one,
        # else the operation's own.
        name = operation_name
        if name is None and operation.name is not None:
            name = operation.name.value
        if not self.admission.admits(entry, name, variables):
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
