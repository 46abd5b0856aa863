"""Fixtures: every API test runs once per backend (sqlite, postgresql, mariadb).

`client` is a GraphQL client over the in-process app, backed by a fresh database holding the
contract data set (tests/support/dataset.py); `engine` is that database's engine.
"""

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from server.api import plan
from server.app import create_app
from server.settings import Settings
from tests.support import dataset, shadow
from tests.support.backends import fresh_database, in_ci, unreachable_reason
from tests.support.gql import GraphQLClient

BACKEND_PARAMS = [
    pytest.param(name, marks=getattr(pytest.mark, name))
    for name in ("sqlite", "postgresql", "mariadb")
]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--plan",
        choices=shadow.MODES,
        default="compare",
        help="compiled execution plan: off (plain graphql-core), on, or compare (default: "
        "every query answered by both, byte for byte; tests/support/shadow.py)",
    )


def pytest_configure(config: pytest.Config) -> None:
    mode = config.getoption("--plan")
    # Settings() in the tests reads it, as the server reads GRAPHQL_COMPILED_PLAN.
    os.environ["GRAPHQL_COMPILED_PLAN"] = "false" if mode == "off" else "true"
    if mode == "compare":
        shadow.install()


@pytest.fixture(autouse=True)
def plan_matches_graphql_core(request: pytest.FixtureRequest) -> Iterator[None]:
    """In compare mode, a query whose two answers differ fails the test that sent it."""
    shadow.MISMATCHES.clear()
    shadow.PAUSED = request.node.get_closest_marker("no_shadow") is not None
    yield
    shadow.PAUSED = False
    if shadow.MISMATCHES:
        found = "\n".join(shadow.MISMATCHES)
        shadow.MISMATCHES.clear()
        pytest.fail(f"compiled plan and graphql-core answered differently:\n{found}")


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    mode = config.getoption("--plan")
    stats = ", ".join(f"{k} {v}" for k, v in sorted(plan.STATS.items()))
    compared = shadow.COUNTS["compared"]
    terminalreporter.write_line(
        f"compiled plan: --plan={mode}; operations {stats or 'none'}"
        + (f"; {compared} queries compared with graphql-core" if mode == "compare" else "")
    )


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test depends on the shell's DATABASE_URL, HOST or PORT."""
    for name in ("DATABASE_URL", "HOST", "PORT"):
        monkeypatch.delenv(name, raising=False)


@pytest_asyncio.fixture(scope="session", params=BACKEND_PARAMS)
async def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    reason = await unreachable_reason(name)
    if reason is not None:
        if in_ci():
            pytest.fail(f"CI is set and {reason}", pytrace=False)
        pytest.skip(reason)
    return name


@pytest_asyncio.fixture(scope="session")
async def engine(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AsyncEngine]:
    async with fresh_database(backend, tmp_path_factory.mktemp(backend)) as engine:
        await dataset.load(engine)
        yield engine


def make_client(engine: AsyncEngine, settings: Settings | None = None) -> httpx.AsyncClient:
    app = create_app(settings or Settings(), engine=engine)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://inkgraph")


def unlimited_settings() -> Settings:
    """Every query limit off, and the execution timeout, for tests whose documents are about
    something else (statement counts at scale, a 40,000-value `in:`) and would be refused by a
    limit, or outlast 10 s on a loaded machine."""
    return Settings().without_query_limits()


@pytest_asyncio.fixture(scope="session")
async def http(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(engine) as client:
        yield client


@pytest.fixture(scope="session")
def client(http: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(http)


@pytest_asyncio.fixture(scope="session")
async def patient_client(engine: AsyncEngine) -> AsyncIterator[GraphQLClient]:
    """The default limits, but no execution timeout: documents at a limit (20,000 nodes) are
    about the limit, and may outlast 10 s when the machine is loaded and every query runs twice."""
    settings = Settings(graphql_execution_timeout=0)
    async with make_client(engine, settings) as http:
        yield GraphQLClient(http)


@pytest_asyncio.fixture(scope="session")
async def unlimited_client(engine: AsyncEngine) -> AsyncIterator[GraphQLClient]:
    """A client of an app with every query limit and argument cap off."""
    async with make_client(engine, unlimited_settings()) as http:
        yield GraphQLClient(http)


def pytest_report_header() -> str:
    return f"CI={os.environ.get('CI', '')!r}: unreachable PostgreSQL/MariaDB " + (
        "fail the run" if in_ci() else "are skipped"
    )
