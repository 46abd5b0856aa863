"""`create_app(settings)`: the Starlette application, read top to bottom like a request.

    /                   redirects to /graphql (a browser gets GraphiQL there)
    /healthz            the process is up
    /readyz             the database answers (503 otherwise)
    /graphql            GraphQL over HTTP (POST, and GET for queries); GraphiQL for browsers
    /graphiql-static/   GraphiQL's own JavaScript and CSS, served locally

The engine is created in the lifespan (or passed in by tests) and disposed on shutdown.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Mount, Route

from server.api.context import AuthConfig
from server.api.schema import build_schema
from server.auth import Passwords, default_hash_workers
from server.ide import STATIC_PREFIX, ide_static_app
from server.settings import Settings
from server.store.engine import make_engine
from server.throttle import Throttle
from server.view import GraphQLView

logger = logging.getLogger("inkgraph")

# /readyz answers in bounded time, even when the database host swallows packets instead of
# refusing the connection (a driver's own connect timeout is a minute or more).
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


def create_app(settings: Settings, *, engine: AsyncEngine | None = None) -> Starlette:
    """Build the ASGI app. With `engine`, the caller owns it; otherwise the app creates one
    from `settings` and disposes of it on shutdown."""
    owned = engine is None
    engine = engine if engine is not None else make_engine(settings)
    auth = auth_config(settings)
    view = GraphQLView(build_schema(), engine, auth)

    async def home(_request: Request) -> RedirectResponse:
        return RedirectResponse("/graphql")

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> JSONResponse:
        try:
            async with asyncio.timeout(READINESS_TIMEOUT), engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:  # any failure means "not ready"; the reason goes to the log only
            logger.warning("readiness check failed", exc_info=True)
            return JSONResponse({"status": "unavailable"}, status_code=503)
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
        routes=[
            Route("/", home),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/graphql", view, methods=["GET", "POST"]),
            Mount(STATIC_PREFIX, app=ide_static_app()),
        ],
        lifespan=lifespan,
    )
