"""`build_schema()`: the strawberry schema, with error codes, masking and limits attached."""

import asyncio
from collections.abc import Iterable
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from server.api.direct import DirectQueries
from server.api.errors import ErrorCodes, timed_out
from server.api.execution import LeafFastPathContext
from server.api.faults import DatabaseFaults
from server.api.limits import LimitsExtension, QueryLimits, log_timeout
from server.api.mutations import Mutation
from server.api.nodes import ENTITIES
from server.api.plan import PlanExecutor
from server.api.query import Query
from server.api.scalars import SCALAR_MAP


class InkgraphSchema(strawberry.Schema):
    limits: QueryLimits = QueryLimits()
    # Query operations that need none of strawberry's extension runner (server/api/direct.py).
    direct: DirectQueries | None = None

    def process_errors(
        self,
        errors: list[GraphQLError],  # noqa: ARG002 - strawberry's signature
        execution_context: ExecutionContext | None = None,  # noqa: ARG002
    ) -> None:
        # Expected errors (bad input, validation) are the client's business, not log noise;
        # unexpected ones were already logged with their traceback by ErrorCodes.
        return None

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """strawberry's execute, bounded by the execution timeout: at the deadline the
        request's task is cancelled and its statement in flight is cancelled in the database;
        the answer is `TIMEOUT` with `data: null` (see `loaders.Database.interrupt`), with
        `outcomeUnknown` when a mutation's COMMIT had been sent: it may have been saved."""
        args: tuple[Any, ...] = (
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed_operation_types,
            operation_extensions,
        )
        timeout = self.limits.execution_timeout
        if not timeout:
            return await self._execute(args)
        context = context_value
        task = asyncio.current_task()
        assert task is not None
        state = {"expired": False, "finished": False}
        stopping: list[asyncio.Task[None]] = []

        async def stop() -> None:
            # Cancel first, so that nothing the interruption fails is reported; then stop the
            # statement, which the cancelled task's connection clean-up is waiting for.
            if not state["finished"]:
                task.cancel()
            db = getattr(context, "db", None)
            if db is not None:
                await db.interrupt()

        def expire() -> None:
            state["expired"] = True
            stopping.append(asyncio.create_task(stop()))

        loop = asyncio.get_running_loop()
        started = loop.time()
        timer = loop.call_later(timeout, expire)
        try:
            result = await self._execute(args)
        except asyncio.CancelledError:
            if not state["expired"] or task.uncancel() > 0:
                raise  # cancelled from outside (client gone, shutdown), not by the deadline
            result = None
        finally:
            state["finished"] = True
            timer.cancel()
        if not state["expired"]:
            return result  # type: ignore[return-value] # set: not expired, so no cancellation
        await asyncio.gather(*stopping, return_exceptions=True)
        log_timeout(context, operation_name, timeout, loop.time() - started)
        # A write whose COMMIT was sent (or returned) may be saved: the error must say so.
        db = getattr(context, "db", None)
        unknown = bool(getattr(db, "may_have_written", False))
        return ExecutionResult(data=None, errors=[timed_out(timeout, outcome_unknown=unknown)])

    async def _execute(self, args: tuple[Any, ...]) -> ExecutionResult:
        """A direct query when it applies (server/api/direct.py), else strawberry's execute;
        `args` are `execute`'s, in order."""
        *call, operation_extensions = args
        if self.direct is not None and not operation_extensions:
            result = await self.direct.run(*call)
            if result is not None:
                return result
        return await super().execute(*args)

    def _get_custom_context_kwargs(
        self, operation_extensions: dict[str, Any] | None = None, *, sync: bool = False
    ) -> dict[str, Any]:
        # graphql-core's execute takes `hide_suggestions` for the messages of variable values
        # that do not coerce ("Did you mean …" for enum values and input fields).
        kwargs = super()._get_custom_context_kwargs(operation_extensions, sync=sync)
        kwargs["hide_suggestions"] = not self.limits.suggestions
        return kwargs


def build_schema(
    limits: QueryLimits | None = None, *, compiled_plan: bool = True, direct: bool = True
) -> strawberry.Schema:
    """The schema served at /graphql and printed to schema.graphql, under `limits`.

    `compiled_plan` answers queries through server/api/plan.py; False leaves every
    operation to graphql-core (with the scalar fast path of server/api/execution.py).
    `direct` (with the plan) runs admitted query operations without strawberry's extension
    runner (server/api/direct.py); the extensions here are the ones it stands in for."""
    limits = limits or QueryLimits()
    # LimitsExtension parses and validates with its own caches (it replaces strawberry's
    # ParserCache and ValidationCache).
    extensions: list[Any] = [ErrorCodes, DatabaseFaults, lambda: LimitsExtension(limits)]
    schema = InkgraphSchema(
        query=Query,
        mutation=Mutation,
        types=ENTITIES.types,
        extensions=extensions,
        config=StrawberryConfig(
            scalar_map=SCALAR_MAP, disable_field_suggestions=not limits.suggestions
        ),
        execution_context_class=PlanExecutor if compiled_plan else LeafFastPathContext,
    )
    ENTITIES.check(schema)
    schema.limits = limits
    if compiled_plan and direct:
        # It stands in for exactly the three extensions above (server/api/direct.py): one
        # added to `extensions` must be done there too, or this switched off.
        schema.direct = DirectQueries(schema._schema, limits, PlanExecutor)
    return schema
