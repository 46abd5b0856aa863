"""The plan's shadow: every query the tests send is also answered by plain graphql-core.

`pytest --plan=compare` (the default) wraps `InkgraphSchema.execute`: after a query operation
has been answered (through the compiled plan, server/api/plan.py), the same query, variables,
operation name and token are executed again by a schema built with the plan off, on a second
engine over the same database — so statement counts of the test's own engine stay the test's —
and the two results must serialise to the same JSON bytes. A difference is recorded and fails
the test that caused it (see tests/conftest.py). Mutations are never executed twice.

`--plan=on` runs the plan alone, `--plan=off` plain graphql-core alone (GRAPHQL_COMPILED_PLAN).
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import orjson
from graphql import GraphQLError, OperationType, get_operation_ast, parse
from sqlalchemy.ext.asyncio import AsyncEngine

from loaders import Database, Loaders
from server.api.context import Context
from server.api.limits import QueryLimits
from server.api.plan import PlanExecutor
from server.api.schema import InkgraphSchema, build_schema
from server.settings import Settings
from server.store.engine import make_engine

MODES = ("off", "on", "compare")
MISMATCHES: list[str] = []
COUNTS: Counter[str] = Counter()
_engines: dict[str, AsyncEngine] = {}
# Set for tests marked `no_shadow`: they break the test's own engine on purpose (tests/
# test_faults.py), which a second engine over the same database would not see.
PAUSED = False
_original: Callable[..., Any] | None = None


def install() -> None:
    """Wrap InkgraphSchema.execute for the whole session (compare mode)."""
    global _original
    if _original is not None:
        return
    _original = InkgraphSchema.execute
    signature = inspect.signature(_original)

    async def execute(self: InkgraphSchema, *args: Any, **kwargs: Any) -> Any:
        assert _original is not None
        result = await _original(self, *args, **kwargs)
        if self.execution_context_class is PlanExecutor:
            call = signature.bind(self, *args, **kwargs)
            call.apply_defaults()
            await _compare(call.arguments, result)
        return result

    InkgraphSchema.execute = execute  # type: ignore[method-assign] # a spy with the same call


@lru_cache(maxsize=512)
def _is_query(query: str, operation_name: str | None) -> bool:
    try:
        operation = get_operation_ast(parse(query), operation_name)
    except GraphQLError:
        return False
    return operation is not None and operation.operation is OperationType.QUERY


@lru_cache(maxsize=8)
def _plain_schema(limits: QueryLimits) -> InkgraphSchema:
    # The same query limits as the schema being compared (a test app may change them).
    schema = build_schema(limits, compiled_plan=False)
    assert isinstance(schema, InkgraphSchema)
    return schema


def _engine_for(engine: AsyncEngine) -> AsyncEngine:
    url = engine.url.render_as_string(hide_password=False)
    shadow = _engines.get(url)
    if shadow is None:
        shadow = make_engine(Settings(database_url=url, db_pool_size=2, db_max_overflow=2))
        _engines[url] = shadow
    return shadow


async def dispose(engine: AsyncEngine) -> None:
    """Close the shadow engine of `engine`'s database (before that database is dropped)."""
    shadow = _engines.pop(engine.url.render_as_string(hide_password=False), None)
    if shadow is not None:
        await shadow.dispose()


def _body(result: Any) -> bytes:
    errors = [error.formatted for error in result.errors or ()]
    return orjson.dumps({"data": result.data, "errors": errors})


async def _compare(arguments: dict[str, Any], result: Any) -> None:
    query, context = arguments["query"], arguments["context_value"]
    if PAUSED or not isinstance(query, str) or not isinstance(context, Context):
        return
    if not _is_query(query, arguments["operation_name"]):
        return
    if any((error.extensions or {}).get("code") == "TIMEOUT" for error in result.errors or ()):
        return  # depends on time (tests/test_cancellation.py), not on the plan
    db = Database(_engine_for(context.db.engine))
    shadow_context = Context(
        request=context.request,
        response=context.response,
        db=db,
        loaders=Loaders(db),
        auth=context.auth,
        token=context.token,
    )
    try:
        plain = await _plain_schema(arguments["self"].limits).execute(
            query,
            variable_values=arguments["variable_values"],
            context_value=shadow_context,
            root_value=arguments["root_value"],
            operation_name=arguments["operation_name"],
            allowed_operation_types=arguments["allowed_operation_types"],
            operation_extensions=arguments["operation_extensions"],
        )
    finally:
        await db.close()
    COUNTS["compared"] += 1
    planned, stock = _body(result), _body(plain)
    if planned != stock:
        MISMATCHES.append(
            f"query {query!r} variables {arguments['variable_values']!r}\n"
            f"  plan:         {planned[:2000]!r}\n  graphql-core: {stock[:2000]!r}"
        )
