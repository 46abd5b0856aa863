"""`make bench`: throughput, latency and SQL statements per request of the real server.

    .venv/bin/python -m bench.run [--backends sqlite,postgresql] [--duration 5] [--concurrency 16]

For each backend:

1. create a fresh database (SQLite: a temporary file; PostgreSQL: `inkgraph_bench_<random>`
   created through `BENCH_POSTGRES_URL`, default postgresql://postgres@127.0.0.1:5432/postgres,
   and dropped at the end), migrate it and bulk-insert a deterministic data set
   (2,000 users x 10 posts, 1,000 articles x 20 comments), then ANALYZE;
2. run every query once in-process (`httpx.ASGITransport`) to check the response and count the
   SQL statements of exactly one request (`before_cursor_execute` on the engine);
3. start the real server, `.venv/bin/inkgraph serve`, as one uvicorn process on a free loopback
   port, wait for /readyz, and drive each query with `--concurrency` keep-alive HTTP/1.1
   connections for `--warmup` then `--duration` seconds. Every response is checked (status 200,
   no `errors`, the expected shape); a failed check counts as an error, never as a request.

Prints one table per backend and writes the same as markdown to bench/results/latest.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import math
import os
import platform
import secrets
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import (
    AsyncIterator,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import Table, event, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from loaders import Order
from server.api import cursors, ids
from server.app import create_app
from server.settings import Settings, to_async_url
from server.store import models
from server.store.engine import make_engine
from server.store.migrate import upgrade
from server.store.writes import sync_id_sequences

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "latest.md"
INKGRAPH = ROOT / ".venv" / "bin" / "inkgraph"
DEFAULT_POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
HEADERS = {"content-type": "application/json", "accept": "application/json"}
# Other processes using more than this share of a core during a measurement make it noisy.
OTHER_CPU_WARNING = 0.25

# ---------------------------------------------------------------------------- data set

N_USERS = 2_000
POSTS_PER_USER = 10
N_ARTICLES = 1_000
COMMENTS_PER_ARTICLE = 20
N_POSTS = N_USERS * POSTS_PER_USER
N_COMMENTS = N_ARTICLES * COMMENTS_PER_ARTICLE
CHUNK = 5_000
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


USERS, POSTS = _table(models.User), _table(models.Post)
ARTICLES, COMMENTS = _table(models.Article), _table(models.Comment)


def users() -> Iterator[dict[str, Any]]:
    for n in range(1, N_USERS + 1):
        yield {"id": n, "username": f"user{n:04d}", "created_at": T0 + timedelta(minutes=n)}


def posts() -> Iterator[dict[str, Any]]:
    # Interleaved owners: a user's 10 posts are spread over the table, as in real life.
    for n in range(1, N_POSTS + 1):
        owner = (n - 1) % N_USERS + 1
        yield {
            "id": n,
            "title": f"Post {n} by user{owner:04d}",
            "user_id": owner,
            "created_at": T0 + timedelta(days=1, seconds=n),
        }


def articles() -> Iterator[dict[str, Any]]:
    for n in range(1, N_ARTICLES + 1):
        yield {"id": n, "title": f"Article {n}", "created_at": T0 + timedelta(days=2, minutes=n)}


def comments() -> Iterator[dict[str, Any]]:
    for n in range(1, N_COMMENTS + 1):
        article = (n - 1) % N_ARTICLES + 1
        author = None if n % 10 == 0 else (n * 7) % N_USERS + 1
        yield {
            "id": n,
            "text": f"Comment {n} on article {article}",
            "article_id": article,
            "author_id": author,
            "created_at": T0 + timedelta(days=3, seconds=n),
        }


def _chunks(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


async def seed(engine: AsyncEngine) -> None:
    """Bulk-insert the data set in chunks (one executemany per chunk), then ANALYZE."""
    async with engine.begin() as connection:
        for table, rows in (
            (USERS, users()),
            (POSTS, posts()),
            (ARTICLES, articles()),
            (COMMENTS, comments()),
        ):
            for chunk in _chunks(rows, CHUNK):
                await connection.execute(insert(table), chunk)
        await sync_id_sequences(connection)  # explicit ids: PostgreSQL's sequences must follow
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        statement = "VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"
        await autocommit.execute(text(statement))


async def post_cursor(engine: AsyncEngine, post_id: int) -> str:
    """The `Query.posts` cursor (default order, ID ASC) of one post, encoded as the server
    encodes it (server/api/cursors.py), so the bench needs no walk through 200 pages."""
    async with engine.connect() as connection:
        row = (await connection.execute(select(POSTS).where(POSTS.c.id == post_id))).one()
    return cursors.encode("Query.posts", Order(), row, POSTS)


# ---------------------------------------------------------------------------- the queries


class ShapeError(Exception):
    """A response that is not what the query must return."""


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise ShapeError(message)


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    query: str
    variables: Sequence[dict[str, Any]]  # cycled through, one per request
    check: Callable[[dict[str, Any], dict[str, Any]], None]  # (data, variables) -> or raise
    note: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)  # sent with every request
    concurrency: int | None = None  # connections for this query (default: --concurrency)
    alongside: str | None = None  # key of a query driven at the same time, not measured

    def bodies(self) -> list[bytes]:
        return [orjson.dumps({"query": self.query, "variables": v}) for v in self.variables]


USERS_WITH_POSTS = """
query UsersWithPosts {
  users(first: 100) { nodes { id username posts(first: 10) { nodes { id title } } } }
}"""


def check_users_with_posts(data: dict[str, Any], _v: dict[str, Any]) -> None:
    nodes = data["users"]["nodes"]
    _expect(len(nodes) == 100, f"expected 100 users, got {len(nodes)}")
    for user in nodes:
        got = len(user["posts"]["nodes"])
        _expect(got == POSTS_PER_USER, f"{user['username']}: {got} posts, expected 10")


POSTS_WITH_USER = (
    "query PostsWithUser($a1: String!, $a2: String!, $a3: String!, $a4: String!) {\n"
    + "\n".join(
        f"  p{k}: posts(first: 100{', after: $a' + str(k) if k else ''}) "
        "{ nodes { databaseId title user { id username } } }"
        for k in range(5)
    )
    + "\n}"
)


def check_posts_with_user(data: dict[str, Any], _v: dict[str, Any]) -> None:
    for k in range(5):
        nodes = data[f"p{k}"]["nodes"]
        _expect(len(nodes) == 100, f"p{k}: {len(nodes)} posts, expected 100")
        _expect(nodes[0]["databaseId"] == 100 * k + 1, f"p{k} starts at {nodes[0]['databaseId']}")
        for post in nodes:
            owner = (post["databaseId"] - 1) % N_USERS + 1
            _expect(post["user"]["username"] == f"user{owner:04d}", f"post {post['databaseId']}")


ARTICLES_WITH_COMMENTS = """
query ArticlesWithComments {
  articles(first: 50) {
    nodes { id title comments(first: 20) { nodes { id text article { id title } } } }
  }
}"""


def check_articles_with_comments(data: dict[str, Any], _v: dict[str, Any]) -> None:
    nodes = data["articles"]["nodes"]
    _expect(len(nodes) == 50, f"expected 50 articles, got {len(nodes)}")
    for article in nodes:
        children = article["comments"]["nodes"]
        _expect(
            len(children) == COMMENTS_PER_ARTICLE,
            f"{article['title']}: {len(children)} comments, expected 20",
        )
        for comment in children:
            _expect(comment["article"]["id"] == article["id"], "comment.article mismatch")


USER_BY_ID = """
query UserById($id: ID!) {
  user(id: $id) { id username posts(first: 10) { nodes { id title } } }
}"""


def check_user_by_id(data: dict[str, Any], variables: dict[str, Any]) -> None:
    user = data["user"]
    _expect(user is not None, f"user {variables['id']} is null")
    _expect(user["id"] == variables["id"], "wrong user")
    _expect(len(user["posts"]["nodes"]) == POSTS_PER_USER, "expected 10 posts")


POSTS_PAGE = """
query PostsPage($after: String) {
  posts(first: 10, after: $after) {
    edges { cursor node { databaseId title createdAt } }
    pageInfo { hasNextPage endCursor }
  }
}"""


def check_posts_page(data: dict[str, Any], variables: dict[str, Any]) -> None:
    edges = data["posts"]["edges"]
    _expect(len(edges) == 10, f"{len(edges)} edges, expected 10")
    first = 1 if variables.get("after") is None else 1991
    _expect(
        edges[0]["node"]["databaseId"] == first,
        f"page starts at post {edges[0]['node']['databaseId']}, expected {first}",
    )
    _expect(data["posts"]["pageInfo"]["hasNextPage"] is True, "hasNextPage should be true")


CREATE_COMMENT = """
mutation CreateComment($articleId: ID!, $text: String!) {
  createComment(input: {articleId: $articleId, text: $text}) {
    comment { id text author { username } article { id } }
    userErrors { field code }
  }
}"""


def check_create_comment(data: dict[str, Any], variables: dict[str, Any]) -> None:
    payload = data["createComment"]
    _expect(payload["userErrors"] == [], f"userErrors: {payload['userErrors']}")
    comment = payload["comment"]
    _expect(comment["text"] == variables["text"], "wrong text")
    _expect(comment["article"]["id"] == variables["articleId"], "wrong article")
    _expect(comment["author"]["username"] == BENCH_USER, "wrong author")


LOGIN = """
mutation Login($username: String!, $password: String!) {
  login(input: {username: $username, password: $password}) { token userErrors { code } }
}"""


def check_login(data: dict[str, Any], _v: dict[str, Any]) -> None:
    token = data["login"]["token"]
    _expect(isinstance(token, str) and token.startswith("ink_"), f"no token: {data['login']}")


BENCH_USER, BENCH_PASSWORD = "bencher", "bench-password-1"
SIGN_UP = """
mutation($username: String!, $password: String!) {
  createUser(input: {username: $username, password: $password}) { token userErrors { code } }
}"""


async def bench_token(engine: AsyncEngine) -> str:
    """Sign the bench's own account up through the API (server defaults: the real argon2
    cost) and return its bearer token; the server under load shares the database."""
    app = create_app(Settings(), engine=engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://inkgraph") as client:
        body = {"query": SIGN_UP, "variables": {"username": BENCH_USER, "password": BENCH_PASSWORD}}
        response = await client.post("/graphql", json=body)
    token = orjson.loads(response.content)["data"]["createUser"]["token"]
    _expect(isinstance(token, str), f"sign-up failed: {response.text[:300]}")
    return str(token)


async def scenarios(engine: AsyncEngine) -> list[Scenario]:
    page_cursors = {k: await post_cursor(engine, 100 * k) for k in range(1, 5)}
    page_200 = await post_cursor(engine, 1990)
    # A fixed, spread-out sequence of users so that no cache flatters one hot row.
    user_ids = [{"id": ids.encode("User", (n * 7919) % N_USERS + 1)} for n in range(N_USERS)]
    return [
        Scenario(
            "users_posts",
            "100 users with their posts",
            USERS_WITH_POSTS,
            [{}],
            check_users_with_posts,
            "users(first:100) x posts(first:10)",
        ),
        Scenario(
            "posts_user",
            "500 posts with their user",
            POSTS_WITH_USER,
            [{f"a{k}": c for k, c in page_cursors.items()}],
            check_posts_with_user,
            "one request, 5 aliased posts(first:100, after:) pages (max page size is 100)",
        ),
        Scenario(
            "articles_comments",
            "50 articles, comments, comment.article",
            ARTICLES_WITH_COMMENTS,
            [{}],
            check_articles_with_comments,
            "articles(first:50) x comments(first:20) x article",
        ),
        Scenario(
            "user_by_id",
            "one user by id with posts",
            USER_BY_ID,
            user_ids,
            check_user_by_id,
            "user(id:) + posts(first:10); 2,000 ids in turn",
        ),
        Scenario(
            "page_1",
            "posts page 1 (first:10)",
            POSTS_PAGE,
            [{"after": None}],
            check_posts_page,
            "edges+pageInfo, no totalCount",
        ),
        Scenario(
            "page_200",
            "posts page 200 (keyset)",
            POSTS_PAGE,
            [{"after": page_200}],
            check_posts_page,
            "after = cursor of post 1990",
        ),
        Scenario(
            "create_comment",
            "createComment (write)",
            CREATE_COMMENT,
            [
                {"articleId": ids.encode("Article", (n * 37) % N_ARTICLES + 1), "text": f"c{n}"}
                for n in range(N_ARTICLES)
            ],
            check_create_comment,
            "one transaction: token check, insert, re-read with author and article",
            headers={"authorization": f"Bearer {await bench_token(engine)}"},
        ),
        Scenario(
            "login_1",
            "login, one at a time (argon2id cost)",
            LOGIN,
            [{"username": BENCH_USER, "password": BENCH_PASSWORD}],
            check_login,
            "argon2id verify (64 MiB, 3 passes) + token insert, 1 connection",
            concurrency=1,
        ),
        Scenario(
            "login_burst",
            "login burst (16 at once)",
            LOGIN,
            [{"username": BENCH_USER, "password": BENCH_PASSWORD}],
            check_login,
            "16 connections logging in back to back; hashing runs in threads, at most one per core",
        ),
        Scenario(
            "user_by_id_during_logins",
            "one user by id, during a login burst",
            USER_BY_ID,
            user_ids,
            check_user_by_id,
            "as 'one user by id' while 16 other connections log in: the event loop stays free",
            alongside="login_burst",
        ),
    ]


def verify(scenario: Scenario, status: int, content: bytes, variables: dict[str, Any]) -> None:
    """Raise ShapeError unless the response is a 200 with data of the expected shape."""
    _expect(status == 200, f"HTTP {status}: {content[:300]!r}")
    body = orjson.loads(content)
    if body.get("errors"):
        raise ShapeError(f"GraphQL errors: {orjson.dumps(body['errors'])[:300]!r}")
    try:
        scenario.check(body["data"], variables)
    except (KeyError, TypeError, IndexError) as error:
        raise ShapeError(f"unexpected shape ({type(error).__name__}: {error})") from None


# ---------------------------------------------------------------------------- statement counts


@dataclass
class Counted:
    statements: list[str] = field(default_factory=list)
    error: str | None = None


async def count_statements(
    engine: AsyncEngine, all_scenarios: Sequence[Scenario]
) -> dict[str, Counted]:
    """Run each query in-process; verify it and record the SQL of exactly one request."""
    app = create_app(Settings(), engine=engine)
    results: dict[str, Counted] = {}
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()))

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://inkgraph") as client:
        for scenario in all_scenarios:
            body, variables = scenario.bodies()[0], scenario.variables[0]
            # One unmeasured request first: the pool's first connection runs setup statements.
            headers = {**HEADERS, **scenario.headers}
            await client.post("/graphql", content=body, headers=headers)
            seen.clear()
            event.listen(engine.sync_engine, "before_cursor_execute", record)
            try:
                response = await client.post("/graphql", content=body, headers=headers)
            finally:
                event.remove(engine.sync_engine, "before_cursor_execute", record)
            counted = Counted(statements=list(seen))
            try:
                verify(scenario, response.status_code, response.content, variables)
            except ShapeError as error:
                counted.error = str(error)
            results[scenario.key] = counted
    return results


# ---------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _proc_stat(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name: [0] state, [1] ppid, [11] utime,
    [12] stime, [13] cutime, [14] cstime (in clock ticks)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def memory_mib(pid: int) -> tuple[float, float]:
    """(current, peak) resident set size of `pid` in MiB: VmRSS and VmHWM of /proc/PID/status
    (the kernel's high-water mark, so a peak between two samples is not missed)."""
    values = {"VmRSS": 0.0, "VmHWM": 0.0}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in values:
                values[key] = int(rest.split()[0]) / 1024  # kB
    return values["VmRSS"], values["VmHWM"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = _proc_stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class PostgresProbe:
    """CPU and connections of the local PostgreSQL server during a measurement.

    CPU is the postmaster's own time, its live children's, and the time of children that have
    already exited (`cutime`/`cstime`), so backends opened and closed during the run count.
    It covers every database of that server, so other work on it shows up here too.
    `sessions` counts connections ever opened to the bench database (pg_stat_database).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.postmaster: int | None = None

    async def start(self) -> None:
        async with self.engine.connect() as connection:
            backend = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        with contextlib.suppress(OSError, IndexError, ValueError):  # not on this host
            self.postmaster = int(_proc_stat(int(backend))[1])

    def cpu_seconds(self) -> float:
        if self.postmaster is None:
            return 0.0
        ticks = 0
        with contextlib.suppress(OSError, IndexError, ValueError):
            own = _proc_stat(self.postmaster)
            ticks += sum(int(v) for v in own[11:15])  # utime stime cutime cstime
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = _proc_stat(int(entry.name))
                if int(fields[1]) == self.postmaster:
                    ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    async def sessions(self) -> int:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT pg_stat_clear_snapshot()"))
            count = (
                await connection.execute(
                    text("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
                )
            ).scalar_one()
        return int(count)


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy so far: user, nice, system, irq and softirq from
    /proc/stat (idle, iowait and a hypervisor's steal excluded)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


async def wait_for_idle(limit: float, threshold: float = OTHER_CPU_WARNING / 2) -> float:
    """Wait (at most `limit` seconds) until the machine is quiet: less than `threshold` of a
    core busy over one second while the bench itself is idle. Returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        before = machine_busy_seconds()
        await asyncio.sleep(1.0)
        if machine_busy_seconds() - before < threshold:
            break
    return time.monotonic() - started


@dataclass
class Server:
    process: asyncio.subprocess.Process
    base_url: str
    log: Path


@contextlib.asynccontextmanager
async def serve(database_url: str, log: Path) -> AsyncIterator[Server]:
    """`inkgraph serve` on a free loopback port; stopped on the way out, whatever happened."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "HOST", "PORT"}}
    # The login burst keeps 16 logins of one account in flight, and an attempt in flight counts
    # against the username's throttle until it succeeds: give the bench room above 16.
    env.setdefault("LOGIN_MAX_FAILURES_PER_USERNAME", "100")
    with log.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            str(INKGRAPH),
            "serve",
            "--database-url",
            database_url,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        try:
            async with asyncio.timeout(30):
                await wait_ready(server)
        except TimeoutError:
            raise RuntimeError(f"server not ready after 30s:\n{tail(log)}") from None
        yield server
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(10):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


async def wait_ready(server: Server) -> None:
    """Poll /readyz until it answers 200 (the caller bounds the wait)."""
    async with httpx.AsyncClient(base_url=server.base_url, trust_env=False) as client:
        while True:
            if server.process.returncode is not None:
                raise RuntimeError(
                    f"server exited with {server.process.returncode}:\n{tail(server.log)}"
                )
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/readyz", timeout=2.0)).status_code == 200:
                    return
            await asyncio.sleep(0.1)


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# ---------------------------------------------------------------------------- load


@dataclass
class Measurement:
    requests: int = 0
    errors: int = 0
    first_error: str | None = None
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    server_cpu: float = 0.0  # share of one core
    client_cpu: float = 0.0
    db_cpu: float = 0.0  # the PostgreSQL server (postmaster and backends)
    db_sessions: int = 0  # connections opened to the bench database during the run
    machine_cpu: float = 0.0  # all processes, all cores (2 cores busy = 2.0)

    @property
    def other_cpu(self) -> float:
        """CPU used by anything but the server, its database backends and the load generator:
        noise from other work on the machine."""
        return max(0.0, self.machine_cpu - self.server_cpu - self.db_cpu - self.client_cpu)

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile in milliseconds."""
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, max(0, math.ceil(p * len(ordered)) - 1))]


async def drive(
    client: httpx.AsyncClient,
    scenario: Scenario,
    seconds: float,
    concurrency: int,
    server_pid: int,
    probe: PostgresProbe | None = None,
) -> Measurement:
    """`concurrency` workers send the query back to back for `seconds`; each response is
    checked. Requests still in flight at the deadline finish and count."""
    bodies = scenario.bodies()
    headers = {**HEADERS, **scenario.headers}
    counter = itertools.count()
    result = Measurement()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    async def worker() -> None:
        while loop.time() < deadline:
            n = next(counter) % len(bodies)
            started = time.perf_counter()
            try:
                response = await client.post("/graphql", content=bodies[n], headers=headers)
                verify(scenario, response.status_code, response.content, scenario.variables[n])
            except (httpx.HTTPError, ShapeError, orjson.JSONDecodeError) as error:
                result.errors += 1
                result.first_error = result.first_error or f"{type(error).__name__}: {error}"
                continue
            result.latencies.append(time.perf_counter() - started)
            result.requests += 1

    sessions_before = await probe.sessions() if probe else 0
    server_before, client_before = cpu_seconds(server_pid), time.process_time()
    db_before = probe.cpu_seconds() if probe else 0.0
    machine_before = machine_busy_seconds()
    started = time.perf_counter()
    await asyncio.wait_for(
        asyncio.gather(*(worker() for _ in range(concurrency))), timeout=seconds + 60
    )
    result.elapsed = time.perf_counter() - started
    result.server_cpu = (cpu_seconds(server_pid) - server_before) / result.elapsed
    result.client_cpu = (time.process_time() - client_before) / result.elapsed
    result.machine_cpu = (machine_busy_seconds() - machine_before) / result.elapsed
    if probe is not None:
        result.db_cpu = (probe.cpu_seconds() - db_before) / result.elapsed
        result.db_sessions = await probe.sessions() - sessions_before
    return result


# ---------------------------------------------------------------------------- backends


@dataclass
class BackendReport:
    name: str
    version: str = ""
    seed_seconds: float = 0.0
    skipped: str | None = None
    failure: str | None = None
    scenarios: list[Scenario] = field(default_factory=list)  # the ones measured (--only)
    all_scenarios: list[Scenario] = field(default_factory=list)
    counted: dict[str, Counted] = field(default_factory=dict)
    measured: dict[str, Measurement] = field(default_factory=dict)
    # The server's resident memory (MiB) after start-up and its peak over the whole run.
    rss_started_mib: float = 0.0
    rss_peak_mib: float = 0.0


@contextlib.asynccontextmanager
async def fresh_database(backend: str, workdir: Path) -> AsyncIterator[str]:
    """A new, empty database's plain URL; dropped (PostgreSQL) or deleted with `workdir`."""
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'bench.db'}"
        return
    admin_url = os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES_ADMIN)
    admin = make_engine(Settings(database_url=admin_url), isolation_level="AUTOCOMMIT")
    name = f"inkgraph_bench_{secrets.token_hex(5)}"
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield to_async_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as connection:
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def backend_version(engine: AsyncEngine) -> str:
    if engine.dialect.name == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    async with engine.connect() as connection:
        version = (await connection.execute(text("SHOW server_version"))).scalar_one()
    return f"PostgreSQL {version}"


async def run_backend(backend: str, args: argparse.Namespace) -> BackendReport:
    report = BackendReport(backend)
    with tempfile.TemporaryDirectory(prefix=f"inkgraph-bench-{backend}-") as tmp:
        workdir = Path(tmp)
        async with contextlib.AsyncExitStack() as stack:
            try:
                url = await stack.enter_async_context(fresh_database(backend, workdir))
            except Exception as error:  # unreachable server, no rights: say so and go on
                report.skipped = f"cannot create a database: {type(error).__name__}: {error}"
                return report
            try:
                await prepare_and_measure(report, url, workdir, args)
            except Exception as error:  # reported in the table; the next backend still runs
                report.failure = f"{type(error).__name__}: {error}"
    return report


async def prepare_and_measure(
    report: BackendReport, url: str, workdir: Path, args: argparse.Namespace
) -> None:
    say = _say(report.name)
    engine = make_engine(Settings(database_url=url))
    try:
        report.version = await backend_version(engine)
        started = time.perf_counter()
        await upgrade(engine)
        await seed(engine)
        report.seed_seconds = time.perf_counter() - started
        say(
            f"{report.version}: migrated and seeded {N_USERS} users, {N_POSTS} posts, "
            f"{N_ARTICLES} articles, {N_COMMENTS} comments in {report.seed_seconds:.1f}s"
        )
        report.all_scenarios = await scenarios(engine)
        report.scenarios = [s for s in report.all_scenarios if not args.only or s.key in args.only]
        report.counted = await count_statements(engine, report.scenarios)
    finally:
        await engine.dispose()
    for key, counted in report.counted.items():
        if counted.error:
            say(f"{key}: in-process check FAILED: {counted.error}")

    # A connection of the bench's own (not the server's) to watch PostgreSQL's CPU and sessions.
    monitor = make_engine(Settings(database_url=url)) if report.name == "postgresql" else None
    try:
        probe = PostgresProbe(monitor) if monitor is not None else None
        if probe is not None:
            await probe.start()
        await measure(report, url, workdir, args, probe)
    finally:
        if monitor is not None:
            await monitor.dispose()


async def measure(
    report: BackendReport,
    url: str,
    workdir: Path,
    args: argparse.Namespace,
    probe: PostgresProbe | None,
) -> None:
    say = _say(report.name)
    async with serve(url, workdir / "server.log") as server:
        say(f"server pid {server.process.pid} on {server.base_url}")
        report.rss_started_mib, _ = memory_mib(server.process.pid)
        # Twice the load's connections: a query measured alongside another drives both.
        limits = httpx.Limits(
            max_connections=2 * args.concurrency, max_keepalive_connections=2 * args.concurrency
        )
        async with httpx.AsyncClient(
            base_url=server.base_url, http2=False, limits=limits, timeout=30.0, trust_env=False
        ) as client:
            by_key = {s.key: s for s in report.all_scenarios}
            for scenario in report.scenarios:
                if report.counted[scenario.key].error:
                    continue
                if args.wait_idle and (waited := await wait_for_idle(args.wait_idle)) >= 1.5:
                    say(f"waited {waited:.0f}s for other work on the machine to calm down")
                connections = scenario.concurrency or args.concurrency
                await drive(client, scenario, args.warmup, connections, server.process.pid)
                foreground = drive(
                    client, scenario, args.duration, connections, server.process.pid, probe
                )
                if scenario.alongside is None:
                    measured = await foreground
                else:  # the other query loads the server for the same time, unmeasured
                    other = by_key[scenario.alongside]
                    connections = other.concurrency or args.concurrency
                    background = drive(
                        client, other, args.duration, connections, server.process.pid
                    )
                    measured, _ = await asyncio.gather(foreground, background)
                report.measured[scenario.key] = measured
                say(
                    f"{scenario.key:<18} {measured.rps:8.1f} req/s  p50 "
                    f"{measured.percentile(0.5):7.1f} ms  p99 {measured.percentile(0.99):7.1f} ms"
                    f"  errors {measured.errors}"
                )
                if measured.first_error:
                    say(f"  first error: {measured.first_error[:300]}")
        _, report.rss_peak_mib = memory_mib(server.process.pid)


def _say(backend: str) -> Callable[[str], None]:
    def say(message: str) -> None:
        print(f"[{backend}] {message}", file=sys.stderr, flush=True)

    return say


# ---------------------------------------------------------------------------- report

# Requests per second on PostgreSQL quoted in the issue (2 cores, server on one core,
# 16 connections), for the first four queries.
REFERENCE = {
    "PostGraphile 4": (398, 486, 187, 7189),
    "NestJS + TypeORM": (163, 77, 42, 2822),
    "plain strawberry + SQLModel": (26, 14, 6, 287),
}
REFERENCE_KEYS = ("users_posts", "posts_user", "articles_comments", "user_by_id")


def machine(loadavg: Sequence[float]) -> list[tuple[str, str]]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    packages = []
    for name in (
        "strawberry-graphql",
        "graphql-core",
        "sqlalchemy",
        "sqlmodel",
        "starlette",
        "uvicorn",
        "uvloop",
        "httptools",
        "asyncpg",
        "aiosqlite",
        "aiodataloader",
        "httpx",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            packages.append(f"{name} {metadata.version(name)}")
    return [
        ("CPU", cpu),
        ("cores (nproc)", f"{len(os.sched_getaffinity(0))} of {os.cpu_count()}"),
        ("RAM", ram),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        ("load average before the run", " / ".join(f"{v:.2f}" for v in loadavg)),
        ("packages", ", ".join(packages)),
    ]


COLUMNS = (
    "query",
    "req/s",
    "p50 ms",
    "p99 ms",
    "errors",
    "SQL/req",
    "requests",
    "server CPU",
    "DB CPU",
    "bench CPU",
    "other CPU",
)


def rows_of(report: BackendReport) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for scenario in report.scenarios:
        counted = report.counted.get(scenario.key)
        measured = report.measured.get(scenario.key)
        sql = str(len(counted.statements)) if counted else "-"
        if measured is None:
            rows.append((scenario.title, "FAILED", "-", "-", "-", sql, "-", "-", "-", "-", "-"))
            continue
        rows.append(
            (
                scenario.title,
                f"{measured.rps:.1f}",
                f"{measured.percentile(0.5):.1f}",
                f"{measured.percentile(0.99):.1f}",
                str(measured.errors),
                sql,
                str(measured.requests),
                f"{100 * measured.server_cpu:.0f}%",
                f"{100 * measured.db_cpu:.0f}%" if report.name == "postgresql" else "(in server)",
                f"{100 * measured.client_cpu:.0f}%",
                f"{100 * measured.other_cpu:.0f}%",
            )
        )
    return rows


def text_table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(COLUMNS[i]), *(len(r[i]) for r in rows)) for i in range(len(COLUMNS))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(COLUMNS), line(["-" * w for w in widths]), *map(line, rows)])


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    align = ["---"] + ["---:"] * (len(header) - 1)
    return "\n".join("| " + " | ".join(r) + " |" for r in [header, align, *rows])


def noisy(report: BackendReport) -> list[str]:
    return [key for key, m in report.measured.items() if m.other_cpu > OTHER_CPU_WARNING]


def memory_line(report: BackendReport) -> str | None:
    if not report.rss_peak_mib:
        return None
    return (
        f"server memory: {report.rss_started_mib:.0f} MiB resident after start-up, "
        f"peak {report.rss_peak_mib:.0f} MiB over the run (VmHWM)"
    )


def noise_line(report: BackendReport) -> str | None:
    keys = noisy(report)
    if not keys:
        return None
    return (
        f"warning: other processes used more than {100 * OTHER_CPU_WARNING:.0f}% of a core "
        f"during {', '.join(keys)}; those figures are noisy (run again on an idle machine)"
    )


def sessions_line(report: BackendReport) -> str | None:
    if report.name != "postgresql" or not report.measured:
        return None
    opened = ", ".join(f"{key} {m.db_sessions}" for key, m in report.measured.items())
    return f"PostgreSQL connections opened during each measurement: {opened}"


def keyset_line(report: BackendReport) -> str | None:
    one, two = report.measured.get("page_1"), report.measured.get("page_200")
    if one is None or two is None or not one.latencies or not two.latencies:
        return None
    return (
        f"keyset: page 200 / page 1 = {two.percentile(0.5) / one.percentile(0.5):.2f}x "
        f"at p50, {two.rps / one.rps:.2f}x the requests/s"
    )


def reference_table(report: BackendReport) -> str | None:
    if not all(k in report.measured for k in REFERENCE_KEYS):
        return None
    ours = tuple(f"**{report.measured[k].rps:.0f}**" for k in REFERENCE_KEYS)
    rows = [("inkgraph (this run)", *ours)]
    rows += [(name, *(str(v) for v in values)) for name, values in REFERENCE.items()]
    header = (
        "requests/s",
        "100 users+posts",
        "500 posts+user",
        "50 articles+comments",
        "user by id",
    )
    return markdown_table(header, rows)


def print_report(reports: Sequence[BackendReport], args: argparse.Namespace) -> None:
    print()
    for key, value in machine(args.loadavg):
        print(f"{key:>14}: {value}")
    print(
        f"{'load':>14}: {args.concurrency} connections, {args.warmup:g}s warm-up + "
        f"{args.duration:g}s per query, one uvicorn process (inkgraph serve)"
    )
    for report in reports:
        print(f"\n== {report.name}: {report.version or ''}")
        if report.skipped:
            print(f"SKIPPED: {report.skipped}")
            continue
        if report.failure:
            print(f"FAILED: {report.failure}")
        if report.scenarios:
            print(text_table(rows_of(report)))
        for line in (
            keyset_line(report),
            sessions_line(report),
            memory_line(report),
            noise_line(report),
        ):
            if line:
                print(line)
        for key, counted in report.counted.items():
            if counted.error:
                print(f"{key}: FAILED check: {counted.error}")


def markdown(reports: Sequence[BackendReport], args: argparse.Namespace) -> str:
    out = [f"# inkgraph benchmark — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "", "## Machine", ""]
    out += [f"- **{key}**: {value}" for key, value in machine(args.loadavg)]
    out += [
        "",
        "## Method",
        "",
        f"- Data set: {N_USERS:,} users x {POSTS_PER_USER} posts, {N_ARTICLES:,} articles x "
        f"{COMMENTS_PER_ARTICLE} comments (90% with an author); ANALYZEd after loading.",
        "- Server: `inkgraph serve` (one uvicorn process, default logging) on 127.0.0.1.",
        f"- Load: {args.concurrency} keep-alive HTTP/1.1 connections from one httpx client, "
        f"{args.warmup:g}s warm-up then {args.duration:g}s per query; every response is "
        "checked (HTTP 200, no `errors`, expected shape) and a failed check is an error.",
        "- SQL/req: statements of exactly one request, counted in-process "
        "(`before_cursor_execute`) on the same database.",
        "- CPU columns: CPU time over wall time, 100% = one core busy. server: the uvicorn "
        "process (with SQLite, the database work too); DB: the PostgreSQL server (postmaster "
        "and backends, including ones that exited during the run); bench: the load generator; "
        "other: everything else on the machine "
        f"({os.cpu_count()} cores), i.e. interference. Above {100 * OTHER_CPU_WARNING:.0f}% "
        "the row is marked as noisy.",
        "",
    ]
    for scenario in reports[0].scenarios if reports else []:
        out.append(f"- *{scenario.title}*: {scenario.note}")
    for report in reports:
        out += ["", f"## {report.name} ({report.version})", ""]
        if report.skipped:
            out.append(f"Skipped: {report.skipped}")
            continue
        if report.failure:
            out.append(f"**Failed**: {report.failure}")
        if report.scenarios:
            out.append(markdown_table(COLUMNS, rows_of(report)))
        for line in (
            keyset_line(report),
            sessions_line(report),
            memory_line(report),
            noise_line(report),
        ):
            if line:
                out += ["", line]
        if report.name == "postgresql" and (table := reference_table(report)):
            out += [
                "",
                "Compared with the issue's reference figures (PostgreSQL, requests/s; "
                "their machine, not this one):",
                "",
                table,
            ]
    for report in reports:
        if not report.counted:
            continue
        out += ["", f"<details><summary>SQL per request on {report.name}</summary>", ""]
        for key, counted in report.counted.items():
            out.append(
                f"**{key}** ({len(counted.statements)} statements)"
                + (f" — FAILED: {counted.error}" if counted.error else "")
            )
            out += ["", "```sql", *(s[:600] for s in counted.statements), "```", ""]
        out.append("</details>")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--backends",
        default="sqlite,postgresql",
        help="comma-separated: sqlite, postgresql (default: both)",
    )
    parser.add_argument(
        "--duration", type=float, default=5.0, help="measured seconds per query (default 5)"
    )
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="unmeasured seconds per query first (default 1)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=16, help="connections driving the server (default 16)"
    )
    parser.add_argument(
        "--only",
        type=lambda s: set(s.split(",")),
        default=None,
        help="comma-separated query keys (users_posts, posts_user, articles_comments, "
        "user_by_id, page_1, page_200, create_comment, login_1, login_burst, "
        "user_by_id_during_logins)",
    )
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each query, wait up to SECONDS for other processes to leave the CPU "
        "idle (for shared machines; default 0, no wait)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS,
        help=f"markdown report (default {RESULTS.relative_to(ROOT)})",
    )
    args = parser.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(args.backends) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown backend(s): {', '.join(sorted(unknown))}")
    if args.duration <= 0 or args.warmup < 0 or args.concurrency < 1:
        parser.error("--duration must be > 0, --warmup >= 0 and --concurrency >= 1")
    return args


async def amain(args: argparse.Namespace) -> list[BackendReport]:
    return [await run_backend(backend, args) for backend in args.backends]


def run_async(main: Coroutine[Any, Any, list[BackendReport]]) -> list[BackendReport]:
    """Run on uvloop when it is installed (uvicorn[standard] brings it): the load generator
    shares the machine with the server, so the less CPU it burns per request the better."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not INKGRAPH.exists():
        print(f"{INKGRAPH} not found; create the virtualenv first (uv sync)", file=sys.stderr)
        return 2
    args.loadavg = os.getloadavg()
    reports = run_async(amain(args))
    print_report(reports, args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(markdown(reports, args), encoding="utf-8")
    print(f"\nwritten to {args.output}")
    failed = any(
        r.failure
        or any(c.error for c in r.counted.values())
        or any(m.errors for m in r.measured.values())
        for r in reports
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
