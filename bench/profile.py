"""Profile one benchmark query in-process with pyinstrument.

    .venv/bin/python -m bench.profile articles_comments [--backend sqlite] [-n 50] [--html FILE]

Seeds the benchmark data set into a fresh database (as `bench.run` does), then sends the query
`-n` times through `httpx.ASGITransport` to `create_app(...)` — no network, no uvicorn — and
prints pyinstrument's call tree of those requests (setup excluded).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
from pyinstrument import Profiler

from bench.run import HEADERS, ShapeError, fresh_database, scenarios, seed, verify
from server.app import create_app
from server.settings import Settings
from server.store.engine import make_engine
from server.store.migrate import upgrade


async def profile(args: argparse.Namespace) -> Profiler:
    with tempfile.TemporaryDirectory(prefix="inkgraph-profile-") as tmp:
        async with fresh_database(args.backend, Path(tmp)) as url:
            engine = make_engine(Settings(database_url=url))
            try:
                await upgrade(engine)
                await seed(engine)
                by_key = {s.key: s for s in await scenarios(engine)}
                if args.query not in by_key:
                    raise SystemExit(f"unknown query {args.query!r}; one of {', '.join(by_key)}")
                scenario = by_key[args.query]
                bodies = scenario.bodies()
                app = create_app(Settings(), engine=engine)
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://inkgraph"
                ) as client:
                    for n in range(3):  # warm caches (parser, validation, pool) unmeasured
                        await client.post(
                            "/graphql", content=bodies[n % len(bodies)], headers=HEADERS
                        )
                    profiler = Profiler(interval=args.interval, async_mode="enabled")
                    started = time.perf_counter()
                    with profiler:
                        for n in range(args.n):
                            response = await client.post(
                                "/graphql", content=bodies[n % len(bodies)], headers=HEADERS
                            )
                            try:
                                verify(
                                    scenario,
                                    response.status_code,
                                    response.content,
                                    scenario.variables[n % len(bodies)],
                                )
                            except ShapeError as error:
                                raise SystemExit(f"bad response: {error}") from None
                    elapsed = time.perf_counter() - started
                    print(
                        f"{args.query} on {args.backend}: {args.n} requests in {elapsed:.2f}s "
                        f"= {1000 * elapsed / args.n:.1f} ms/request (under the profiler)",
                        file=sys.stderr,
                    )
            finally:
                await engine.dispose()
    return profiler


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile", description=__doc__.split("\n")[0]
    )
    parser.add_argument("query", help="a bench query key, e.g. articles_comments")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("-n", type=int, default=50, help="requests to profile (default 50)")
    parser.add_argument("--interval", type=float, default=0.0005, help="sampling interval (s)")
    parser.add_argument(
        "--flat",
        action="store_true",
        help="a flat list of functions by own time instead of the call tree",
    )
    parser.add_argument("--all", action="store_true", help="show library frames too")
    parser.add_argument("--html", type=Path, help="also write pyinstrument's HTML report here")
    args = parser.parse_args(argv)
    profiler = asyncio.run(profile(args))
    print(
        profiler.output_text(
            unicode=True, color=False, show_all=args.all, flat=args.flat, time="percent_of_total"
        )
    )
    if args.html:
        args.html.write_text(profiler.output_html(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
