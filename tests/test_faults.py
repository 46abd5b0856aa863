"""Database faults, as a client and an operator see them (API.md "Database faults").

The shared PostgreSQL and MariaDB servers stay up: each test puts a loopback TCP proxy
(tests/support/tcpproxy.py) between the app and the server and makes it refuse, reset or
black-hole connections, or cut one at its COMMIT. The proxy also shows what went over the
wire, which proves that a read sends its SELECTs and nothing else.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, literal, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from loaders import Database, DatabaseUnavailable, StatementTimeout
from server.app import create_app
from server.events import EventLog
from server.health import DatabaseHealth
from server.settings import Settings
from server.store.engine import make_engine, transaction
from server.store.writes import POSTS, issue_token
from tests.support import dataset
from tests.support.backends import fresh_database
from tests.support.sqlcount import count_statements
from tests.support.tcpproxy import TCPProxy, mysql_commands, pg_statements
from tests.test_cli import INKGRAPH, environment, free_port

QUERY = "query Users { users(first: 3) { nodes { username posts(first: 2) { nodes { title } } } } }"
CREATE_POST = "mutation Write($t: String!) { createPost(input: {title: $t}) { post { title } } }"
CONNECT_TIMEOUT = 1.0
# The faults are injected into each test's own engine; the plan's shadow would ask a healthy one.
pytestmark = pytest.mark.no_shadow
# Words that would mean internals leaked into an answer.
LEAKS = ("Traceback", "asyncpg", "asyncmy", "sqlalchemy", "OperationalError", "SELECT", "Errno")


@pytest_asyncio.fixture(scope="module")
async def database(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AsyncEngine]:
    """This module's own database (its writes must not disturb the shared data set)."""
    async with fresh_database(backend, tmp_path_factory.mktemp(f"faults-{backend}")) as engine:
        await dataset.load(engine)
        yield engine


@pytest_asyncio.fixture
async def token(database: AsyncEngine) -> str:
    async with transaction(database) as connection:
        return await issue_token(connection, dataset.USERS[0].id, timedelta(hours=1))


@dataclass
class Rig:
    """The app on an engine that reaches the database through `proxy` (None on SQLite)."""

    engine: AsyncEngine
    proxy: TCPProxy | None
    http: httpx.AsyncClient
    records: list[logging.LogRecord]

    async def post(self, query: str, token: str | None = None, **variables: Any) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        assert response.status_code == 200, response.text
        for word in LEAKS:
            assert word not in response.text, response.text
        body: dict[str, Any] = response.json()
        return body

    async def codes(self, query: str, token: str | None = None, **variables: Any) -> set[str]:
        body = await self.post(query, token, **variables)
        assert body.get("errors"), body
        return {error["extensions"]["code"] for error in body["errors"]}

    def lines(self, event: str) -> list[str]:
        return [r.getMessage() for r in self.records if r.getMessage().startswith(event + " ")]

    def wire(self) -> list[list[str]]:
        """What each proxied connection that sent anything sent, as statements."""
        assert self.proxy is not None
        read = pg_statements if self.engine.dialect.name == "postgresql" else mysql_commands
        return [read(bytes(sent)) for sent in self.proxy.sent if sent]


class _Collect(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def make_rig(database: AsyncEngine, **settings: Any) -> tuple[Rig, list[Any]]:
    proxy = None
    url = database.url
    if url.get_backend_name() != "sqlite":
        assert url.host is not None
        assert url.port is not None
        proxy = TCPProxy(url.host, url.port)
        await proxy.start()
        url = url.set(host="127.0.0.1", port=proxy.port)
    options: dict[str, Any] = {
        "database_url": url.render_as_string(hide_password=False),
        "db_connect_timeout": CONNECT_TIMEOUT,
        "db_pool_timeout": 1.0,
        "db_pool_size": 2,
        "db_max_overflow": 0,
        **settings,
    }
    engine = make_engine(Settings(**options))
    records: list[logging.LogRecord] = []
    handler = _Collect(records)
    for name in ("inkgraph", "uvicorn.error"):
        logging.getLogger(name).addHandler(handler)
    health = DatabaseHealth(log=EventLog(target=logging.getLogger("inkgraph.events")))
    app = create_app(Settings(), engine=engine, health=health)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://inkgraph")
    return Rig(engine, proxy, http, records), [handler]


@pytest_asyncio.fixture
async def rig(database: AsyncEngine) -> AsyncIterator[Rig]:
    made, handlers = await make_rig(database)
    previous = logging.getLogger("inkgraph").level
    logging.getLogger("inkgraph").setLevel(logging.INFO)
    try:
        yield made
    finally:
        logging.getLogger("inkgraph").setLevel(previous)
        for handler in handlers:
            for name in ("inkgraph", "uvicorn.error"):
                logging.getLogger(name).removeHandler(handler)
        await made.http.aclose()
        await made.engine.dispose()
        if made.proxy is not None:
            await made.proxy.close()


def proxied(rig: Rig) -> TCPProxy:
    if rig.proxy is None:
        pytest.skip("SQLite has no connection to break")
    return rig.proxy


def commit_sent(rig: Rig) -> bytes:
    """COMMIT as the client sends it: in a PostgreSQL Parse message, or a MariaDB COM_QUERY
    (so that, say, `SET AUTOCOMMIT = 1` does not match)."""
    return b"\0COMMIT\0" if rig.engine.dialect.name == "postgresql" else b"\x03COMMIT"


def commit_answer(rig: Rig) -> bytes:
    """What the server's answer to COMMIT contains (PostgreSQL: its CommandComplete tag;
    MariaDB answers every statement with an OK packet and no text)."""
    return b"COMMIT\0" if rig.engine.dialect.name == "postgresql" else b""


async def titles(database: AsyncEngine) -> set[str]:
    async with database.connect() as connection:
        return set((await connection.execute(select(POSTS.c.title))).scalars())


def assert_no_tracebacks(rig: Rig) -> None:
    noisy = [r.getMessage() for r in rig.records if r.exc_info and r.levelno >= logging.INFO]
    assert noisy == [], noisy


# ---------------------------------------------------------------------------- outages


async def test_refused_connections_answer_service_unavailable_and_log_one_line(rig: Rig) -> None:
    proxy = proxied(rig)
    assert "errors" not in await rig.post(QUERY)
    proxy.refuse()
    started = time.monotonic()
    for _ in range(20):
        assert await rig.codes(QUERY) == {"SERVICE_UNAVAILABLE"}
    assert time.monotonic() - started < 5  # refused: no waiting at all
    assert (await rig.http.get("/readyz")).status_code == 503
    await proxy.restore()
    assert "errors" not in await rig.post(QUERY)
    assert (await rig.http.get("/readyz")).status_code == 200
    [down] = rig.lines("database unreachable")
    for field in ("operation=Users", "client=127.0.0.1", "request=", "reason="):
        assert field in down, down
    [up] = rig.lines("database reachable again")
    assert "failed=20" in up
    levels = {r.getMessage(): r.levelno for r in rig.records}
    assert (levels[down], levels[up]) == (logging.ERROR, logging.INFO)
    assert_no_tracebacks(rig)


async def test_a_black_holed_database_is_answered_within_the_connect_timeout(rig: Rig) -> None:
    proxy = proxied(rig)
    proxy.blackhole()
    proxy.drop()  # pooled connections are gone too; new ones get no answer at all
    started = time.monotonic()
    assert await rig.codes(QUERY) == {"SERVICE_UNAVAILABLE"}
    assert time.monotonic() - started < CONNECT_TIMEOUT + 1.5
    started = time.monotonic()
    assert (await rig.http.get("/readyz")).status_code == 503
    assert time.monotonic() - started < 3
    await proxy.restore()
    assert "errors" not in await rig.post(QUERY)
    assert_no_tracebacks(rig)


async def test_a_connection_lost_mid_statement_is_service_unavailable(rig: Rig) -> None:
    proxy = proxied(rig)
    assert "errors" not in await rig.post(QUERY)  # a pooled connection to break
    proxy.blackhole()  # the next statement goes out and no answer comes back …
    pending = asyncio.create_task(rig.post(QUERY))
    await asyncio.sleep(0.3)
    proxy.drop()  # … until the connection is reset under it
    body = await pending
    assert {e["extensions"]["code"] for e in body["errors"]} == {"SERVICE_UNAVAILABLE"}
    await proxy.restore()
    assert "errors" not in await rig.post(QUERY)
    assert_no_tracebacks(rig)


async def test_a_connection_that_died_idle_in_the_pool_is_replaced_without_an_error(
    rig: Rig,
) -> None:
    proxy = proxied(rig)
    assert "errors" not in await rig.post(QUERY)
    proxy.drop()  # the server restarted while nothing was running
    await asyncio.sleep(0.1)
    assert "errors" not in await rig.post(QUERY)
    assert rig.lines("database unreachable") == []


async def test_pool_timeout_is_service_unavailable(database: AsyncEngine) -> None:
    made, handlers = await make_rig(database, db_pool_size=1, db_pool_timeout=0.5)
    holder = Database(made.engine)
    try:
        await holder.fetch(select(literal(1)))  # the pool's only connection, held
        started = time.monotonic()
        assert await made.codes(QUERY) == {"SERVICE_UNAVAILABLE"}
        assert time.monotonic() - started < 2
        await holder.close()
        assert "errors" not in await made.post(QUERY)
    finally:
        await holder.close()
        for handler in handlers:
            for name in ("inkgraph", "uvicorn.error"):
                logging.getLogger(name).removeHandler(handler)
        await made.http.aclose()
        await made.engine.dispose()
        if made.proxy is not None:
            await made.proxy.close()


# ---------------------------------------------------------------------------- writes


async def test_a_write_during_an_outage_is_refused_and_not_committed(
    rig: Rig, database: AsyncEngine, token: str
) -> None:
    proxy = proxied(rig)
    proxy.refuse()
    assert await rig.codes(CREATE_POST, token, t="during outage") == {"SERVICE_UNAVAILABLE"}
    await proxy.restore()
    assert "during outage" not in await titles(database)


async def test_a_write_cut_before_its_commit_is_not_committed(
    rig: Rig, database: AsyncEngine, token: str
) -> None:
    proxy = proxied(rig)
    proxy.cut_at(commit_sent(rig), "before")
    body = await rig.post(CREATE_POST, token, t="cut before commit")
    [error] = body["errors"]
    assert error["extensions"] == {"code": "SERVICE_UNAVAILABLE", "outcomeUnknown": True}
    assert body["data"] == {"createPost": None}
    assert proxy.cuts == 1
    assert "cut before commit" not in await titles(database)


async def test_a_write_whose_commit_answer_is_lost_is_reported_as_unknown(
    rig: Rig, database: AsyncEngine, token: str
) -> None:
    proxy = proxied(rig)
    proxy.cut_at(
        commit_sent(rig), "reply", commit_answer(rig)
    )  # committed; the answer never arrives
    body = await rig.post(CREATE_POST, token, t="commit answer lost")
    [error] = body["errors"]
    assert error["extensions"] == {"code": "SERVICE_UNAVAILABLE", "outcomeUnknown": True}
    assert proxy.cuts == 1
    assert "commit answer lost" in await titles(database)  # hence "unknown", never plain error


async def test_a_write_committed_just_before_the_connection_broke_is_answered_success(
    rig: Rig, database: AsyncEngine, token: str
) -> None:
    proxy = proxied(rig)
    proxy.cut_at(
        commit_sent(rig), "after_reply", commit_answer(rig)
    )  # answered, then the link breaks
    body = await rig.post(CREATE_POST, token, t="committed then cut")
    assert body == {"data": {"createPost": {"post": {"title": "committed then cut"}}}}
    assert proxy.cuts == 1
    assert "committed then cut" in await titles(database)


async def test_every_write_answered_as_saved_is_saved_under_resets(
    rig: Rig, database: AsyncEngine, token: str
) -> None:
    proxy = proxied(rig)

    async def write(n: int) -> tuple[str, dict[str, Any]]:
        title = f"load {n}"
        return title, await rig.post(CREATE_POST, token, t=title)

    async def chaos() -> None:
        for _ in range(5):
            await asyncio.sleep(0.05)
            proxy.drop()

    results, _ = await asyncio.gather(asyncio.gather(*(write(n) for n in range(40))), chaos())
    saved = await titles(database)
    for title, body in results:
        if "errors" not in body:
            assert title in saved, title
        else:
            codes = {e["extensions"]["code"] for e in body["errors"]}
            assert codes == {"SERVICE_UNAVAILABLE"}, body
            if title in saved:  # committed although answered with an error: only "unknown"
                assert all(e["extensions"].get("outcomeUnknown") for e in body["errors"]), body
    assert_no_tracebacks(rig)


# ---------------------------------------------------------------------------- on the wire


async def test_a_read_sends_only_its_selects(rig: Rig) -> None:
    with count_statements(rig.engine) as counted:
        assert "errors" not in await rig.post(QUERY)
    assert counted, "the query ran no SQL"
    assert all(s.upper().startswith("SELECT") for s in counted), counted.listing()
    if rig.proxy is None:
        return  # SQLite: the counter sees everything there is
    [opened] = rig.wire()  # connecting: the dialect's own start-up queries, once
    with count_statements(rig.engine) as counted:
        assert "errors" not in await rig.post(QUERY)
    [sent] = rig.wire()  # the same pooled connection, no new one
    sent = sent[len(opened) :]
    assert len(sent) == len(counted), sent
    assert all(s.upper().startswith("SELECT") for s in sent), sent


async def test_a_write_is_one_begin_and_one_commit(rig: Rig, token: str) -> None:
    proxied(rig)
    assert "errors" not in await rig.post(QUERY)  # the pool's connection is open
    [opened] = rig.wire()
    body = await rig.post(CREATE_POST, token, t="wire")
    assert "errors" not in body
    [sent] = rig.wire()
    upper = [s.upper() for s in sent[len(opened) :]]
    assert upper.count("BEGIN") == 1, upper
    assert upper.count("COMMIT") == 1, upper
    assert "ROLLBACK" not in upper, upper
    assert "<PING>" not in upper, upper
    begin, commit = upper.index("BEGIN"), upper.index("COMMIT")
    assert any(s.startswith("INSERT") for s in upper[begin:commit]), upper
    assert all(s.startswith("SELECT") for s in upper[:begin] + upper[commit + 1 :]), upper


# ---------------------------------------------------------------------------- statement timeout


def _slow_statement(dialect: str) -> Any:
    if dialect == "postgresql":
        return select(func.pg_sleep(3))
    if dialect in {"mysql", "mariadb"}:
        return text("SELECT SLEEP(3)")  # BENCHMARK() would just return 0 when interrupted
    return text(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000) "
        "SELECT count(*) FROM n"
    )


async def test_statement_timeout_cancels_the_statement(database: AsyncEngine) -> None:
    url = database.url.render_as_string(hide_password=False)
    engine = make_engine(Settings(database_url=url, db_statement_timeout=0.5))
    db = Database(engine)
    try:
        started = time.monotonic()
        with pytest.raises(StatementTimeout):
            await db.fetch(_slow_statement(engine.dialect.name))
        assert time.monotonic() - started < 2.5
        assert db.timed_out
        assert db.outage is None
        assert (await db.fetch(select(literal(7)))) == [(7,)]  # the connection still works
    finally:
        await db.close()
        await engine.dispose()


async def test_classify_maps_faults_to_their_codes() -> None:
    from graphql import GraphQLError

    from server.api.errors import classify

    unavailable = classify(GraphQLError("x", original_error=DatabaseUnavailable("gone")))
    timeout = classify(GraphQLError("x", original_error=StatementTimeout("slow")))
    assert unavailable.extensions == {"code": "SERVICE_UNAVAILABLE"}
    assert timeout.extensions == {"code": "TIMEOUT"}
    assert "gone" not in unavailable.message
    assert "slow" not in timeout.message


# ---------------------------------------------------------------------------- start with it down


async def test_serve_starts_with_the_database_down_and_recovers(
    database: AsyncEngine, tmp_path: Path
) -> None:
    if database.url.get_backend_name() == "sqlite":
        pytest.skip("SQLite cannot be down")
    url = database.url
    assert url.host is not None
    assert url.port is not None
    proxy = TCPProxy(url.host, url.port)
    await proxy.start()
    proxy.refuse()
    port = free_port()
    database_url = url.set(host="127.0.0.1", port=proxy.port)
    env = environment(
        DATABASE_URL=database_url.render_as_string(hide_password=False),
        PORT=str(port),
        DB_CONNECT_TIMEOUT="1",
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *INKGRAPH, "serve", cwd=tmp_path, env=env, stdout=out, stderr=out
        )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            deadline = time.monotonic() + 120  # start-up alone can take a minute on a busy CI box
            while True:
                assert process.returncode is None, log.read_text()
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, log.read_text()
                await asyncio.sleep(0.1)
            assert (await client.get("/readyz")).status_code == 503
            started = time.monotonic()
            response = await client.post("/graphql", json={"query": QUERY})
            assert time.monotonic() - started < 2
            codes = {e["extensions"]["code"] for e in response.json()["errors"]}
            assert codes == {"SERVICE_UNAVAILABLE"}
            await proxy.restore()
            started = time.monotonic()
            while (await client.get("/readyz")).status_code != 200:
                assert time.monotonic() - started < 5, log.read_text()
                await asyncio.sleep(0.1)
            response = await client.post("/graphql", json={"query": QUERY})
            assert "errors" not in response.json(), response.text
    finally:
        process.terminate()
        await process.wait()
        await proxy.close()
    text_log = log.read_text()
    assert "Traceback" not in text_log, text_log
    assert text_log.count("database unreachable") == 1, text_log
    assert "database reachable again" in text_log, text_log
