"""The `inkgraph` console script, run for real in a subprocess from a temporary directory."""

import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.engine import make_url
from strawberry.printer import print_schema

from server.api.schema import build_schema
from tests.support.backends import ADMIN_URLS, _admin, in_ci, unreachable_reason

_SCRIPT = Path(sys.executable).with_name("inkgraph")
INKGRAPH = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "server"]
TABLES = {"users", "posts", "articles", "comments", "alembic_version"}
SECRET = "hunter2"


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "HOST", "PORT")}
    return {**env, **extra}


def run(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*INKGRAPH, *args],
        cwd=cwd,
        env=environment(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ok(cwd: Path, *args: str, **env: str) -> str:
    result = run(cwd, *args, **env)
    assert result.returncode == 0, f"inkgraph {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


def sqlite_tables(path: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {name for (name,) in rows}


def sqlite_scalar(path: Path, sql: str) -> object:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        return connection.execute(sql).fetchone()[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------------------- migrate and seed


def test_migrate_creates_the_default_sqlite_file_in_the_working_directory(tmp_path: Path) -> None:
    out = ok(tmp_path, "migrate")
    database = tmp_path / "inkgraph.db"
    assert database.is_file()
    assert "up to date" in out
    assert sqlite_tables(database) >= TABLES
    head = sqlite_scalar(database, "SELECT version_num FROM alembic_version")

    ok(tmp_path, "migrate")  # idempotent
    assert sqlite_scalar(database, "SELECT version_num FROM alembic_version") == head
    assert sqlite_scalar(database, "SELECT count(*) FROM alembic_version") == 1


def test_seed_inserts_once(tmp_path: Path) -> None:
    ok(tmp_path, "migrate")
    assert "demo data inserted" in ok(tmp_path, "seed")
    database = tmp_path / "inkgraph.db"
    users = sqlite_scalar(database, "SELECT count(*) FROM users")
    assert isinstance(users, int)
    assert users > 0

    again = ok(tmp_path, "seed")
    assert "not inserted" in again
    assert sqlite_scalar(database, "SELECT count(*) FROM users") == users


def test_flag_overrides_the_environment(tmp_path: Path) -> None:
    ok(
        tmp_path,
        "migrate",
        "--database-url",
        "sqlite:///from_flag.db",
        DATABASE_URL="sqlite:///env.db",
    )
    assert (tmp_path / "from_flag.db").is_file()
    assert not (tmp_path / "env.db").exists()
    assert not (tmp_path / "inkgraph.db").exists()

    ok(tmp_path, "migrate", DATABASE_URL="sqlite:///env.db")
    assert sqlite_tables(tmp_path / "env.db") >= TABLES
    assert not (tmp_path / "inkgraph.db").exists()


# ---------------------------------------------------------------------------- export-schema


def test_export_schema_prints_the_sdl(tmp_path: Path) -> None:
    assert ok(tmp_path, "export-schema") == print_schema(build_schema()) + "\n"
    assert list(tmp_path.iterdir()) == []  # no database touched


def test_export_schema_writes_a_file(tmp_path: Path) -> None:
    assert ok(tmp_path, "export-schema", "-o", "out.graphql") == ""
    written = (tmp_path / "out.graphql").read_bytes().decode("utf-8")
    assert written == print_schema(build_schema()) + "\n"


# ---------------------------------------------------------------------------- operator errors


@pytest.mark.parametrize(
    ("args", "env", "names"),
    [
        (["migrate", "--database-url", f"oracle://u:{SECRET}@h/db"], {}, "DATABASE_URL"),
        (["seed"], {"DATABASE_URL": f"nonsense {SECRET}"}, "DATABASE_URL"),
        (["serve", "--port", "0"], {}, "PORT"),
        (["serve"], {"PORT": "http"}, "PORT"),
    ],
)
def test_bad_settings_exit_2_with_one_line(
    tmp_path: Path, args: list[str], env: dict[str, str], names: str
) -> None:
    result = run(tmp_path, *args, **env)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stderr + result.stdout
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("inkgraph: error:")]
    assert names in line


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
def test_unreachable_database_exits_1_with_one_line(tmp_path: Path, scheme: str) -> None:
    url = f"{scheme}://nobody:{SECRET}@127.0.0.1:{free_port()}/x"
    result = run(tmp_path, "migrate", "--database-url", url)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stderr + result.stdout
    assert result.stderr.strip().splitlines()[-1].startswith("inkgraph: error: database:")


# ---------------------------------------------------------------------------- serve


@contextlib.contextmanager
def serving(cwd: Path, *args: str, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    log = (cwd / "serve.log").open("wb")
    process = subprocess.Popen(
        [*INKGRAPH, "serve", *args], cwd=cwd, env=environment(**env), stdout=log, stderr=log
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def wait_until_up(process: subprocess.Popen[bytes], base: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"inkgraph serve exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    pytest.fail(f"inkgraph serve did not answer on {base} within 30 s:\n{log.read_text()}")


@pytest.mark.parametrize("how", ["flag", "env"])
def test_serve_answers_over_real_http(tmp_path: Path, how: str) -> None:
    ok(tmp_path, "migrate")
    port = free_port()
    # The flag must win over PORT; without the flag, PORT is used. The access log is off
    # unless LOG_ACCESS turns it on.
    args, env = (
        (["--port", str(port)], {"PORT": "1"})
        if how == "flag"
        else ([], {"PORT": str(port), "LOG_ACCESS": "true"})
    )
    base = f"http://127.0.0.1:{port}"
    with serving(tmp_path, *args, **env) as process:
        wait_until_up(process, base, tmp_path / "serve.log")
        assert httpx.get(f"{base}/readyz", timeout=10).status_code == 200
        response = httpx.post(
            f"{base}/graphql", json={"query": "{ users { totalCount } }"}, timeout=10
        )
        assert response.status_code == 200
        assert response.json() == {"data": {"users": {"totalCount": 0}}}
        get = httpx.get(f"{base}/graphql", params={"query": "{ __typename }"}, timeout=10)
        assert get.json() == {"data": {"__typename": "Query"}}
    access_lines = (tmp_path / "serve.log").read_text().count('"POST /graphql HTTP/1.1" 200')
    assert access_lines == (1 if how == "env" else 0)


# ---------------------------------------------------------------------------- server databases


@pytest_asyncio.fixture(
    params=[
        pytest.param("postgresql", marks=pytest.mark.postgresql),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
async def server_database(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A plain (driverless) URL of a new, empty database; dropped afterwards."""
    backend: str = request.param
    reason = await unreachable_reason(backend)
    if reason is not None:
        if in_ci():
            pytest.fail(f"CI is set and {reason}", pytrace=False)
        pytest.skip(reason)
    name = f"inkgraph_cli_{uuid.uuid4().hex[:10]}"
    await _admin(backend, f"CREATE DATABASE {name}")
    try:
        yield make_url(ADMIN_URLS[backend]).set(database=name).render_as_string(hide_password=False)
    finally:
        await _admin(backend, f"DROP DATABASE {name}")


def test_migrate_and_seed_a_server_database(tmp_path: Path, server_database: str) -> None:
    assert "up to date" in ok(tmp_path, "migrate", "--database-url", server_database)
    ok(tmp_path, "migrate", DATABASE_URL=server_database)  # idempotent, URL from the env
    assert "demo data inserted" in ok(tmp_path, "seed", DATABASE_URL=server_database)
    assert "not inserted" in ok(tmp_path, "seed", "--database-url", server_database)
    assert list(tmp_path.iterdir()) == []  # no SQLite file on the side
