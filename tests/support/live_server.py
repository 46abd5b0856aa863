"""A real uvicorn serving an app inside the test's event loop, on a free loopback port.

For tests that need a socket (a client hanging up, a header block arriving in pieces) but not a
subprocess: the app shares the test's engine and its log records reach caplog.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from starlette.types import ASGIApp


async def eventually(check: Callable[[], bool], within: float) -> bool:
    """Whether `check()` became true within `within` seconds (polled every 20 ms)."""
    deadline = time.monotonic() + within
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)


@asynccontextmanager
async def serving(app: ASGIApp, **options: Any) -> AsyncIterator[int]:
    """Serve `app` (uvicorn `options` on top of loopback, port 0, no lifespan) and yield the
    port; the server is stopped on the way out."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="off", log_level="warning", **options
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        assert await eventually(lambda: server.started, within=10), "uvicorn did not start"
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task
