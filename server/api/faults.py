"""`DatabaseFaults`: each GraphQL request tells the app's `DatabaseHealth` what it met.

The errors themselves are translated by `server.api.errors.classify` (SERVICE_UNAVAILABLE,
TIMEOUT); this extension only feeds the operator's log, one line per transition rather than a
traceback per failed request.
"""

from collections.abc import Iterator
from typing import Any

from strawberry.extensions import SchemaExtension

from server.events import client_address, request_id
from server.health import DatabaseHealth, Who

HEALTH_SCOPE_KEY = "inkgraph.health"


class DatabaseFaults(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        context = self.execution_context.context
        scope: dict[str, Any] = getattr(getattr(context, "request", None), "scope", None) or {}
        health = scope.get(HEALTH_SCOPE_KEY)
        if not isinstance(health, DatabaseHealth):
            return  # executed outside the HTTP view (schema tests)
        who = Who(
            client=client_address(scope, health.trusted),
            operation=self.execution_context.operation_name,
            request=request_id(scope),
        )
        health.observe(context.db, who)
