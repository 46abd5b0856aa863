"""Filter conditions as SQL that behaves identically on SQLite, PostgreSQL and MariaDB.

- `eq` / `in` compare exactly: the text columns carry binary collations (see loaders/dialect.py),
  so case and trailing spaces count everywhere.
- `contains` / `starts_with` fold case the way Python's `str.lower()` does, for non-ASCII letters
  too, and match `%`, `_` and `\\` literally. The value is lowered in Python; the column is
  lowered in SQL by `fold_case`, which each dialect renders with a function that folds all of
  Unicode: SQLite's own `lower()` folds ASCII only, so SQLite gets `py_lower` (registered on every
  connection by server/store/engine.py); PostgreSQL's `lower()` under the "C" collation is ASCII-
  only too, so it lowers under the ICU root collation. MariaDB's `lower()` under the columns'
  binary collation uses old Unicode case data (it leaves e.g. "Ⱥ" or "Ԁ" alone), so on MariaDB >=
  10.10 it lowers under a UCA 14.0 collation and compares the result binary again; "İ" is spelled
  out first as "i" + U+0307, as Python's full case mapping (and ICU's) does. One difference
  remains on MariaDB: its lower() knows no context, so a word-final "Σ" becomes "σ" where Python
  gives "ς".
- SQLite runs `contains` / `starts_with` as `instr` / `substr` on the folded text instead of
  LIKE: the same answer with no wildcards to escape and no pattern length limit (SQLite refuses
  LIKE patterns over 50,000 bytes).
- `in` stays one bind parameter on PostgreSQL (`= ANY(array)`), whatever the number of values:
  asyncpg caps a statement at 32,767 parameters and an expanding IN binds one per value.
- No stored text holds U+0000 (PostgreSQL cannot store it at all), so a value holding it matches
  nothing, on every backend, rather than failing (PostgreSQL) or truncating the pattern (SQLite).

Functions taking `dialect_name` use it only to pick among these renderings.
"""

from collections.abc import Sequence
from typing import Any, assert_never

from sqlalchemy import (
    Column,
    ColumnElement,
    Integer,
    String,
    Table,
    and_,
    any_,
    bindparam,
    false,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from loaders.specs import Condition

LIKE_ESCAPE = "/"  # not backslash: MariaDB treats backslash specially in string literals
# No stored text holds U+0000 (PostgreSQL cannot, and writes refuse it on every backend), so a
# condition or key containing it matches nothing, without sending it to the database.
NUL = "\x00"
MYSQL_BINARY_COLLATION = "utf8mb4_nopad_bin"  # the text columns' own (loaders/dialect.py)
# "İ" (U+0130) in, "i" + U+0307 out: Python's str.lower() (full case mapping) of "İ".
_MYSQL_DOTTED_I = "_utf8mb4 X'C4B0', _utf8mb4 X'69CC87'"


class fold_case(FunctionElement[str]):
    type = String()
    inherit_cache = True


@compiles(fold_case)
def _fold_default(element: fold_case, compiler: SQLCompiler, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(fold_case, "sqlite")
def _fold_sqlite(element: fold_case, compiler: SQLCompiler, **kw: Any) -> str:
    return f"py_lower({compiler.process(element.clauses, **kw)})"


@compiles(fold_case, "postgresql")
def _fold_postgresql(element: fold_case, compiler: SQLCompiler, **kw: Any) -> str:
    return f'lower(({compiler.process(element.clauses, **kw)}) COLLATE "und-x-icu")'


def _mysql_case_collation(dialect: Dialect) -> str | None:
    """A collation whose case mapping is Unicode 14.0 (MariaDB 10.10+), if the server has one."""
    is_mariadb = getattr(dialect, "is_mariadb", False)
    version = dialect.server_version_info or ()
    return "utf8mb4_uca1400_as_cs" if is_mariadb and version >= (10, 10) else None


@compiles(fold_case, "mysql")
@compiles(fold_case, "mariadb")
def _fold_mysql(element: fold_case, compiler: SQLCompiler, **kw: Any) -> str:
    text = f"replace({compiler.process(element.clauses, **kw)}, {_MYSQL_DOTTED_I})"
    collation = _mysql_case_collation(compiler.dialect)
    if collation is None:
        return f"lower({text})"
    return f"lower({text} COLLATE {collation}) COLLATE {MYSQL_BINARY_COLLATION}"


def escape_like(value: str) -> str:
    """Escape LIKE's wildcards so that they match themselves."""
    return (
        value.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )


def one_of(column: Column[Any], values: Sequence[Any], dialect_name: str) -> ColumnElement[bool]:
    """`column IN values` in one statement for any number of values ([] matches nothing)."""
    if not values:
        return false()
    if dialect_name == "postgresql":
        element = String() if isinstance(values[0], str) else Integer()
        return column == any_(bindparam(None, list(values), type_=ARRAY(element)))
    return column.in_(bindparam(None, list(values), expanding=True))


def _folded_contains(column: Column[Any], needle: str, dialect_name: str) -> ColumnElement[bool]:
    if dialect_name == "sqlite":
        return func.instr(fold_case(column), needle) > 0
    return fold_case(column).like(f"%{escape_like(needle)}%", escape=LIKE_ESCAPE)


def _folded_starts_with(column: Column[Any], prefix: str, dialect_name: str) -> ColumnElement[bool]:
    if dialect_name == "sqlite":
        return func.substr(fold_case(column), 1, len(prefix)) == prefix
    return fold_case(column).like(f"{escape_like(prefix)}%", escape=LIKE_ESCAPE)


def predicate(table: Table, condition: Condition, dialect_name: str = "") -> ColumnElement[bool]:
    """The SQL for one condition on a column of `table`, as run on `dialect_name`."""
    column = table.c[condition.column]
    value = condition.value
    if isinstance(value, str) and NUL in value:
        return false()
    match condition.op:
        case "eq":
            return column == value
        case "in":
            assert isinstance(value, tuple)
            values = [v for v in value if not (isinstance(v, str) and NUL in v)]
            return one_of(column, values, dialect_name)
        case "contains":
            assert isinstance(value, str)
            return _folded_contains(column, value.lower(), dialect_name)
        case "starts_with":
            assert isinstance(value, str)
            return _folded_starts_with(column, value.lower(), dialect_name)
        case "gt":
            return column > value
        case "gte":
            return column >= value
        case "lt":
            return column < value
        case "lte":
            return column <= value
        case _:  # mypy fails here when an operator of `Op` has no SQL above
            assert_never(condition.op)


def predicates(
    table: Table, conditions: tuple[Condition, ...], dialect_name: str = ""
) -> list[ColumnElement[bool]]:
    """All conditions must hold (an empty list filters nothing)."""
    return [predicate(table, c, dialect_name) for c in conditions]


def all_of(
    table: Table, conditions: tuple[Condition, ...], dialect_name: str = ""
) -> ColumnElement[bool]:
    return and_(*predicates(table, conditions, dialect_name))
