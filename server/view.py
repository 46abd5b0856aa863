"""`GraphQLView`: strawberry's ASGI app with our context, status codes, JSON and IDE.

- One `Database` (one pooled connection at most) and one fresh `Loaders` per request; the
  connection is handed back when the request ends, whatever happened (closing never raises:
  a broken connection is dropped, so no answer is lost to its clean-up).
- The app's `DatabaseHealth` rides in the ASGI scope for `server.api.faults.DatabaseFaults`.
- A mutation over GET is 405 (GraphQL-over-HTTP), not strawberry's 400, with the `Allow`
  header RFC 9110 requires on every 405.
- JSON is decoded and encoded with orjson.
- GraphiQL is inkgraph's own page, its assets served by this server (no CDN; server/ide.py).
- A client that goes away cancels its request: once the body is read, `http.disconnect` is
  watched for, and on it the request's task is cancelled and its statements interrupted
  (`Database.interrupt`), so nothing keeps computing for nobody.
- An answer carries at most 10 errors, a repeated request error once (server/api/limits.py).

- A plain JSON POST (`application/json`, one operation, no streaming `Accept`) is run by
  `_run_plain`: strawberry's own hooks in the order of its `run`, without the steps that
  cannot apply (WebSocket and IDE checks, content-type parsing through `email`, the
  streaming-transport lookup, the subscription-result check against a runtime Protocol,
  ~7 % of a small query's CPU). Anything else, malformed bodies included, goes to `run`.

Private API used here (strawberry-graphql pinned exactly in pyproject.toml): `execute_single`,
the shared HTTP view's per-operation step, is overridden and called, with
`request_adapter_class`, `_handle_errors` and `create_response` as its `run` calls them; a
mutation over GET is recognised by the `InvalidOperationTypeError` behind strawberry's
HTTPException (`__cause__`); the other overrides are the view's hooks.
`tests/api/test_mutations.py` checks the 405; `tests/test_direct.py` compares both ways.
"""

import asyncio
import contextlib
from typing import Any

import orjson
from cross_web import HTTPException
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Message, Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET

from loaders import Database, Loaders
from server.api.context import AuthConfig, Context
from server.api.errors import TIMEOUT, classify
from server.api.faults import HEALTH_SCOPE_KEY
from server.api.limits import trim_errors
from server.auth import bearer_token
from server.health import DatabaseHealth
from server.ide import ide_html

_OPEN_DATABASES = "inkgraph.databases"
_PLAIN_KEYS = frozenset(("query", "variables", "operationName", "extensions"))
ALLOW = (b"allow", b"GET, POST")
_SUB_RESPONSE = "inkgraph.sub_response"
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"


def prefers_graphql_response_json(accept: str) -> bool:
    """Whether `Accept` ranks application/graphql-response+json above application/json (by
    q, then by order), as GraphQL-over-HTTP clients that want its status codes send it."""
    ranks: dict[str, tuple[float, int]] = {}
    for position, item in enumerate(accept.split(",")):
        media, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        ranks.setdefault(media.lower(), (q, -position))
    wanted = ranks.get(GRAPHQL_RESPONSE_JSON)
    plain = ranks.get("application/json")
    return wanted is not None and wanted[0] > 0 and (plain is None or wanted > plain)


class GraphQLView(GraphQL[Context, None]):
    # JSON POSTs take `_run_plain` (bench.cpu --compare direct turns it off, with the schema's
    # direct queries).
    short_posts = True

    def __init__(
        self,
        schema: Any,
        engine: AsyncEngine,
        auth: AuthConfig,
        health: DatabaseHealth | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(schema, **kwargs)
        self.engine = engine
        self.auth = auth
        self.health = health or DatabaseHealth()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        opened: list[Database] = []
        scope[_OPEN_DATABASES] = opened
        scope[HEALTH_SCOPE_KEY] = self.health

        async def send_with_allow(message: Message) -> None:
            # strawberry turns our 405 into a plain response without headers.
            if message["type"] == "http.response.start" and message["status"] == 405:
                message = {**message, "headers": [*message.get("headers", ()), ALLOW]}
            await send(message)

        try:
            if scope["type"] == "http":
                await self._serve_while_connected(scope, receive, send_with_allow)
            else:
                await super().__call__(scope, receive, send)
        finally:
            for db in opened:
                await db.close()

    async def _serve_while_connected(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request; if the client goes away first, stop its statements in the
        database, then cancel the request (an answer nobody reads is not computed)."""
        task = asyncio.current_task()
        assert task is not None
        body_read = asyncio.Event()
        disconnected = False

        async def receive_body() -> Any:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_read.set()
            return message

        async def watch() -> None:
            nonlocal disconnected
            await body_read.wait()
            while (await receive())["type"] != "http.disconnect":
                pass
            disconnected = True
            task.cancel()  # first: what the interruption fails is then not reported
            for db in scope[_OPEN_DATABASES]:
                await db.interrupt()

        watcher = asyncio.create_task(watch())
        try:
            await super().__call__(scope, receive_body, send)
        except asyncio.CancelledError:
            if not disconnected:
                raise
            task.uncancel()
        finally:
            if not disconnected:
                watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher  # when disconnected: until the statements are interrupted

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        # A plain JSON POST (nearly every request) takes the short way: strawberry's own hooks
        # in strawberry's order, without the steps that cannot apply to it (WebSocket and IDE
        # checks, content-type parsing, streaming transports, subscription results).
        if self.short_posts and context is UNSET and root_value is UNSET and _json_post(request):
            request_data = await _plain_request_data(request)
            if request_data is not None:
                return await self._run_plain(request, request_data)
        return await super().run(request, context, root_value)

    async def _run_plain(self, request: Request, request_data: GraphQLRequestData) -> Response:
        sub_response = await self.get_sub_response(request)
        context = await self.get_context(request, response=sub_response)
        result = await self.execute_single(
            request=request,
            request_adapter=self.request_adapter_class(request),
            sub_response=sub_response,
            context=context,
            root_value=None,  # GraphQL[Context, None]: no get_root_value of ours
            request_data=request_data,
        )
        response_data = await self.process_result(request=request, result=result)
        if result.errors:
            self._handle_errors(result.errors, response_data)
        return self.create_response(response_data=response_data, sub_response=sub_response)

    async def get_context(self, request: Any, response: Any) -> Context:
        db = Database(self.engine)
        request.scope[_OPEN_DATABASES].append(db)
        request.scope[_SUB_RESPONSE] = response
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
            result.errors = trim_errors([classify(error) for error in result.errors])
            # A request error (nothing executed: parse, validation, a query limit) is a 400
            # for clients of application/graphql-response+json (GraphQL-over-HTTP).
            if (
                result.data is None
                and all(not error.path for error in result.errors)
                and all((error.extensions or {}).get("code") != TIMEOUT for error in result.errors)
                and prefers_graphql_response_json(request.headers.get("accept", ""))
            ):
                sub_response = request.scope.get(_SUB_RESPONSE)
                if sub_response is not None:
                    sub_response.status_code = 400
        return await super().process_result(request, result)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    async def render_graphql_ide(self, _request: Request) -> Response:
        return HTMLResponse(ide_html())


def _json_post(request: Any) -> bool:
    """A POST of exactly `application/json` that asks for no streaming transport."""
    if not isinstance(request, Request) or request.method != "POST":
        return False
    if request.headers.get("content-type") != "application/json":
        return False
    accept = request.headers.get("accept", "").lower()
    return "multipart" not in accept and "event-stream" not in accept


async def _plain_request_data(request: Request) -> GraphQLRequestData | None:
    """The body as one plain operation, or None for anything strawberry must judge (it then
    reads the body again from Starlette's cache and gives its own 400s)."""
    try:
        data = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict or not data.keys() <= _PLAIN_KEYS:
        return None
    query, variables, name = data.get("query"), data.get("variables"), data.get("operationName")
    if type(query) is not str or data.get("extensions") is not None:
        return None
    if not (variables is None or type(variables) is dict) or not (
        name is None or type(name) is str
    ):
        return None
    return GraphQLRequestData(
        query=query, variables=variables, operation_name=name, extensions=None
    )
