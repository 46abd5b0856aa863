"""CPU per request of uvicorn's HTTP protocol layer alone, with and without inkgraph's limits.

    .venv/bin/python -m bench.protocol

One keep-alive connection on an in-memory transport; a typical httpx POST of a GraphQL query;
an ASGI app that reads the body and answers 2 KiB of JSON. Measures process CPU time per
request (not wall time, so other load on the machine matters less), median of 7 rounds of
3,000 requests, the variants interleaved, on uvloop as the server runs.
"""

import asyncio
import functools
import statistics
import time
from collections.abc import Callable
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from server.httplimits import HttpLimits, LimitedHttpToolsProtocol

BODY = b'{"query": "{ user(id: \\"VXNlcjox\\") { username posts(first: 3) { nodes { title } } } }"}'
REQUEST = (
    b"POST /graphql HTTP/1.1\r\nhost: 127.0.0.1:8000\r\naccept: application/json\r\n"
    b"accept-encoding: gzip, deflate\r\nconnection: keep-alive\r\n"
    b"user-agent: python-httpx/0.28.1\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\n\r\n" % len(BODY)
) + BODY
ANSWER = b'{"data": ' + b'"x"' * 700 + b"}"
ROUNDS, REQUESTS = 7, 3000


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.closing = False

    def write(self, data: Any) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 5555)}.get(name, default)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def app(_scope: Any, receive: Any, send: Any) -> None:
    while (await receive()).get("more_body"):
        pass
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(ANSWER))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": ANSWER})


async def per_request(factory: Callable[..., asyncio.Protocol]) -> float:
    config = Config(app=app, log_level="warning", access_log=False, lifespan="off")
    config.load()
    state = ServerState()
    protocol: Any = factory(config=config, server_state=state, app_state={})
    protocol.connection_made(Transport())
    start = time.process_time()
    for _ in range(REQUESTS):
        protocol.data_received(REQUEST)
        while state.tasks:
            await asyncio.gather(*list(state.tasks))
    return (time.process_time() - start) / REQUESTS * 1e6


async def main() -> None:
    variants: dict[str, Callable[..., asyncio.Protocol]] = {
        "httptools (uvicorn's default)": HttpToolsProtocol,
        "httptools + inkgraph limits": functools.partial(
            LimitedHttpToolsProtocol, limits=HttpLimits()
        ),
        "h11 (uvicorn's)": H11Protocol,
    }
    results: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(ROUNDS):
        for name, factory in variants.items():
            results[name].append(await per_request(factory))
    for name, runs in results.items():
        print(f"{name:32} {statistics.median(runs):6.1f} µs CPU per request")


if __name__ == "__main__":
    import uvloop  # the loop uvicorn serves on here (uvicorn[standard])

    uvloop.run(main())
