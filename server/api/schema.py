"""`build_schema()`: the strawberry schema, with error codes and masking attached."""

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from server.api.errors import ErrorCodes
from server.api.execution import LeafFastPathContext
from server.api.faults import DatabaseFaults
from server.api.mutations import Mutation
from server.api.plan import PlanExecutor
from server.api.query import Query
from server.api.scalars import SCALAR_MAP
from server.api.types import Article, Comment, Post, User


class InkgraphSchema(strawberry.Schema):
    def process_errors(
        self,
        errors: list[GraphQLError],  # noqa: ARG002 - strawberry's signature
        execution_context: ExecutionContext | None = None,  # noqa: ARG002
    ) -> None:
        # Expected errors (bad input, validation) are the client's business, not log noise;
        # unexpected ones were already logged with their traceback by ErrorCodes.
        return None


def build_schema(*, compiled_plan: bool = True) -> strawberry.Schema:
    """The schema served at /graphql and printed to schema.graphql.

    `compiled_plan` answers queries through server/api/plan.py; False leaves every
    operation to graphql-core (with the scalar fast path of server/api/execution.py)."""
    extensions: list[Any] = [
        ErrorCodes,
        DatabaseFaults,
        lambda: ParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=256),
    ]
    return InkgraphSchema(
        query=Query,
        mutation=Mutation,
        types=[User, Post, Article, Comment],
        extensions=extensions,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        execution_context_class=PlanExecutor if compiled_plan else LeafFastPathContext,
    )
