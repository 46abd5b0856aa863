"""`DatabaseFaults`: each GraphQL request tells the app's `DatabaseHealth` what it met.

The errors themselves are translated by `server.api.errors.classify` (SERVICE_UNAVAILABLE,
TIMEOUT); this extension only feeds the operator's log, one line per transition rather than a
traceback per failed request.

`who(context, operation)` is whom every line of the operator's log about a GraphQL request
names (the query limits', the timeout's, an unexpected error's and the database's).
"""

from collections.abc import Iterator
from typing import Any

from strawberry.extensions import SchemaExtension

from server.events import Who, client_address, request_id
from server.health import DatabaseHealth

HEALTH_SCOPE_KEY = "inkgraph.health"
OPERATION_SCOPE_KEY = "inkgraph.operation"  # the operation's name, once the document is parsed


def request_scope(context: Any) -> dict[str, Any] | None:
    """The ASGI scope of the HTTP request `context` serves (None outside the HTTP view)."""
    scope = getattr(getattr(context, "request", None), "scope", None)
    return scope if isinstance(scope, dict) else None


def who(context: Any, operation: str | None) -> Who:
    """Whom a line of the operator's log about this GraphQL request names: the client (behind
    a trusted proxy, the one it forwards for), the operation and the request id."""
    scope = request_scope(context)
    if scope is None:
        return Who(operation=operation)
    health = scope.get(HEALTH_SCOPE_KEY)
    trusted = health.trusted if isinstance(health, DatabaseHealth) else ()
    return Who(
        client=client_address(scope, trusted),
        operation=operation or scope.get(OPERATION_SCOPE_KEY),
        request=request_id(scope),
    )


def observe(context: Any, operation: str | None) -> None:
    """Tell the app's `DatabaseHealth` what this request's database met (nothing outside
    the HTTP view: schema tests)."""
    health = (request_scope(context) or {}).get(HEALTH_SCOPE_KEY)
    if isinstance(health, DatabaseHealth) and health.has_news(context.db):
        health.observe(context.db, who(context, operation))


class DatabaseFaults(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        observe(self.execution_context.context, self.execution_context.operation_name)
