"""Column types that behave the same on SQLite, PostgreSQL and MariaDB.

- `Text(n)`: code-point ordering and exact comparison everywhere — `COLLATE "C"` on PostgreSQL,
  `utf8mb4` with the binary no-pad collation on MariaDB (trailing spaces count), SQLite's BINARY.
- `UTCDateTime`: timezone-aware UTC in Python on every backend, microseconds kept. PostgreSQL
  stores `timestamptz`; MariaDB `DATETIME(6)` and SQLite hold naive UTC.
- `utcnow()`: the server-side default for `created_at`, so plain SQL inserts get a UTC timestamp.
"""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, String, Text as SAText
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator, TypeEngine

MARIADB_COLLATION = "utf8mb4_nopad_bin"


def Text(length: int) -> TypeEngine[str]:
    """A text column of at most `length` characters with binary, code-point semantics."""
    if length > 1000:
        base: TypeEngine[str] = SAText(collation="C")
        on_mysql: TypeEngine[str] = mysql.TEXT(charset="utf8mb4", collation=MARIADB_COLLATION)
    else:
        base = String(length, collation="C")
        on_mysql = mysql.VARCHAR(length, charset="utf8mb4", collation=MARIADB_COLLATION)
    # SQLite ignores the length and the "C" collation name would be unknown there; its
    # default BINARY collation already is code-point order.
    return base.with_variant(on_mysql, "mysql", "mariadb").with_variant(String(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in {"mysql", "mariadb"}:
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: inkgraph stores instants, give a timezone")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        # asyncpg decodes timestamptz (binary protocol) as an aware datetime in UTC, whatever
        # the session's TimeZone: nothing to convert, and the per-value call was a measurable
        # share of a large page's CPU (1,100 values for 100 users with their posts).
        if dialect.name == "postgresql" and dialect.driver == "asyncpg":
            return None
        return super().result_processor(dialect, coltype)

    def process_result_value(
        self,
        value: datetime | None,
        dialect: Dialect,  # noqa: ARG002 - TypeDecorator's signature
    ) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class utcnow(FunctionElement[datetime]):
    """Current UTC time with microseconds, as a server-side default."""

    type = UTCDateTime()
    inherit_cache = True


@compiles(utcnow)
def _utcnow_default(_element: utcnow, _compiler: SQLCompiler, **_kw: Any) -> str:
    return "CURRENT_TIMESTAMP"


@compiles(utcnow, "postgresql")
def _utcnow_pg(_element: utcnow, _compiler: SQLCompiler, **_kw: Any) -> str:
    return "now()"


@compiles(utcnow, "mysql")
@compiles(utcnow, "mariadb")
def _utcnow_mysql(_element: utcnow, _compiler: SQLCompiler, **_kw: Any) -> str:
    return "(UTC_TIMESTAMP(6))"


@compiles(utcnow, "sqlite")
def _utcnow_sqlite(_element: utcnow, _compiler: SQLCompiler, **_kw: Any) -> str:
    # Same text layout SQLAlchemy writes for SQLite datetimes, so values sort as strings.
    return "(strftime('%Y-%m-%d %H:%M:%f000', 'now'))"


def now() -> datetime:
    """The Python-side twin of `utcnow()`."""
    return datetime.now(UTC)
