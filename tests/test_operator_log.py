"""What an operator sees (API.md "What an operator sees"): one line per event on the
`inkgraph.events` logger, at the contract's level, with `client=`, `operation=`, a request id
and the event's fields, and repeats of one event for one client folded into one line per 10 s
with a count.

Rows covered elsewhere: login and sign-up throttled (tests/api/test_throttle.py), the database
going down and up as a client meets it through a proxy (tests/test_faults.py). This module
asserts the other rows, and the levels and transitions of the database's lines.

Each test gets its own `EventLog` with a fake clock in place of the process's, so that lines
other tests caused within the last 10 s do not fold this test's lines away.
"""

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from server import bodylimit, httplimits
from server.api import errors, ids, limits
from server.api.context import Context
from server.app import create_app
from server.events import EventLog, Who
from server.health import DatabaseHealth
from server.httplimits import uvicorn_options
from server.settings import Settings
from tests.support.live_server import serving
from tests.test_cancellation import slow_statements

EVENTS = "inkgraph.events"
# A request id as server/events.py makes them.
REQUEST = r"request=[0-9a-f]{12}"
# The contract's own example: 100 × 100 × 100 users and posts, over the cost limit.
ABUSE = """query Abuse { users(first: 100) { nodes { posts(first: 100) { nodes { user {
  posts(first: 100) { nodes { user { posts(first: 100) { nodes { title } } } } } } } } } } }"""
NODES = "query Many($ids: [ID!]!) { nodes(ids: $ids) { id } }"
# Compare mode executes a query a second time, with the same request, and so logs it twice.
pytestmark = pytest.mark.no_shadow


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Lines:
    """The event lines written while a test ran, and the clock their folding reads."""

    caplog: pytest.LogCaptureFixture
    clock: FakeClock

    def __call__(self, event: str) -> list[tuple[int, str]]:
        return [
            (record.levelno, record.getMessage())
            for record in self.caplog.records
            if record.name == EVENTS and record.getMessage().startswith(event + " ")
        ]


@pytest.fixture
def lines(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lines]:
    clock = FakeClock()
    log = EventLog(clock=clock, target=logging.getLogger(EVENTS))
    for module in (limits, bodylimit, httplimits):
        monkeypatch.setattr(module, "events", log)
    with caplog.at_level(logging.INFO, logger=EVENTS):
        yield Lines(caplog, clock)


def app_client(engine: AsyncEngine, **settings: Any) -> httpx.AsyncClient:
    app = create_app(Settings(**settings), engine=engine)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://inkgraph")


# ---------------------------------------------------------------------------- query limits


async def test_a_refused_query_is_one_warning_and_its_repeats_fold_with_a_count(
    engine: AsyncEngine, lines: Lines
) -> None:
    # Nodes off, so that the contract's example line is what the cost limit writes.
    async with app_client(engine, graphql_max_nodes=0) as http:
        for _ in range(6):
            body = (await http.post("/graphql", json={"query": ABUSE})).json()
            assert body["errors"][0]["extensions"]["limit"] == "cost", body
        [(level, line)] = lines("query refused")
        assert level == logging.WARNING
        assert re.fullmatch(
            rf"query refused client=127\.0\.0\.1 operation=Abuse {REQUEST} "
            r"limit=cost actual=103030201 max=50000",
            line,
        ), line
        # The five repeats are one line, written by the first refusal after the window.
        lines.clock.now += 10.5
        await http.post("/graphql", json={"query": ABUSE})
        assert len(lines("query refused")) == 2
        assert lines("query refused")[1][1].endswith(" max=50000 repeated=5")


async def test_a_refused_query_names_the_client_behind_a_trusted_proxy(
    engine: AsyncEngine, lines: Lines
) -> None:
    async with app_client(engine, trusted_proxies="127.0.0.1", graphql_max_depth=3) as http:
        for client in ("203.0.113.7", "203.0.113.8"):
            headers = {"X-Forwarded-For": client}
            await http.post("/graphql", json={"query": ABUSE}, headers=headers)
    # Two clients, two lines: one client's refusals do not hide another's.
    assert [line.split(" ")[2] for _, line in lines("query refused")] == [
        "client=203.0.113.7",
        "client=203.0.113.8",
    ]
    assert all(line.endswith("limit=depth actual=11 max=3") for _, line in lines("query refused"))


async def test_an_argument_cap_is_one_info_line(engine: AsyncEngine, lines: Lines) -> None:
    many = [ids.encode("Post", pk) for pk in range(1, 501)]
    async with app_client(engine) as http:
        body = await http.post("/graphql", json={"query": NODES, "variables": {"ids": many}})
    assert body.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    [(level, line)] = lines("argument capped")
    assert level == logging.INFO
    assert re.fullmatch(
        rf"argument capped client=127\.0\.0\.1 operation=Many {REQUEST} "
        r"argument=nodes\.ids actual=500 max=100",
        line,
    ), line


# ---------------------------------------------------------------------------- execution


async def test_a_timed_out_request_is_one_warning_with_its_elapsed_time(
    backend: str, engine: AsyncEngine, lines: Lines
) -> None:
    query = "query Slow { posts(first: 1) { nodes { title } } }"
    async with app_client(engine, graphql_execution_timeout=0.5) as http:
        with slow_statements(engine, backend):
            body = (await http.post("/graphql", json={"query": query})).json()
    assert body["errors"][0]["extensions"]["code"] == "TIMEOUT"
    [(level, line)] = lines("request timed out")
    assert level == logging.WARNING
    match = re.fullmatch(
        rf"request timed out client=127\.0\.0\.1 operation=Slow {REQUEST} "
        r"elapsed=(\d+\.\d)s timeout=0\.5s",
        line,
    )
    assert match is not None, line
    assert 0.5 <= float(match.group(1)) < 10.0, line  # the slow statement takes 30 s


# ---------------------------------------------------------------------------- HTTP


async def test_a_body_too_large_is_one_warning(engine: AsyncEngine, lines: Lines) -> None:
    async with app_client(engine, http_max_body_bytes=1000) as http:
        response = await http.post(
            "/graphql", content=b" " * 5000, headers={"content-type": "application/json"}
        )
    assert response.status_code == 413
    [(level, line)] = lines("body too large")
    assert level == logging.WARNING
    assert re.fullmatch(
        rf"body too large client=127\.0\.0\.1 operation=- {REQUEST} "
        r"status=413 length=5000 max=1000",
        line,
    ), line


HEAD_TIMEOUT = 0.5


@pytest_asyncio.fixture
async def port(tmp_path: Path) -> AsyncIterator[int]:
    """A real uvicorn (in this process) with the HTTP limits of `inkgraph serve`, and short
    deadlines. What is tested here never reaches the database."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'unused.db'}",
        http_header_timeout=HEAD_TIMEOUT,
        http_body_timeout=HEAD_TIMEOUT,
    )
    async with serving(create_app(settings), **uvicorn_options(settings)) as port:
        yield port


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """What the server sent before it closed the connection (at most 5 s of waiting)."""
    with contextlib.suppress(ConnectionResetError):
        return await asyncio.wait_for(reader.read(), timeout=5)
    return b""


async def test_a_header_block_too_large_is_one_warning(port: int, lines: Lines) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 20_000 + b"\r\n\r\n")
    await writer.drain()
    answer = await until_closed(reader)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 431 ")
    [(level, line)] = lines("header too large")
    assert level == logging.WARNING
    match = re.fullmatch(
        rf"header too large client=127\.0\.0\.1 operation=- {REQUEST} "
        r"status=431 length=(\d+) max=16384",
        line,
    )
    assert match is not None, line
    assert int(match.group(1)) > 16384


@pytest.mark.parametrize(
    ("sent", "phase"),
    [
        (b"GET /healthz HTTP/1.1\r\nhost: x\r\n", "headers"),
        (
            b"POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: 100\r\n\r\n" + json.dumps({"query": "{"}).encode(),
            "body",
        ),
    ],
    ids=["headers", "body"],
)
async def test_a_slow_client_cut_off_is_one_info_line(
    port: int, lines: Lines, sent: bytes, phase: str
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(sent)  # and never the rest
    await writer.drain()
    assert await until_closed(reader) == b""
    writer.close()
    [(level, line)] = lines("slow client cut off")
    assert level == logging.INFO
    match = re.fullmatch(
        rf"slow client cut off client=127\.0\.0\.1 operation=- {REQUEST} "
        rf"phase={phase} after=(\d+\.\d)s",
        line,
    )
    assert match is not None, line
    assert HEAD_TIMEOUT <= float(match.group(1)) < HEAD_TIMEOUT + 2


# ---------------------------------------------------------------------------- database


@dataclass
class SeenDatabase:
    """What `DatabaseHealth.observe` reads of a request's `loaders.Database`."""

    outage: Any = None
    reached: bool = False
    timed_out: bool = False


class Outage:
    reason = "the connection broke"


def test_database_transitions_are_one_line_each_with_the_failed_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    target = logging.getLogger("test.operator.health")
    health = DatabaseHealth(log=EventLog(clock=clock, target=target), clock=clock)
    down, up = SeenDatabase(outage=Outage()), SeenDatabase(reached=True)
    who = Who(client="192.0.2.1", operation="Feed", request="abc")
    with caplog.at_level(logging.INFO, logger=target.name):
        for _ in range(40):
            health.observe(down, who)  # type: ignore[arg-type] # duck-typed Database
        clock.now += 2.5
        health.observe(up, who)  # type: ignore[arg-type]
        health.observe(up, who)  # type: ignore[arg-type] # no transition: no line
        # It goes down and comes back again within the 10 s that fold other events: each
        # transition still gets its line, or the log would say "up" while it is down.
        clock.now += 1
        health.observe(down, who)  # type: ignore[arg-type]
        clock.now += 1
        health.observe(up, who)  # type: ignore[arg-type]
    records = [r for r in caplog.records if r.name == target.name]
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (
            logging.ERROR,
            "database unreachable client=192.0.2.1 operation=Feed request=abc "
            "reason=the connection broke",
        ),
        (
            logging.INFO,
            "database reachable again client=192.0.2.1 operation=Feed request=abc "
            "failed=40 after=2.5s",
        ),
        (
            logging.ERROR,
            "database unreachable client=192.0.2.1 operation=Feed request=abc "
            "reason=the connection broke",
        ),
        (
            logging.INFO,
            "database reachable again client=192.0.2.1 operation=Feed request=abc "
            "failed=1 after=1.0s",
        ),
    ]


# ---------------------------------------------------------------------------- unexpected errors


async def test_an_unexpected_error_is_one_error_line_with_its_traceback_and_never_answered(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def boom(_self: Context) -> None:
        raise RuntimeError("disk on fire: SELECT secret FROM vault")

    monkeypatch.setattr(Context, "viewer", boom)
    clock = FakeClock()
    monkeypatch.setattr(errors, "_unexpected", EventLog(clock=clock, target=errors.logger))
    async with app_client(engine) as http:
        with caplog.at_level(logging.INFO, logger=errors.logger.name):
            for _ in range(3):
                response = await http.post("/graphql", json={"query": "query Me { viewer { id } }"})
                assert "disk on fire" not in response.text
                assert "RuntimeError" not in response.text
                assert response.json()["errors"][0]["extensions"] == {
                    "code": "INTERNAL_SERVER_ERROR"
                }
            clock.now += 10.5
            await http.post("/graphql", json={"query": "query Me { viewer { id } }"})
    records = [r for r in caplog.records if r.name == errors.logger.name]
    assert [r.levelno for r in records] == [logging.ERROR, logging.ERROR]
    assert re.fullmatch(
        rf"unexpected error client=127\.0\.0\.1 operation=Me {REQUEST} path=viewer",
        records[0].getMessage(),
    ), records[0].getMessage()
    assert records[1].getMessage().endswith(" path=viewer repeated=2")
    # The traceback goes with the line, to the log only.
    assert records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], RuntimeError)
