"""Execution timeout and client disconnects (API.md "Execution"): the request's statement in
flight is cancelled in the database itself, on every backend, and the app serves on.

A test-only fault makes the app's page statement slow: an engine hook swaps the statement for
one that runs for about 30 s (PostgreSQL `pg_sleep`, MariaDB `SLEEP`, a long recursive CTE on
SQLite). Only statements that read `posts` are swapped, so the checks on the side are not.

Writes that time out (on a database of their own): rolled back when the deadline comes before
COMMIT, and answered `outcomeUnknown` when it comes after COMMIT was sent, since the write may
then be saved (API.md "Acknowledged means committed").
"""

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import event, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.app import create_app
from server.settings import Settings
from server.store import writes
from tests.api.test_mutations import CREATE_POST, Api, cheap_app
from tests.conftest import make_client
from tests.support.backends import fresh_database
from tests.support.gql import GraphQLClient
from tests.support.live_server import eventually, serving

QUERY = "{ posts(first: 1) { nodes { title } } }"
SLOW = {
    "sqlite": "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 400000000) "
    "SELECT count(*) FROM r",
    "postgresql": "SELECT pg_sleep(30)",
    "mariadb": "SELECT SLEEP(30)",
}
RUNNING = {
    "postgresql": "SELECT count(*) FROM pg_stat_activity "
    "WHERE state = 'active' AND query = 'SELECT pg_sleep(30)'",
    "mariadb": "SELECT count(*) FROM information_schema.processlist "
    "WHERE info = 'SELECT SLEEP(30)'",
}
_READS_POSTS = re.compile(r"\bposts\b", re.IGNORECASE)


@contextmanager
def slow_statements(
    engine: AsyncEngine, backend: str, pattern: re.Pattern[str] = _READS_POSTS
) -> Iterator[None]:
    """Statements that match `pattern` run the backend's slow statement instead."""

    def swap(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any
    ) -> tuple[str, Any]:
        if pattern.search(statement):
            return SLOW[backend], ()
        return statement, parameters

    event.listen(engine.sync_engine, "before_cursor_execute", swap, retval=True)
    try:
        yield
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", swap)


async def running(engine: AsyncEngine, backend: str) -> int:
    """How many of the slow statements the database is running now (SQLite: not observable
    from outside; the answer time proves it there)."""
    if backend == "sqlite":
        return 0
    async with engine.connect() as connection:
        return int((await connection.execute(text(RUNNING[backend]))).scalar_one())


async def statement_started(engine: AsyncEngine, backend: str, within: float = 10.0) -> bool:
    """Whether the request reached its slow statement within `within` seconds: it holds a
    connection, and the database runs the statement (polled, since a loaded CI machine can
    take longer than any fixed sleep to get there)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if engine.pool.checkedout() == 1 and (  # type: ignore[attr-defined]
            backend == "sqlite" or await running(engine, backend) == 1
        ):
            return True
        await asyncio.sleep(0.05)
    return False


async def settles_to_zero(engine: AsyncEngine, backend: str, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while True:
        if await running(engine, backend) == 0:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)


async def test_a_slow_request_answers_timeout_and_its_statement_is_cancelled(
    backend: str, engine: AsyncEngine
) -> None:
    async with make_client(engine, Settings(graphql_execution_timeout=0.5)) as http:
        with slow_statements(engine, backend):
            started = time.monotonic()
            response = await http.post("/graphql", json={"query": QUERY})
            elapsed = time.monotonic() - started
        assert response.status_code == 200
        assert response.json() == {
            "data": None,
            "errors": [
                {
                    "message": "The request took longer than 0.5 s and was cancelled.",
                    "extensions": {"code": "TIMEOUT"},
                }
            ],
        }
        # Answered at the limit; an uncancelled statement would hold the answer for 30 s
        # (the connection cannot be handed back while it runs).
        assert 0.5 <= elapsed < 10.0, elapsed
        assert await settles_to_zero(engine, backend)
        # The app serves on, and no connection is left checked out.
        again = await http.post("/graphql", json={"query": QUERY})
        assert "errors" not in again.json(), again.json()
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_fast_request_is_not_affected_by_the_timeout(engine: AsyncEngine) -> None:
    async with make_client(engine, Settings(graphql_execution_timeout=5)) as http:
        response = await http.post("/graphql", json={"query": QUERY})
    assert "errors" not in response.json()


def http_scope(body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"inkgraph"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("inkgraph", 80),
    }


async def test_a_client_that_disconnects_cancels_its_statement(
    backend: str, engine: AsyncEngine
) -> None:
    app = create_app(Settings(), engine=engine)  # the default 10 s timeout is far away
    body = json.dumps({"query": QUERY}).encode()
    gone = asyncio.Event()
    body_sent = False
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    with slow_statements(engine, backend):
        request = asyncio.create_task(app(http_scope(body), receive, send))
        assert await statement_started(engine, backend)
        assert not request.done()
        gone.set()
        started = time.monotonic()
        await asyncio.wait_for(request, timeout=5)
        elapsed = time.monotonic() - started
    assert elapsed < 1.0, elapsed  # "cancelled within a second"
    assert await settles_to_zero(engine, backend)
    assert sent == []  # nobody to answer
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    async with make_client(engine) as http:
        assert "errors" not in (await http.post("/graphql", json={"query": QUERY})).json()


async def test_zero_turns_the_timeout_off(engine: AsyncEngine) -> None:
    async with make_client(engine, Settings(graphql_execution_timeout=0)) as http:
        response = await http.post("/graphql", json={"query": QUERY})
    assert "errors" not in response.json()


async def test_a_real_client_hanging_up_cancels_its_statement(
    backend: str, engine: AsyncEngine
) -> None:
    """The same over a socket to uvicorn, which tells the app with `http.disconnect`."""
    async with serving(create_app(Settings(), engine=engine)) as port:
        body = json.dumps({"query": QUERY}).encode()
        head = (
            f"POST /graphql HTTP/1.1\r\nHost: inkgraph\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        with slow_statements(engine, backend):
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(head + body)
            await writer.drain()
            assert await statement_started(engine, backend)
            writer.close()
            await writer.wait_closed()
            # The connection can only come back once the statement has stopped.
            assert await eventually(lambda: engine.pool.checkedout() == 0, within=1.0)  # type: ignore[attr-defined]
        assert await settles_to_zero(engine, backend)


# ---------------------------------------------------------------------------- writes


@dataclass
class Writable:
    """This module's own database for writes (the shared data set must not change): `api`
    serves with the default timeout, for setting up and checking, and `timed` with the
    execution timeout at 0.5 s, for the one write each test times out. Setting up through
    `timed` would make a slow sign-up on a loaded CI machine look like the fault under test."""

    api: Api
    timed: Api


@pytest_asyncio.fixture(scope="module")
async def writable(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Writable]:
    folder = tmp_path_factory.mktemp(f"timeouts-{backend}")
    async with (
        fresh_database(backend, folder) as engine,
        cheap_app(engine) as http,
        cheap_app(engine, graphql_execution_timeout=WRITE_TIMEOUT) as timed_http,
    ):
        yield Writable(Api(engine, GraphQLClient(http)), Api(engine, GraphQLClient(timed_http)))


WRITE_TIMEOUT = 0.5
TIMED_OUT = {
    "message": "The request took longer than 0.5 s and was cancelled.",
    "extensions": {"code": "TIMEOUT"},
}
MAY_BE_SAVED = {
    "message": "The request took longer than 0.5 s and was cancelled. A change it made may "
    "have been saved: read it back before retrying.",
    "extensions": {"code": "TIMEOUT", "outcomeUnknown": True},
}
DELETE_USER = "mutation($id: ID!) { deleteUser(input: {id: $id}) { deletedId } }"
_DELETES_POSTS = re.compile(r"^\s*DELETE FROM posts\b", re.IGNORECASE)
_SELECTS_POSTS = re.compile(r"^\s*SELECT\b.*\bposts\b", re.IGNORECASE | re.DOTALL)


async def post_titles(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return set((await connection.execute(select(writes.POSTS.c.title))).scalars())


async def timed_out_write(
    writable: Writable, token: str, query: str, **variables: Any
) -> dict[str, Any]:
    """The answer to a write that ran past the timeout, which must come at the timeout."""
    started = time.monotonic()
    body = await writable.timed.as_user(token).execute(query, **variables)
    # Well under the 30 s the slow statement would take, with room for a loaded CI machine.
    assert WRITE_TIMEOUT <= time.monotonic() - started < 10.0
    return body


async def test_a_write_timed_out_midway_writes_nothing(writable: Writable, backend: str) -> None:
    api = writable.api
    token, user_id = await api.sign_up("slow_leaver")
    await api.as_user(token).data(CREATE_POST, t="still here")
    before = await api.counts()
    # deleteUser has deleted the user's tokens and cleared its comments' author when its
    # third statement, deleting the posts, is the slow one.
    with slow_statements(api.engine, backend, _DELETES_POSTS):
        body = await timed_out_write(writable, token, DELETE_USER, id=user_id)
    assert body == {"data": None, "errors": [TIMED_OUT]}
    assert await settles_to_zero(api.engine, backend)
    assert await api.counts() == before
    # The token the rolled-back delete had deleted still signs the user in.
    viewer = await api.as_user(token).data("{ viewer { username posts { totalCount } } }")
    assert viewer["viewer"] == {"username": "slow_leaver", "posts": {"totalCount": 1}}
    assert api.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_write_timed_out_after_its_commit_says_it_may_be_saved(
    writable: Writable, backend: str
) -> None:
    """COMMIT returned, then reading the new post back is slow: the post is saved, so the
    TIMEOUT must not claim that nothing was written."""
    api = writable.api
    token, _ = await api.sign_up("slow_reader")
    with slow_statements(api.engine, backend, _SELECTS_POSTS):
        body = await timed_out_write(writable, token, CREATE_POST, t="saved, answer lost")
    assert body == {"data": None, "errors": [MAY_BE_SAVED]}
    assert await settles_to_zero(api.engine, backend)
    assert "saved, answer lost" in await post_titles(api.engine)


async def test_a_write_timed_out_awaiting_its_commit_answer_says_it_may_be_saved(
    writable: Writable, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database committed, and its answer to COMMIT is what is slow (a loaded server, a
    slow network): the deadline comes while the app waits for it."""
    api = writable.api
    token, _ = await api.sign_up("slow_committer")
    original = AsyncConnection.exec_driver_sql

    async def slow_answer(self: AsyncConnection, statement: str, *args: Any, **kwargs: Any) -> Any:
        result = await original(self, statement, *args, **kwargs)
        if statement == "COMMIT":
            await asyncio.sleep(30)
        return result

    monkeypatch.setattr(AsyncConnection, "exec_driver_sql", slow_answer)
    body = await timed_out_write(writable, token, CREATE_POST, t="committed, answer slow")
    monkeypatch.undo()
    assert body == {"data": None, "errors": [MAY_BE_SAVED]}
    assert "committed, answer slow" in await post_titles(api.engine)
