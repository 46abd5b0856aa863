"""`create_app(settings)`: the Starlette application, read top to bottom like a request.

    /                   redirects to /graphql (a browser gets GraphiQL there)
    /healthz            the process is up
    /readyz             the database answers (503 otherwise)
    /graphql            GraphQL over HTTP (POST, and GET for queries); GraphiQL for browsers
    /graphiql-static/   GraphiQL's own JavaScript and CSS, served locally

Around the routes: `BodyLimit` (413 for a body over `HTTP_MAX_BODY_BYTES`), then CORS for the
origins in `CORS_ALLOW_ORIGINS` only (none by default). The per-connection limits (header
block, deadlines, connection cap) live in the HTTP protocol, server/httplimits.py.

The engine is created in the lifespan (or passed in by tests) and disposed on shutdown.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from sqlalchemy import literal, select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Mount, Route

from loaders import Database
from server.api.context import AuthConfig
from server.api.limits import QueryLimits
from server.api.schema import build_schema
from server.auth import Passwords, default_hash_workers
from server.bodylimit import BodyLimit
from server.events import Who, client_address, parse_networks, request_id
from server.health import DatabaseHealth
from server.ide import STATIC_PREFIX, ide_static_app
from server.settings import Settings
from server.store.engine import make_engine
from server.throttle import Throttle
from server.view import GraphQLView

logger = logging.getLogger("inkgraph")

# /readyz answers in bounded time, even when the database host swallows packets instead of
# refusing the connection, and well inside the 5 s the contract gives it to turn 200 again.
READINESS_TIMEOUT = 2.0


def auth_config(settings: Settings) -> AuthConfig:
    passwords = Passwords(
        time_cost=settings.argon2_time_cost,
        memory_cost_kib=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
        workers=settings.password_hash_workers or default_hash_workers(),
    )
    return AuthConfig(
        passwords=passwords,
        token_ttl=settings.token_ttl,
        throttle=Throttle.from_settings(settings),
    )


def query_limits(settings: Settings) -> QueryLimits:
    return QueryLimits(
        max_characters=settings.graphql_max_characters,
        max_tokens=settings.graphql_max_tokens,
        max_directives=settings.graphql_max_directives,
        max_aliases=settings.graphql_max_aliases,
        max_depth=settings.graphql_max_depth,
        max_nodes=settings.graphql_max_nodes,
        max_cost=settings.graphql_max_cost,
        max_node_ids=settings.graphql_max_node_ids,
        max_input_list=settings.graphql_max_input_list,
        execution_timeout=settings.graphql_execution_timeout,
        introspection=settings.graphql_introspection,
        suggestions=settings.graphql_suggestions,
    )


def http_middleware(settings: Settings) -> list[Middleware]:
    """The body limit, then CORS when origins are configured (API.md "Browsers and CSRF")."""
    trusted = parse_networks(settings.trusted_proxies)
    middleware = [
        Middleware(BodyLimit, max_bytes=settings.http_max_body_bytes, trusted=trusted),
    ]
    origins = settings.cors_origins()
    if origins:
        # Bearer tokens, not cookies: credentials mode is never needed, so never allowed.
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=origins,
                allow_methods=["GET", "POST"],
                allow_headers=["authorization", "content-type"],
                allow_credentials=False,
                max_age=600,
            )
        )
    return middleware


def create_app(
    settings: Settings,
    *,
    engine: AsyncEngine | None = None,
    health: DatabaseHealth | None = None,
) -> Starlette:
    """Build the ASGI app. With `engine`, the caller owns it; otherwise the app creates one
    from `settings` and disposes of it on shutdown. `health` (tests) logs outages."""
    owned = engine is None
    engine = engine if engine is not None else make_engine(settings)
    health = health or DatabaseHealth(
        statement_timeout=settings.db_statement_timeout,
        trusted=parse_networks(settings.trusted_proxies),
    )
    auth = auth_config(settings)
    limits = query_limits(settings)
    schema = build_schema(limits, compiled_plan=settings.graphql_compiled_plan)
    view = GraphQLView(
        schema,
        engine,
        auth,
        health,
        # Without introspection GraphiQL cannot work: a browser's GET /graphql is a 404.
        graphql_ide="graphiql" if limits.introspection else None,
    )

    async def home(_request: Request) -> RedirectResponse:
        return RedirectResponse("/graphql")

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        db = Database(engine)
        scope = cast(dict[str, Any], request.scope)  # Starlette types it as a MutableMapping
        who = Who(client=client_address(scope, health.trusted), request=request_id(scope))
        try:
            async with asyncio.timeout(READINESS_TIMEOUT):
                await db.fetch(select(literal(1)))
        except Exception as error:  # any failure means "not ready"; the reason goes to the log
            reason = db.outage.reason if db.outage is not None else type(error).__name__
            health.failure(reason, who, count=False)
            logger.debug("readiness check failed", exc_info=True)
            return JSONResponse({"status": "unavailable"}, status_code=503)
        finally:
            await db.close()
        health.success(who)
        return JSONResponse({"status": "ok"})

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await auth.throttle.aclose()
            if owned:
                await engine.dispose()

    return Starlette(
        middleware=http_middleware(settings),
        routes=[
            Route("/", home),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/graphql", view, methods=["GET", "POST"]),
            Mount(STATIC_PREFIX, app=ide_static_app()),
        ],
        lifespan=lifespan,
    )
