"""Pure units: global IDs, keyset cursors and the database URL mapping (no database, no app)."""

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from graphql import GraphQLError
from sqlalchemy import Table

from loaders import Order, Position
from server.api import cursors, ids
from server.api.errors import BAD_USER_INPUT
from server.settings import Settings, sqlite_path, to_async_url
from server.store import models
from server.store.models import table_of

USERS: Table = table_of(models.User)


def assert_bad_user_input(error: pytest.ExceptionInfo[GraphQLError]) -> None:
    assert (error.value.extensions or {}).get("code") == BAD_USER_INPUT, error.value


def b64(raw: bytes | str) -> str:
    return base64.b64encode(raw.encode() if isinstance(raw, str) else raw).decode()


# ---------------------------------------------------------------------------- global IDs


@pytest.mark.parametrize(
    ("type_name", "pk"), [("User", 0), ("User", 1), ("Post", 42), ("Comment", ids.MAX_PK)]
)
def test_global_id_round_trip(type_name: str, pk: int) -> None:
    global_id = ids.encode(type_name, pk)
    assert ids.decode(global_id) == (type_name, pk)
    assert ids.decode_as(global_id, type_name) == pk
    assert type_name not in global_id  # opaque, not readable


@pytest.mark.parametrize(
    "global_id",
    [
        "",
        "!!!",
        "é",
        "VXNlcjox\n",  # base64 of "User:1" with a trailing newline
        "VXNlcjo",  # missing padding
        b64("User"),
        b64("User:"),
        b64(":1"),
        b64("User:-1"),
        b64("User:+1"),
        b64("User:01"),
        b64("User:1.0"),
        b64("User: 1"),
        b64("User:1 "),
        b64("User:١"),  # an Arabic-Indic digit: str.isdigit() says yes, we say no
        b64("User:²"),
        b64("User:2147483648"),  # beyond any INTEGER primary key
        b64("User:" + "9" * 5000),  # longer than int() accepts
        b64(b"\xff\xfe:1"),  # not UTF-8
    ],
)
def test_malformed_global_id_is_bad_user_input(global_id: str) -> None:
    with pytest.raises(GraphQLError) as error:
        ids.decode(global_id)
    assert_bad_user_input(error)


def test_global_id_of_another_type_is_bad_user_input() -> None:
    with pytest.raises(GraphQLError, match="is a Post, not a User") as error:
        ids.decode_as(ids.encode("Post", 1), "User")
    assert_bad_user_input(error)


# ---------------------------------------------------------------------------- cursors

ALICE = SimpleNamespace(
    _mapping={"id": 7, "username": "alice", "created_at": datetime(2026, 1, 2, 3, 4, 5, 6, UTC)}
)
BY_ID, BY_NAME = Order(), Order("username")
BY_CREATED_DESC = Order("created_at", descending=True)


def cursor(payload: Any) -> str:
    """A hand-made cursor in our format (base64url of JSON), for tampering tests."""
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def decode(value: str, order: Order = BY_NAME, field: str = "Query.users") -> Position:
    return cursors.decode(value, field=field, order=order, table=USERS)


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (BY_ID, Position(None, 7)),
        (BY_NAME, Position("alice", 7)),
        (BY_CREATED_DESC, Position(datetime(2026, 1, 2, 3, 4, 5, 6, UTC), 7)),
    ],
)
def test_cursor_round_trip(order: Order, expected: Position) -> None:
    encoded = cursors.encode("Query.users", order, ALICE, USERS)  # type: ignore[arg-type]
    assert "alice" not in encoded
    position = decode(encoded, order)
    assert position == expected
    if isinstance(position.sort_value, datetime):
        assert position.sort_value.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("field", "order"),
    [("User.posts", BY_NAME), ("Query.users", BY_ID), ("Query.users", Order("username", True))],
)
def test_cursor_of_another_field_or_order_is_bad_user_input(field: str, order: Order) -> None:
    encoded = cursors.encode("Query.users", BY_NAME, ALICE, USERS)  # type: ignore[arg-type]
    with pytest.raises(GraphQLError, match="another connection or orderBy") as error:
        decode(encoded, order, field)
    assert_bad_user_input(error)


@pytest.mark.parametrize(
    ("value", "order"),
    [
        ("", BY_NAME),
        ("!!!not base64", BY_NAME),
        ("é", BY_NAME),
        (base64.urlsafe_b64encode(b"not json").decode(), BY_NAME),
        (cursor(None), BY_NAME),
        (cursor({"a": 1}), BY_NAME),
        (cursor([1, "Query.users", "username:asc", "alice"]), BY_NAME),  # too short
        (cursor([2, "Query.users", "username:asc", "alice", 7]), BY_NAME),  # unknown version
        (cursor([1, "Query.users", "username:asc", "alice", "7"]), BY_NAME),
        (cursor([1, "Query.users", "username:asc", "alice", True]), BY_NAME),
        (cursor([1, "Query.users", "username:asc", "alice", 7.5]), BY_NAME),
        (cursor([1, "Query.users", "username:asc", 5, 7]), BY_NAME),  # sort value of a wrong type
        (cursor([1, "Query.users", "username:asc", None, 7]), BY_NAME),
        (cursor([1, "Query.users", "created_at:desc", "yesterday", 7]), BY_CREATED_DESC),
        (cursor([1, "Query.users", "created_at:desc", 1767225600, 7]), BY_CREATED_DESC),
        # The checks below are about what the database would choke on (an INTERNAL_SERVER_ERROR
        # instead of BAD_USER_INPUT): we never issue these, so they are not our cursors.
        (cursor([1, "Query.users", "id:asc", None, 2**31]), BY_ID),
        (cursor([1, "Query.users", "created_at:desc", "2026-01-01T00:00:00", 7]), BY_CREATED_DESC),
        (
            cursor([1, "Query.users", "created_at:desc", "9999-12-31T23:59:59-05:00", 7]),
            BY_CREATED_DESC,
        ),
    ],
)
def test_tampered_cursor_is_bad_user_input(value: str, order: Order) -> None:
    with pytest.raises(GraphQLError) as error:
        decode(value, order)
    assert_bad_user_input(error)


def test_cursor_keeps_any_offset_as_the_same_instant() -> None:
    plus_two = datetime(2026, 1, 2, 5, 4, 5, 6, timezone(timedelta(hours=2)))
    position = decode(
        cursor([1, "Query.users", "created_at:desc", plus_two.isoformat(), 7]), BY_CREATED_DESC
    )
    assert position.sort_value == ALICE._mapping["created_at"]


# ---------------------------------------------------------------------------- database URLs


@pytest.mark.parametrize(
    ("plain", "expected"),
    [
        (
            "postgres://u:p%40ss@db.example:5433/app",
            "postgresql+asyncpg://u:p%40ss@db.example:5433/app",
        ),
        ("postgresql://u@localhost/app", "postgresql+asyncpg://u@localhost/app"),
        ("mysql://u:p@localhost/app", "mysql+asyncmy://u:p@localhost/app?charset=utf8mb4"),
        ("mariadb://u@localhost:3307/app", "mysql+asyncmy://u@localhost:3307/app?charset=utf8mb4"),
        ("mysql://u@h/app?charset=utf8mb4", "mysql+asyncmy://u@h/app?charset=utf8mb4"),
        ("sqlite:///rel.db", "sqlite+aiosqlite:///rel.db"),
        ("sqlite:////var/lib/inkgraph/abs.db", "sqlite+aiosqlite:////var/lib/inkgraph/abs.db"),
        ("sqlite://", "sqlite+aiosqlite://"),
        # Explicit SQLAlchemy async URLs are used as given.
        ("postgresql+asyncpg://u@h/app", "postgresql+asyncpg://u@h/app"),
        ("mysql+asyncmy://u@h/app", "mysql+asyncmy://u@h/app"),
        ("mysql+aiomysql://u@h/app", "mysql+aiomysql://u@h/app"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_database_url_picks_the_async_driver(plain: str, expected: str) -> None:
    assert to_async_url(plain).render_as_string(hide_password=False) == expected
    rendered = Settings(database_url=plain).async_url().render_as_string(hide_password=False)
    assert rendered == expected


def test_postgres_url_keeps_every_part() -> None:
    url = to_async_url("postgres://u:p%40ss@db.example:5433/app?ssl=require")
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "u",
        "p@ss",
        "db.example",
        5433,
        "app",
    )
    assert dict(url.query) == {"ssl": "require"}


def test_relative_sqlite_path_stays_relative_to_the_working_directory() -> None:
    default = Settings().async_url()
    assert default.render_as_string() == "sqlite+aiosqlite:///inkgraph.db"
    assert sqlite_path(default) == Path("inkgraph.db")
    assert sqlite_path(to_async_url("sqlite:///data/rel.db")) == Path("data/rel.db")
    assert sqlite_path(to_async_url("sqlite:////abs/x.db")) == Path("/abs/x.db")


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///:memory:", "postgresql://u@h/db", "mysql://u@h/db"]
)
def test_sqlite_path_is_none_without_a_file(url: str) -> None:
    assert sqlite_path(to_async_url(url)) is None


@pytest.mark.parametrize("url", ["oracle://u@h/db", "mssql://u@h/db", "redis://h", "http://h/db"])
def test_unsupported_scheme_is_refused_with_the_supported_ones(url: str) -> None:
    with pytest.raises(ValueError, match=r"unsupported database URL scheme.*postgresql://"):
        to_async_url(url)
    with pytest.raises(ValueError, match="unsupported database URL scheme"):
        Settings(database_url=url)  # refused when the setting is read, not at first use


def test_garbage_url_is_refused() -> None:
    with pytest.raises(ValueError, match="not a database URL"):
        Settings(database_url="not a url")


def test_settings_come_from_the_environment_and_explicit_values_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://env@h/db")
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("PORT", "9001")
    from_env = Settings()
    assert (from_env.database_url, from_env.host, from_env.port) == (
        "postgresql://env@h/db",
        "0.0.0.0",
        9001,
    )
    explicit = Settings(database_url="sqlite:///flag.db", port=9002)
    assert (explicit.database_url, explicit.port) == ("sqlite:///flag.db", 9002)


def test_defaults() -> None:
    settings = Settings()
    assert (settings.database_url, settings.host, settings.port) == (
        "sqlite:///inkgraph.db",
        "127.0.0.1",
        8000,
    )


@pytest.mark.parametrize("port", ["0", "65536", "http"])
def test_bad_port_is_refused(monkeypatch: pytest.MonkeyPatch, port: str) -> None:
    monkeypatch.setenv("PORT", port)
    with pytest.raises(ValueError, match="port"):
        Settings()


def test_serve_tunes_the_garbage_collector() -> None:
    import gc

    from server.cli import tune_gc

    saved = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold() == (10_000, 20, 100)
        assert gc.get_freeze_count() > 0  # start-up objects are out of the collector's sight
    finally:
        gc.unfreeze()
        gc.set_threshold(*saved)


@pytest.mark.parametrize(
    "url", ["sqlite:///pool.db", "postgresql://u@127.0.0.1/db", "mysql://u@127.0.0.1/db"]
)
def test_pool_is_sized_from_settings(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.store.engine import make_engine

    monkeypatch.chdir(tmp_path)
    engine = make_engine(Settings(database_url=url, db_pool_size=7, db_max_overflow=3))
    assert engine.pool.size() == 7  # type: ignore[attr-defined]
    assert engine.pool._max_overflow == 3  # type: ignore[attr-defined]
