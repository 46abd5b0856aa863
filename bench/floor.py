"""The floor: what inkgraph's SQL costs in CPU when nothing but that SQL and its JSON is done.

    .venv/bin/python -m bench.floor [--queries q1,q5] [-n 50] [--repeat 3]

For each query of the peer race (Q1–Q7, `QUERIES` in bench/cpu.py), on the benchmark data set
in a fresh PostgreSQL database (as bench/cpu.py seeds it), measures this process's CPU
milliseconds per request of

- inkgraph: the whole request through the ASGI app, compiled plan on, exactly as bench/cpu.py
  sends it (Starlette, strawberry's view, execution, loaders, SQLAlchemy, asyncpg, JSON);
- the hand-written floor: the same SQL statements, with the same parameters, sent with raw
  asyncpg (one connection, prepared statements), the rows shaped into the response by a small
  hand-written function per query (below: `q1` … `q7`) and serialised with orjson.

"The same SQL" is not written here: it is captured from inkgraph (a `before_cursor_execute`
listener on its engine, which sees the compiled `$n` text and the parameter tuple asyncpg
gets) and prepared as is. The floor computes every parameter itself, as a server would —
page sizes from the query, keys of a dependent statement from the rows of the one before —
and before anything is measured `verify` checks, per query, that the floor sent the statements
inkgraph sent, in its order, with the same parameters (key lists compared as sorted lists:
their order is the loader's, not a meaning), and answered with the same bytes. Any difference
stops the run.

The floor's statement numbers are positions in inkgraph's capture: a data set on which some
level of a query has no rows (inkgraph then skips the statement below it) fails the check
rather than measuring the wrong thing.

Floor and inkgraph are measured interleaved (bench.cpu.interleaved_medians); the table gives
the median of the repeats and inkgraph ÷ floor. CPU is this process's (`time.process_time`):
PostgreSQL's own work is the same on both sides and not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import orjson
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.cpu import (
    QUERIES,
    Request,
    interleaved_medians,
    make_client,
    request,
    seeded_engine,
    selected_queries,
    send,
)
from server.settings import Settings

# (compiled SQL, parameters) of one statement, as the asyncpg dialect hands them to the driver.
Statement = tuple[str, tuple[Any, ...]]
Row = Any  # an asyncpg.Record: row["column"]


class FloorMismatch(AssertionError):
    """The floor did not send inkgraph's statements, or did not answer inkgraph's bytes."""


@contextmanager
def captured(engine: AsyncEngine) -> Iterator[list[Statement]]:
    """Every statement `engine` sends while the block runs, with its parameters."""
    seen: list[Statement] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        seen.append((statement, tuple(parameters)))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


class Floor:
    """One query's statements, prepared on one asyncpg connection; `run(n, …)` runs the n-th."""

    def __init__(self, statements: Sequence[Any]) -> None:
        self.statements = statements

    async def run(self, index: int, *args: Any) -> list[Row]:
        rows: list[Row] = await self.statements[index].fetch(*args)
        return rows


class RecordingFloor(Floor):
    """A Floor that also notes what it ran, for `verify`."""

    def __init__(self, statements: Sequence[Any]) -> None:
        super().__init__(statements)
        self.calls: list[tuple[int, tuple[Any, ...]]] = []

    async def run(self, index: int, *args: Any) -> list[Row]:
        self.calls.append((index, args))
        return await super().run(index, *args)


# ---------------------------------------------------------------------------- shaping helpers


def _response(data: dict[str, Any]) -> bytes:
    return orjson.dumps({"data": data})


def _keys(values: Iterable[int | None]) -> list[int]:
    """Distinct non-null keys, first seen first: what a loader batches."""
    return list(dict.fromkeys(value for value in values if value is not None))


def _pages(rows: Iterable[Row], parent: str, first: int) -> dict[int, list[Row]]:
    """The rows of a per-parent page statement (ordered by parent, then rank), by parent key,
    each page cut to `first`: the statement fetches one row more, for hasNextPage."""
    pages: dict[int, list[Row]] = {}
    for row in rows:
        page = pages.setdefault(row[parent], [])
        if len(page) < first:
            page.append(row)
    return pages


async def _by_id(db: Floor, index: int, keys: list[int]) -> dict[int, Row]:
    return {row["id"]: row for row in await db.run(index, keys)} if keys else {}


def _datetime(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()  # as the DateTime scalar renders it


def _user_pk(global_id: str) -> int | None:
    type_name, _, pk = base64.b64decode(global_id).decode().partition(":")
    return int(pk) if type_name == "User" and pk.isdigit() else None


# ---------------------------------------------------------------------------- Q1–Q7 by hand


async def q1(db: Floor) -> bytes:
    users = (await db.run(0, 101))[:100]  # first: 100, and one more row for hasNextPage
    return _response(
        {"users": {"nodes": [{"id": u["id"], "username": u["username"]} for u in users]}}
    )


async def q2(db: Floor) -> bytes:
    users = (await db.run(0, 101))[:100]
    ids = [u["id"] for u in users]
    posts = _pages(await db.run(1, ids, 101), "user_id", 100) if ids else {}
    return _response(
        {
            "users": {
                "nodes": [
                    {
                        "id": u["id"],
                        "username": u["username"],
                        "posts": {
                            "nodes": [
                                {"id": p["id"], "title": p["title"]} for p in posts.get(u["id"], ())
                            ]
                        },
                    }
                    for u in users
                ]
            }
        }
    )


async def q3(db: Floor) -> bytes:
    posts = (await db.run(0, 101))[:100]
    users = await _by_id(db, 1, _keys(p["user_id"] for p in posts))

    def user(pk: int) -> dict[str, Any] | None:
        row = users.get(pk)
        return None if row is None else {"id": row["id"], "username": row["username"]}

    return _response(
        {
            "posts": {
                "nodes": [
                    {"id": p["id"], "title": p["title"], "user": user(p["user_id"])} for p in posts
                ]
            }
        }
    )


async def q4(db: Floor) -> bytes:
    articles = (await db.run(0, 51))[:50]
    ids = [a["id"] for a in articles]
    comments = _pages(await db.run(1, ids, 101), "article_id", 100) if ids else {}
    shown = [c for page in comments.values() for c in page]
    by_id = await _by_id(db, 2, _keys(c["article_id"] for c in shown))
    authors = await _by_id(db, 3, _keys(c["author_id"] for c in shown))

    def article(pk: int) -> dict[str, Any] | None:
        row = by_id.get(pk)
        return None if row is None else {"id": row["id"], "title": row["title"]}

    def author(pk: int | None) -> dict[str, Any] | None:
        row = None if pk is None else authors.get(pk)
        return None if row is None else {"id": row["id"], "username": row["username"]}

    return _response(
        {
            "articles": {
                "nodes": [
                    {
                        "id": a["id"],
                        "title": a["title"],
                        "comments": {
                            "nodes": [
                                {
                                    "id": c["id"],
                                    "text": c["text"],
                                    "article": article(c["article_id"]),
                                    "author": author(c["author_id"]),
                                }
                                for c in comments.get(a["id"], ())
                            ]
                        },
                    }
                    for a in articles
                ]
            }
        }
    )


async def q5(db: Floor) -> bytes:
    pk = _user_pk("VXNlcjo3")  # the query's literal ID: User:7
    found = await db.run(0, [pk]) if pk is not None else []
    if pk is None or not found:
        return _response({"user": None})
    posts = _pages(await db.run(1, [pk], 101), "user_id", 100).get(pk, [])
    return _response(
        {
            "user": {
                "username": found[0]["username"],
                "posts": {"nodes": [{"title": p["title"]} for p in posts]},
            }
        }
    )


async def q6(db: Floor) -> bytes:
    users = (await db.run(0, 51))[:50]
    ids = [u["id"] for u in users]
    counts: dict[int, int] = {}
    posts: dict[int, list[Row]] = {}
    if ids:
        counts = {row["key"]: row["n"] for row in await db.run(1, ids)}
        posts = _pages(await db.run(2, ids, 4), "user_id", 3)
    return _response(
        {
            "users": {
                "nodes": [
                    {
                        "username": u["username"],
                        "posts": {
                            "totalCount": counts.get(u["id"], 0),
                            "nodes": [
                                {"title": p["title"], "createdAt": _datetime(p["created_at"])}
                                for p in posts.get(u["id"], ())
                            ],
                        },
                    }
                    for u in users
                ]
            }
        }
    )


async def q7(db: Floor) -> bytes:
    articles = (await db.run(0, 21))[:20]
    ids = [a["id"] for a in articles]
    comments = _pages(await db.run(1, ids, 11), "article_id", 10) if ids else {}
    authors = await _by_id(db, 2, _keys(c["author_id"] for p in comments.values() for c in p))
    posts = _pages(await db.run(3, list(authors), 6), "user_id", 5) if authors else {}

    def author(pk: int | None) -> dict[str, Any] | None:
        row = None if pk is None else authors.get(pk)
        if row is None:
            return None
        titles = [{"title": p["title"]} for p in posts.get(row["id"], ())]
        return {"username": row["username"], "posts": {"nodes": titles}}

    return _response(
        {
            "articles": {
                "nodes": [
                    {
                        "title": a["title"],
                        "comments": {
                            "nodes": [
                                {"text": c["text"], "author": author(c["author_id"])}
                                for c in comments.get(a["id"], ())
                            ]
                        },
                    }
                    for a in articles
                ]
            }
        }
    )


FLOORS: dict[str, Callable[[Floor], Awaitable[bytes]]] = {
    "q1": q1,
    "q2": q2,
    "q3": q3,
    "q4": q4,
    "q5": q5,
    "q6": q6,
    "q7": q7,
}
assert FLOORS.keys() == QUERIES.keys()


# ---------------------------------------------------------------------------- check and measure


def _comparable(params: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(sorted(p) if isinstance(p, list) else p for p in params)


def _statements_differ(inkgraph: list[Statement], floor: list[tuple[int, tuple[Any, ...]]]) -> str:
    expected = [(n, _comparable(params)) for n, (_sql, params) in enumerate(inkgraph)]
    got = [(n, _comparable(params)) for n, params in floor]
    if expected == got:
        return ""
    sql = "\n".join(
        f"  {n}. {' '.join(text.split())[:300]}" for n, (text, _p) in enumerate(inkgraph)
    )
    return f"inkgraph ran (statement, parameters)\n  {expected}\nthe floor ran\n  {got}\n{sql}"


async def verify(
    engine: AsyncEngine, client: httpx.AsyncClient, connection: Any, query: str
) -> Request:
    """The floor's request for `query`, once it is checked against inkgraph's (the app behind
    `client`, over `engine`): the same statements and parameters, the same response bytes.
    Raises FloorMismatch otherwise. `connection` is the floor's asyncpg connection."""
    body = orjson.dumps({"query": QUERIES[query]})
    await send(client, body)  # the first request may run the dialect's own set-up queries
    with captured(engine) as statements:
        expected = await send(client, body)
    if not statements:
        raise FloorMismatch(f"{query}: inkgraph ran no statement")
    prepared = [await connection.prepare(sql) for sql, _params in statements]
    recording = RecordingFloor(prepared)
    answer = await FLOORS[query](recording)
    differ = _statements_differ(statements, recording.calls)
    if differ:
        raise FloorMismatch(f"{query}: the floor's statements are not inkgraph's:\n{differ}")
    if answer != expected:
        at = next((i for i, (a, b) in enumerate(zip(answer, expected, strict=False)) if a != b), 0)
        raise FloorMismatch(
            f"{query}: the floor's response differs from inkgraph's at byte {at}:\n"
            f"  inkgraph {expected[max(0, at - 80) : at + 80]!r}\n"
            f"  floor    {answer[max(0, at - 80) : at + 80]!r}"
        )
    return functools.partial(FLOORS[query], Floor(prepared))


def asyncpg_dsn(engine: AsyncEngine) -> str:
    """The engine's database as a plain libpq URL, for asyncpg.connect."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


async def amain(args: argparse.Namespace) -> None:
    async with seeded_engine("postgresql") as engine:
        connection = await asyncpg.connect(asyncpg_dsn(engine))
        client = make_client(engine, Settings(graphql_compiled_plan=True))
        try:
            requests: dict[str, dict[str, Request]] = {}
            for query in args.queries:
                by_hand = await verify(engine, client, connection, query)
                body = orjson.dumps({"query": QUERIES[query]})
                requests[query] = {"inkgraph": request(client, body), "floor": by_hand}
            medians = await interleaved_medians(requests, args.n, args.repeat)
        finally:
            await client.aclose()
            await connection.close()
    print(f"CPU ms/request, in-process, postgresql, median of {args.repeat} x {args.n}")
    print("(floor: inkgraph's SQL through raw asyncpg, shaped by hand, orjson; same bytes)")
    print(f"{'query':6} {'inkgraph':>9} {'floor':>7} {'inkgraph/floor':>15}")
    for query in args.queries:
        ours, floor = medians[(query, "inkgraph")], medians[(query, "floor")]
        print(f"{query:6} {ours:9.2f} {floor:7.2f} {ours / floor:15.1f}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    assert __doc__ is not None
    parser = argparse.ArgumentParser(
        prog="python -m bench.floor", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--queries", default=",".join(QUERIES), help="e.g. q1,q5 (default all)")
    parser.add_argument("-n", type=int, default=50, help="requests per sample (default 50)")
    parser.add_argument("--repeat", type=int, default=3, help="samples per side (default 3)")
    args = parser.parse_args(argv)
    args.queries = selected_queries(parser, args.queries)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    try:
        asyncio.run(amain(parse_args(argv)))
    except FloorMismatch as mismatch:
        print(f"bench.floor: {mismatch}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
