"""Login and sign-up throttling (shared/API.md, "Login and sign-up throttling").

Every test runs on each database backend and on both throttle storages: `memory` (one process)
and `redis` (shared by replicas; Redis at 127.0.0.1:6379, which must answer under CI=true). Each
app gets its own Redis key prefix, and every key of this run is deleted at the end. Limits are
lowered through the settings (and windows shortened to a second where expiry is the point), so
the tests prove the mechanism without hundreds of password hashes.
"""

import asyncio
import hashlib
import itertools
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest
import pytest_asyncio
from pydantic import ValidationError
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from server.app import create_app
from server.auth import Passwords
from server.settings import Settings
from server.throttle import STORAGE_TIMEOUT, Caller, StorageUnavailable, Throttle, open_storage
from tests.support.backends import fresh_database, in_ci
from tests.support.gql import GraphQLClient
from tests.support.sqlcount import count_statements

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RUN_PREFIX = f"inkgraph-test-{secrets.token_hex(4)}"
CHEAP_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1}
PASSWORD = "correct horse"
WRONG = "wrong horse!"

LOGIN = """mutation Guess($u: String!, $p: String!) {
  login(input: {username: $u, password: $p}) { token user { username } userErrors { code } } }"""
SIGN_UP = """mutation Join($u: String!, $p: String!) {
  createUser(input: {username: $u, password: $p}) { user { username } userErrors { code } } }"""

_prefixes = itertools.count(1)
_names = itertools.count(1)


def aliased_logins(count: int) -> str:
    fields = " ".join(
        f"a{n}: login(input: {{username: $u, password: $p}}) {{ token userErrors {{ code }} }}"
        for n in range(1, count + 1)
    )
    return f"mutation Burst($u: String!, $p: String!) {{ {fields} }}"


# ---------------------------------------------------------------------------- fixtures


@pytest_asyncio.fixture(scope="session")
async def redis_cleanup() -> AsyncIterator[None]:
    yield
    client = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{RUN_PREFIX}*")]
        if keys:
            await client.delete(*keys)
    except OSError:
        pass  # Redis was never reachable (outside CI); nothing to clean
    finally:
        await client.aclose()


@pytest_asyncio.fixture(scope="session", params=["memory", "redis"])
async def storage(request: pytest.FixtureRequest, redis_cleanup: None) -> str:
    if request.param == "memory":
        return "memory://"
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as error:  # any failure to reach Redis
        reason = f"Redis at {REDIS_URL} is unreachable: {type(error).__name__}: {error}"
        if in_ci():
            pytest.fail(f"CI is set and {reason}", pytrace=False)
        pytest.skip(reason)
    finally:
        await client.aclose()
    return REDIS_URL


@dataclass
class Accounts:
    engine: AsyncEngine
    alice: str = "Alice"
    bob: str = "Bob"


@pytest_asyncio.fixture(scope="module")
async def accounts(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Accounts]:
    folder = tmp_path_factory.mktemp(f"throttle-{backend}")
    async with fresh_database(backend, folder) as engine:
        found = Accounts(engine)
        async with serving(engine, "memory://") as server:
            for name in (found.alice, found.bob):
                data = await server.client().data(SIGN_UP, u=name, p=PASSWORD)
                assert data["createUser"]["userErrors"] == []
        yield found


@dataclass
class Server:
    app: Starlette
    stack: AsyncExitStack
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self, address: str = "127.0.0.1", **headers: str) -> GraphQLClient:
        """A client whose TCP peer address is `address`, sending `headers`."""
        transport = httpx.ASGITransport(app=self.app, client=(address, 40000))
        http = httpx.AsyncClient(transport=transport, base_url="http://inkgraph", headers=headers)
        self.clients.append(http)
        return GraphQLClient(http)


@asynccontextmanager
async def serving(engine: AsyncEngine, storage: str, **settings: Any) -> AsyncIterator[Server]:
    """An app with its own throttle state (a fresh memory storage, or its own Redis prefix),
    run through its lifespan so the throttle's connections are closed afterwards."""
    config = Settings(
        **{
            **CHEAP_ARGON2,
            "throttle_storage_url": storage,
            "throttle_key_prefix": f"{RUN_PREFIX}-{next(_prefixes)}",
            **settings,
        }
    )
    app = create_app(config, engine=engine)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        server = Server(app, stack)
        try:
            yield server
        finally:
            for http in server.clients:
                await http.aclose()


async def login(client: GraphQLClient, username: str, password: str) -> str:
    """What one login field answered: "ok", a userError code, or the GraphQL error code."""
    body = await client.execute(LOGIN, u=username, p=password)
    return outcome(body, "login")


def outcome(body: dict[str, Any], name: str) -> str:
    payload = (body.get("data") or {}).get(name)
    if payload is None:
        errors = [e for e in body.get("errors", []) if e.get("path") == [name]]
        assert len(errors) == 1, body
        return str(errors[0]["extensions"]["code"])
    if payload["userErrors"]:
        return str(payload["userErrors"][0]["code"])
    assert payload.get("token") or payload.get("user"), payload
    return "ok"


def rate_limit_error(body: dict[str, Any], name: str) -> dict[str, Any]:
    [error] = [e for e in body["errors"] if e.get("path") == [name]]
    assert error["extensions"]["code"] == "RATE_LIMITED", error
    assert body["data"][name] is None
    extensions: dict[str, Any] = error["extensions"]
    return extensions


def unique_address() -> str:
    """A client address no other test uses (the event log folds repeats per client)."""
    n = next(_names)
    return f"198.51.{100 + n // 250}.{n % 250 + 1}"


# ---------------------------------------------------------------------------- settings


def test_defaults_are_the_contract() -> None:
    settings = Settings()
    assert settings.login_max_failures_per_username == 10
    assert settings.login_max_failures_per_address == 100
    assert settings.login_window == 900
    assert settings.signup_max_per_address == 20
    assert settings.signup_window == 3600
    assert settings.trusted_proxies == ""
    assert settings.throttle_storage_url == "memory://"


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "LOGIN_MAX_FAILURES_PER_USERNAME": "5",
        "LOGIN_MAX_FAILURES_PER_ADDRESS": "50",
        "LOGIN_WINDOW": "60",
        "SIGNUP_MAX_PER_ADDRESS": "0",
        "SIGNUP_WINDOW": "120",
        "TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1",
        "THROTTLE_STORAGE_URL": "redis://127.0.0.1:6379/2",
        "THROTTLE_KEY_PREFIX": "blue",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert (settings.login_max_failures_per_username, settings.login_max_failures_per_address) == (
        5,
        50,
    )
    assert (settings.login_window, settings.signup_max_per_address) == (60, 0)
    assert settings.signup_window == 120
    assert settings.trusted_proxies == "10.0.0.0/8, 127.0.0.1"
    assert settings.throttle_storage_url == "redis://127.0.0.1:6379/2"
    assert settings.throttle_key_prefix == "blue"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("throttle_storage_url", "memcached://127.0.0.1:11211"),
        ("throttle_storage_url", "127.0.0.1:6379"),
        ("trusted_proxies", "10.0.0.0/8, not-an-address"),
        ("login_window", 0),
        ("login_max_failures_per_username", -1),
    ],
)
def test_bad_settings_are_refused_by_name(name: str, value: object) -> None:
    with pytest.raises(ValidationError, match=name):
        Settings(**{name: value})


# ---------------------------------------------------------------------------- logins


async def test_username_is_throttled_after_its_failures_case_folded(
    accounts: Accounts, storage: str
) -> None:
    async with serving(accounts.engine, storage, login_max_failures_per_username=3) as server:
        client = server.client()
        for username in ("Alice", "alice", "ALICE"):  # one key, whatever the case
            assert await login(client, username, WRONG) == "INVALID_CREDENTIALS"
        body = await client.execute(LOGIN, u="aLiCe", p=WRONG)
        assert rate_limit_error(body, "login")["retryAfter"] > 0
        # The right password is refused too: the throttle is no password oracle.
        assert await login(client, "Alice", PASSWORD) == "RATE_LIMITED"
        # Other usernames from the same address are still checked.
        assert await login(client, accounts.bob, PASSWORD) == "ok"
        assert await login(client, accounts.bob, WRONG) == "INVALID_CREDENTIALS"


async def test_unknown_username_is_throttled_like_an_existing_one(
    accounts: Accounts, storage: str
) -> None:
    async with serving(accounts.engine, storage, login_max_failures_per_username=2) as server:
        client = server.client()
        answers = {}
        for username in (accounts.alice, "nobody-here"):
            bodies = [await client.execute(LOGIN, u=username, p=WRONG) for _ in range(4)]
            for body in bodies[2:]:
                error = next(iter(body["errors"]))
                error["extensions"]["retryAfter"] = "<seconds>"
                del error["locations"]
            answers[username] = bodies
        assert answers[accounts.alice] == answers["nobody-here"]
        assert [outcome(body, "login") for body in answers["nobody-here"]] == [
            "INVALID_CREDENTIALS",
            "INVALID_CREDENTIALS",
            "RATE_LIMITED",
            "RATE_LIMITED",
        ]


async def test_success_clears_the_username_failures(accounts: Accounts, storage: str) -> None:
    async with serving(accounts.engine, storage, login_max_failures_per_username=3) as server:
        client = server.client()
        for _ in range(2):
            assert await login(client, accounts.alice, WRONG) == "INVALID_CREDENTIALS"
        assert await login(client, accounts.alice, PASSWORD) == "ok"
        # A fresh allowance of three failures, then the fourth is refused.
        for _ in range(3):
            assert await login(client, accounts.alice, WRONG) == "INVALID_CREDENTIALS"
        assert await login(client, accounts.alice, WRONG) == "RATE_LIMITED"


async def test_address_is_throttled_across_usernames(accounts: Accounts, storage: str) -> None:
    limits = {"login_max_failures_per_address": 4, "login_max_failures_per_username": 100}
    async with serving(accounts.engine, storage, **limits) as server:
        guesser = server.client("203.0.113.9")
        for n in range(3):
            assert await login(guesser, f"user{n}", WRONG) == "INVALID_CREDENTIALS"
        # Successes are not failures, and do not clear the address's failures either.
        for _ in range(3):
            assert await login(guesser, accounts.alice, PASSWORD) == "ok"
        assert await login(guesser, "user3", WRONG) == "INVALID_CREDENTIALS"  # the 4th failure
        body = await guesser.execute(LOGIN, u=accounts.bob, p=PASSWORD)
        assert rate_limit_error(body, "login")["retryAfter"] > 0  # right password, refused
        # Another address is counted on its own.
        assert await login(server.client("203.0.113.10"), accounts.bob, PASSWORD) == "ok"


async def test_aliased_logins_count_one_by_one(accounts: Accounts, storage: str) -> None:
    async with serving(accounts.engine, storage, login_max_failures_per_username=3) as server:
        client = server.client()
        body = await client.execute(aliased_logins(6), u=accounts.alice, p=WRONG)
        assert [outcome(body, f"a{n}") for n in range(1, 7)] == [
            "INVALID_CREDENTIALS",
            "INVALID_CREDENTIALS",
            "INVALID_CREDENTIALS",
            "RATE_LIMITED",
            "RATE_LIMITED",
            "RATE_LIMITED",
        ]
        # Not even a burst carrying the right password gets through now.
        body = await client.execute(aliased_logins(5), u=accounts.alice, p=PASSWORD)
        assert {outcome(body, f"a{n}") for n in range(1, 6)} == {"RATE_LIMITED"}


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every password hash ("hash") and check ("verify") the app computes, in order."""
    seen: list[str] = []
    original_verify, original_hash = Passwords._verify, Passwords.hash

    async def verify(self: Passwords, password: str, password_hash: str) -> bool:
        seen.append("verify")
        return await original_verify(self, password, password_hash)

    async def hash_(self: Passwords, password: str) -> str:
        seen.append("hash")
        return await original_hash(self, password)

    monkeypatch.setattr(Passwords, "_verify", verify)
    monkeypatch.setattr(Passwords, "hash", hash_)
    return seen


async def test_throttled_login_and_sign_up_run_no_sql_and_no_password_hash(
    accounts: Accounts, storage: str, hashes: list[str]
) -> None:
    limits = {"login_max_failures_per_username": 1, "signup_max_per_address": 1}
    async with serving(accounts.engine, storage, **limits) as server:
        client = server.client(unique_address())
        assert await login(client, accounts.alice, WRONG) == "INVALID_CREDENTIALS"
        assert hashes == ["verify"]
        hashes.clear()
        with count_statements(accounts.engine) as statements:
            body = await client.execute(aliased_logins(10), u=accounts.alice, p=PASSWORD)
        assert {outcome(body, f"a{n}") for n in range(1, 11)} == {"RATE_LIMITED"}
        assert hashes == [], "a throttled login checked a password"
        assert len(statements) == 0, statements.listing()

        assert outcome(await client.execute(SIGN_UP, u="no", p=PASSWORD), "createUser") == (
            "INVALID"
        )
        with count_statements(accounts.engine) as statements:
            body = await client.execute(SIGN_UP, u=f"join{secrets.token_hex(3)}", p=PASSWORD)
        assert rate_limit_error(body, "createUser")["retryAfter"] > 0
        assert hashes == [], "a throttled sign-up hashed a password"
        assert len(statements) == 0, statements.listing()


async def test_throttled_logins_cost_less_than_one_password_check(
    accounts: Accounts, hashes: list[str]
) -> None:
    # The default argon2 cost, so a checked login costs what it costs in production; the
    # storage does not matter here (the memory one is used).
    defaults = {"argon2_time_cost": 3, "argon2_memory_kib": 65536, "argon2_parallelism": 1}
    limits = {"login_max_failures_per_username": 2}
    async with serving(accounts.engine, "memory://", **defaults, **limits) as server:
        client = server.client(unique_address())
        assert await login(client, "ghost", WRONG) == "INVALID_CREDENTIALS"  # makes the dummy
        started = time.perf_counter()
        assert await login(client, "ghost", WRONG) == "INVALID_CREDENTIALS"
        checked = time.perf_counter() - started
        assert hashes == ["hash", "verify", "verify"]
        started = time.perf_counter()
        body = await client.execute(aliased_logins(10), u="ghost", p=PASSWORD)
        throttled = time.perf_counter() - started
        assert {outcome(body, f"a{n}") for n in range(1, 11)} == {"RATE_LIMITED"}
        assert hashes == ["hash", "verify", "verify"]
        assert throttled < checked, (throttled, checked)


async def test_retry_after_counts_down_the_contract_windows(
    accounts: Accounts, storage: str
) -> None:
    limits = {"login_max_failures_per_username": 1, "signup_max_per_address": 1}
    async with serving(accounts.engine, storage, **limits) as server:
        client = server.client(unique_address())
        assert await login(client, accounts.bob, WRONG) == "INVALID_CREDENTIALS"
        body = await client.execute(LOGIN, u=accounts.bob, p=WRONG)
        assert 890 <= rate_limit_error(body, "login")["retryAfter"] <= 900

        await client.execute(SIGN_UP, u="x", p="short")  # invalid input still counts
        body = await client.execute(SIGN_UP, u=f"late{secrets.token_hex(3)}", p=PASSWORD)
        assert 3590 <= rate_limit_error(body, "createUser")["retryAfter"] <= 3600


async def test_window_expiry_lets_attempts_in_again(accounts: Accounts, storage: str) -> None:
    settings = {
        "login_max_failures_per_username": 1,
        "login_window": 1,
        "signup_max_per_address": 1,
        "signup_window": 1,
    }
    async with serving(accounts.engine, storage, **settings) as server:
        client = server.client(unique_address())
        assert await login(client, accounts.alice, WRONG) == "INVALID_CREDENTIALS"
        body = await client.execute(LOGIN, u=accounts.alice, p=PASSWORD)
        assert rate_limit_error(body, "login")["retryAfter"] == 1
        first = f"tick{secrets.token_hex(3)}"
        assert outcome(await client.execute(SIGN_UP, u=first, p=PASSWORD), "createUser") == "ok"
        body = await client.execute(SIGN_UP, u=f"{first}b", p=PASSWORD)
        assert rate_limit_error(body, "createUser")["retryAfter"] == 1

        await anyio.sleep(1.2)
        assert await login(client, accounts.alice, PASSWORD) == "ok"
        body = await client.execute(SIGN_UP, u=f"{first}b", p=PASSWORD)
        assert outcome(body, "createUser") == "ok"


# ---------------------------------------------------------------------------- sign-ups


async def test_sign_ups_per_address_count_every_attempt(accounts: Accounts, storage: str) -> None:
    async with serving(accounts.engine, storage, signup_max_per_address=3) as server:
        client = server.client("192.0.2.44")
        name = f"new{secrets.token_hex(3)}"
        answers = [
            outcome(await client.execute(SIGN_UP, u=name, p=PASSWORD), "createUser"),
            outcome(await client.execute(SIGN_UP, u=name.upper(), p=PASSWORD), "createUser"),
            outcome(await client.execute(SIGN_UP, u="no", p=PASSWORD), "createUser"),
        ]
        assert answers == ["ok", "TAKEN", "INVALID"]
        body = await client.execute(SIGN_UP, u=f"{name}2", p=PASSWORD)
        assert rate_limit_error(body, "createUser")["retryAfter"] > 0
        async with accounts.engine.connect() as connection:
            created = await connection.execute(
                text("SELECT count(*) FROM users WHERE username = :u"), {"u": f"{name}2"}
            )
            assert created.scalar() == 0
        other = server.client("192.0.2.45")
        assert outcome(await other.execute(SIGN_UP, u=f"{name}2", p=PASSWORD), "createUser") == (
            "ok"
        )


# ---------------------------------------------------------------------------- addresses


async def test_forwarded_for_counts_only_behind_a_trusted_proxy(
    accounts: Accounts, storage: str
) -> None:
    limits = {"login_max_failures_per_address": 1, "login_max_failures_per_username": 100}
    # Not trusted: X-Forwarded-For is ignored, the peer is the address.
    async with serving(accounts.engine, storage, **limits) as server:
        first = server.client("192.0.2.60", **{"X-Forwarded-For": "203.0.113.1"})
        second = server.client("192.0.2.60", **{"X-Forwarded-For": "203.0.113.2"})
        assert await login(first, "someone", WRONG) == "INVALID_CREDENTIALS"
        assert await login(second, "someone-else", WRONG) == "RATE_LIMITED"

    # Trusted: the right-most untrusted hop is the address; hops left of it are the client's.
    trusted = {**limits, "trusted_proxies": "192.0.2.60, 10.0.0.0/8"}
    async with serving(accounts.engine, storage, **trusted) as server:
        first = server.client("192.0.2.60", **{"X-Forwarded-For": "203.0.113.1"})
        second = server.client("192.0.2.60", **{"X-Forwarded-For": "203.0.113.2, 10.1.2.3"})
        spoofed = server.client("192.0.2.60", **{"X-Forwarded-For": "6.6.6.6, 203.0.113.1"})
        assert await login(first, "someone", WRONG) == "INVALID_CREDENTIALS"
        assert await login(second, "someone-else", WRONG) == "INVALID_CREDENTIALS"
        assert await login(spoofed, "third", WRONG) == "RATE_LIMITED"  # still 203.0.113.1
        # A peer that is not a listed proxy cannot choose its address.
        direct = server.client("192.0.2.61", **{"X-Forwarded-For": "203.0.113.99"})
        assert await login(direct, "fourth", WRONG) == "INVALID_CREDENTIALS"
        assert await login(direct, "fifth", WRONG) == "RATE_LIMITED"


# ---------------------------------------------------------------------------- operators


async def test_operator_sees_one_line_per_throttled_key(
    accounts: Accounts, storage: str, caplog: pytest.LogCaptureFixture
) -> None:
    limits = {"login_max_failures_per_username": 1, "signup_max_per_address": 1}
    async with serving(accounts.engine, storage, **limits) as server:
        address = unique_address()
        client = server.client(address)
        with caplog.at_level(logging.INFO, logger="inkgraph.events"):
            await client.execute(LOGIN, u=accounts.alice, p=WRONG)
            await client.execute(LOGIN, u="ALICE", p=WRONG)
            await client.execute(LOGIN, u="alice", p=WRONG)  # folded into the line above
        lines = [r.getMessage() for r in caplog.records if r.name == "inkgraph.events"]
        digest = hashlib.sha256(b"alice").hexdigest()[:16]
        assert len(lines) == 1, lines
        [line] = lines
        assert line.startswith(f"login throttled client={address} operation=Guess request=")
        assert line.endswith(f"key=username:{digest} count=2 window=900s")
        assert caplog.records[-1].levelno == logging.WARNING
        assert "alice" not in line.lower().replace(digest, "")

        caplog.clear()
        with caplog.at_level(logging.INFO, logger="inkgraph.events"):
            await client.execute(SIGN_UP, u="no", p=PASSWORD)
            await client.execute(SIGN_UP, u="no", p=PASSWORD)
        [line] = [r.getMessage() for r in caplog.records if r.name == "inkgraph.events"]
        assert line.startswith(f"sign-up throttled client={address} operation=Join request=")
        assert line.endswith(f"key=address:{address} count=2 window=3600s")


async def test_unreachable_storage_refuses_instead_of_going_unthrottled(
    accounts: Accounts, caplog: pytest.LogCaptureFixture
) -> None:
    # A closed port on loopback: the connection is refused at once.
    with anyio.fail_after(10):
        async with serving(accounts.engine, "redis://127.0.0.1:9/0") as server:
            client = server.client()
            with count_statements(accounts.engine) as statements:
                login_body = await client.execute(LOGIN, u=accounts.alice, p=PASSWORD)
                sign_up_body = await client.execute(SIGN_UP, u="nobody-new", p=PASSWORD)
    assert len(statements) == 0, statements.listing()
    for body, name in ((login_body, "login"), (sign_up_body, "createUser")):
        [error] = body["errors"]
        assert error["extensions"] == {"code": "SERVICE_UNAVAILABLE"}
        assert body["data"][name] is None
        assert "Error" not in error["message"]
        assert "127.0.0.1" not in error["message"]


async def test_a_silent_storage_holds_an_attempt_two_seconds_at_most() -> None:
    """A Redis that accepts the connection and never answers (a stalled host)."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    throttle = Throttle(open_storage(f"redis://127.0.0.1:{port}/0", RUN_PREFIX))
    try:
        started = time.perf_counter()
        with pytest.raises(StorageUnavailable):
            await throttle.login_attempt("alice", Caller("192.0.2.1"))
        assert time.perf_counter() - started < STORAGE_TIMEOUT + 1.5
    finally:
        await throttle.aclose()
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
