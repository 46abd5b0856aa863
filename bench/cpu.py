"""In-process CPU milliseconds per request of the peer race's queries, compiled plan off vs on
(or query limits off vs on).

    .venv/bin/python -m bench.cpu -n 20 --repeat 5 [--backend postgresql] [--queries q2,q4]
    .venv/bin/python -m bench.cpu --compare limits     # every query limit and cap off vs on
    .venv/bin/python -m bench.cpu --compare raw        # DB_RAW_READS off vs on (PostgreSQL)
    .venv/bin/python -m bench.cpu --compare direct     # strawberry's whole pipeline vs short ways
    .venv/bin/python -m bench.cpu --profile cprofile --queries q2 --mode on -n 50

Seeds the benchmark data set (bench/run.py: 2,000 users x 10 posts, 1,000 articles x 20
comments) into a fresh database, builds two apps over one engine — `GRAPHQL_COMPILED_PLAN`
off and on — and sends each query of the peer race (Q1–Q7, the inkgraph dialect of
../shared/peers/queries, copied below) through `httpx.ASGITransport`: the whole request path
(Starlette, strawberry's view, parsing/validation caches, execution, loaders, SQL driver,
JSON) but no socket and no uvicorn. Both apps' responses must be byte-identical.

CPU is this process's CPU time (`time.process_time`), so the database server's own work is not
counted. Off and on are measured interleaved (off/on, then on/off, per repeat), so that load
from other programs falls on both alike; the table gives the median of the repeats and the
ratio on ÷ off. `--profile` prints a cProfile or pyinstrument breakdown of one mode instead.

`--compare limits` keeps the plan on in both apps and turns off, in the "off" app, every query
limit, argument cap and the execution timeout (API.md "Limits and protection"): what the
limits cost a common query. `--compare raw` keeps the plan on in both and gives the "off" app
an engine with `DB_RAW_READS` off: every read through SQLAlchemy's execution instead of straight
on asyncpg (loaders/rawpg.py).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import orjson
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.routing import Route

from bench.run import HEADERS, fresh_database, seed
from server.api.schema import InkgraphSchema
from server.app import create_app
from server.settings import Settings
from server.store.engine import make_engine
from server.store.migrate import upgrade
from server.view import GraphQLView

# ../shared/peers/queries/inkgraph/qN.graphql
QUERIES = {
    "q1": "{ users(first: 100) { nodes { id: databaseId username } } }",
    "q2": "{ users(first: 100) { nodes { id: databaseId username posts(first: 100) "
    "{ nodes { id: databaseId title } } } } }",
    "q3": "{ posts(first: 100) { nodes { id: databaseId title user { id: databaseId "
    "username } } } }",
    "q4": "{ articles(first: 50) { nodes { id: databaseId title comments(first: 100) "
    "{ nodes { id: databaseId text article { id: databaseId title } author "
    "{ id: databaseId username } } } } } }",
    "q5": '{ user(id: "VXNlcjo3") { username posts(first: 100) { nodes { title } } } }',
    "q6": "{ users(first: 50) { nodes { username posts(first: 3, orderBy: {field: "
    "CREATED_AT, direction: DESC}) { totalCount nodes { title createdAt } } } } }",
    "q7": "{ articles(first: 20) { nodes { title comments(first: 10) { nodes { text "
    "author { username posts(first: 5) { nodes { title } } } } } } } }",
}
MODES = ("off", "on")


def make_client(engine: AsyncEngine, settings: Settings) -> httpx.AsyncClient:
    """An in-process client of an app over `engine`: no socket, no uvicorn."""
    app = create_app(settings, engine=engine)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://inkgraph")


def _client(engine: AsyncEngine, compare: str, on: bool) -> httpx.AsyncClient:
    if compare == "direct":
        client = make_client(engine, Settings(graphql_compiled_plan=True))
        if not on:  # strawberry's whole pipeline for every request (server/api/direct.py)
            view = _view_of(client)
            view.short_posts = False
            assert isinstance(view.schema, InkgraphSchema)
            view.schema.direct = None
        return client
    if compare == "plan":
        settings = Settings(graphql_compiled_plan=on)
    elif compare == "raw":  # the engine says whether reads run raw (see amain)
        settings = Settings(graphql_compiled_plan=True)
    else:
        settings = Settings(graphql_compiled_plan=True)
        settings = settings if on else settings.without_query_limits()
    return make_client(engine, settings)


def _view_of(client: httpx.AsyncClient) -> GraphQLView:
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    app = transport.app
    assert isinstance(app, Starlette)
    route = next(r for r in app.routes if isinstance(r, Route) and r.path == "/graphql")
    view = route.endpoint
    assert isinstance(view, GraphQLView)
    return view


async def send(client: httpx.AsyncClient, body: bytes) -> bytes:
    """The response body of one POST /graphql; exits on a non-200 status or any `errors`."""
    response = await client.post("/graphql", content=body, headers=HEADERS)
    if response.status_code != 200 or b'"errors"' in response.content:
        raise SystemExit(f"bad response {response.status_code}: {response.text[:300]}")
    return response.content


# One request, however it is answered: through the app (`send`) or otherwise (bench/floor.py).
Request = Callable[[], Awaitable[bytes]]


def request(client: httpx.AsyncClient, body: bytes) -> Request:
    return functools.partial(send, client, body)


async def cpu_ms(call: Request, n: int) -> float:
    """This process's CPU milliseconds per `call()`, over `n` calls."""
    started = time.process_time()
    for _ in range(n):
        await call()
    return 1000 * (time.process_time() - started) / n


async def interleaved_medians(
    requests: Mapping[str, Mapping[str, Request]], n: int, repeat: int, warmup: int = 3
) -> dict[tuple[str, str], float]:
    """Median CPU ms of `requests[query][mode]` over `repeat` samples of `n` calls each.

    Modes are measured interleaved — in their order on even repeats, reversed on odd ones —
    so that load from other programs falls on every mode alike.
    """
    for by_mode in requests.values():
        for call in by_mode.values():
            await cpu_ms(call, warmup)
    samples: dict[tuple[str, str], list[float]] = {}
    for index in range(repeat):
        for query, by_mode in requests.items():
            order = list(by_mode) if index % 2 == 0 else list(by_mode)[::-1]
            for mode in order:
                samples.setdefault((query, mode), []).append(await cpu_ms(by_mode[mode], n))
    return {key: statistics.median(values) for key, values in samples.items()}


async def measure(args: argparse.Namespace, clients: dict[str, httpx.AsyncClient]) -> None:
    bodies = {q: orjson.dumps({"query": QUERIES[q]}) for q in args.queries}
    for query, body in bodies.items():  # the two answers must be the same bytes
        answers = {mode: await send(clients[mode], body) for mode in MODES}
        if answers["off"] != answers["on"]:
            raise SystemExit(f"{query}: {args.compare} on and off answered differently")
    requests = {
        q: {mode: request(clients[mode], body) for mode in MODES} for q, body in bodies.items()
    }
    medians = await interleaved_medians(requests, args.n, args.repeat)
    print(f"CPU ms/request, in-process, {args.backend}, median of {args.repeat} x {args.n}")
    off_label, on_label = f"{args.compare} off", f"{args.compare} on"
    print(f"{'query':6} {off_label:>11} {on_label:>11} {'on/off':>7}")
    for query in bodies:
        off, on = medians[(query, "off")], medians[(query, "on")]
        print(f"{query:6} {off:11.2f} {on:11.2f} {on / off:7.2f}")


async def profile(args: argparse.Namespace, clients: dict[str, httpx.AsyncClient]) -> None:
    client = clients[args.mode]
    for query in args.queries:
        body = orjson.dumps({"query": QUERIES[query]})
        await cpu_ms(request(client, body), 3)
        if args.profile == "pyinstrument":
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0005, async_mode="enabled")
            with profiler:
                ms = await cpu_ms(request(client, body), args.n)
            print(profiler.output_text(unicode=True, color=False, time="percent_of_total"))
        else:
            c_profiler = cProfile.Profile()
            c_profiler.enable()
            ms = await cpu_ms(request(client, body), args.n)
            c_profiler.disable()
            stats = pstats.Stats(c_profiler, stream=sys.stdout)
            stats.sort_stats(args.sort).print_stats(args.lines)
        print(f"{query} {args.compare} {args.mode}: {ms:.2f} CPU ms/request under the profiler")


@asynccontextmanager
async def seeded_engine(backend: str) -> AsyncIterator[AsyncEngine]:
    """An engine over a fresh, migrated database holding the benchmark data set (bench/run.py);
    the database is dropped afterwards."""
    with tempfile.TemporaryDirectory(prefix="inkgraph-cpu-") as tmp:
        async with fresh_database(backend, Path(tmp)) as url:
            engine = make_engine(Settings(database_url=url, db_pool_size=2))
            try:
                await upgrade(engine)
                await seed(engine)
                yield engine
            finally:
                await engine.dispose()


async def amain(args: argparse.Namespace) -> None:
    async with seeded_engine(args.backend) as engine:
        engines = {"on": engine, "off": engine}
        if args.compare == "raw":  # the "off" app's engine sends every read through SQLAlchemy
            url = engine.url.render_as_string(hide_password=False)
            engines["off"] = make_engine(
                Settings(database_url=url, db_pool_size=2, db_raw_reads=False)
            )
        clients = {mode: _client(engines[mode], args.compare, mode == "on") for mode in MODES}
        try:
            if args.profile:
                await profile(args, clients)
            else:
                await measure(args, clients)
        finally:
            for client in clients.values():
                await client.aclose()
            if engines["off"] is not engine:
                await engines["off"].dispose()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu", description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--queries", default=",".join(QUERIES), help="e.g. q2,q4 (default all)")
    parser.add_argument("-n", type=int, default=20, help="requests per sample (default 20)")
    parser.add_argument("--repeat", type=int, default=5, help="samples per mode (default 5)")
    parser.add_argument(
        "--compare",
        choices=("plan", "limits", "raw", "direct"),
        default="plan",
        help="what off and on switch: the compiled plan (default), every query limit, "
        "PostgreSQL reads straight on asyncpg (DB_RAW_READS), or the short ways (strawberry's "
        "extension runner and view steps skipped, server/api/direct.py, server/view.py)",
    )
    parser.add_argument("--profile", choices=("cprofile", "pyinstrument"))
    parser.add_argument("--mode", choices=MODES, default="on", help="with --profile")
    parser.add_argument("--sort", default="tottime", help="cProfile sort key (default tottime)")
    parser.add_argument("--lines", type=int, default=30, help="cProfile lines (default 30)")
    args = parser.parse_args(argv)
    args.queries = selected_queries(parser, args.queries)
    return args


def selected_queries(parser: argparse.ArgumentParser, listed: str) -> list[str]:
    """The names of `--queries q2,q4`; a parser error for a name not in QUERIES."""
    queries = [q.strip() for q in listed.split(",") if q.strip()]
    unknown = [q for q in queries if q not in QUERIES]
    if unknown:
        parser.error(f"unknown queries {unknown}; choose from {', '.join(QUERIES)}")
    return queries


def main(argv: Sequence[str] | None = None) -> int:
    asyncio.run(amain(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
