"""`GraphQLView`: strawberry's ASGI app with our context, status codes, JSON and IDE.

- One `Database` (one pooled connection at most) and one fresh `Loaders` per request; the
  connection is handed back when the request ends, whatever happened.
- A mutation over GET is 405 (GraphQL-over-HTTP), not strawberry's 400.
- JSON is decoded and encoded with orjson.
- GraphiQL is inkgraph's own page, its assets served by this server (no CDN; server/ide.py).
"""

from typing import Any

import orjson
from cross_web import HTTPException
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult

from loaders import Database, Loaders
from server.api.context import AuthConfig, Context
from server.api.errors import classify
from server.auth import bearer_token
from server.ide import ide_html

_OPEN_DATABASES = "inkgraph.databases"


class GraphQLView(GraphQL[Context, None]):
    def __init__(self, schema: Any, engine: AsyncEngine, auth: AuthConfig, **kwargs: Any) -> None:
        super().__init__(schema, **kwargs)
        self.engine = engine
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        opened: list[Database] = []
        scope[_OPEN_DATABASES] = opened
        try:
            await super().__call__(scope, receive, send)
        finally:
            for db in opened:
                await db.close()

    async def get_context(self, request: Any, response: Any) -> Context:
        db = Database(self.engine)
        request.scope[_OPEN_DATABASES].append(db)
        token = bearer_token(request.headers.get("authorization"))
        return Context(
            request=request,
            response=response,
            db=db,
            loaders=Loaders(db),
            auth=self.auth,
            token=token,
        )

    async def execute_single(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().execute_single(*args, **kwargs)
        except HTTPException as error:
            if isinstance(error.__cause__, InvalidOperationTypeError):
                raise HTTPException(405, "Mutations are only accepted over POST.") from error
            raise

    def decode_json(self, data: str | bytes) -> object:
        # orjson caps nesting (1024 levels) and raises a JSONDecodeError, which strawberry turns
        # into a 400; the stdlib decoder recurses until RecursionError, a 500.
        return orjson.loads(data)

    def parse_json(self, data: str | bytes) -> Any:
        parsed = super().parse_json(data)
        if not isinstance(parsed, dict | list):
            raise HTTPException(400, "The request body must be a JSON object.")
        if isinstance(parsed, dict) and not isinstance(parsed.get("operationName"), str | None):
            raise HTTPException(400, "The GraphQL operation's `operationName` must be a string.")
        return parsed

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        # Errors raised before execution (syntax errors) never reach the ErrorCodes extension.
        if result.errors:
            result.errors = [classify(error) for error in result.errors]
        return await super().process_result(request, result)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    async def render_graphql_ide(self, _request: Request) -> Response:
        return HTMLResponse(ide_html())
