"""Cached loader statements run straight on asyncpg, with SQLAlchemy Core only compiling them.

Going through `AsyncConnection.execute` costs a greenlet switch, a compile-cache lookup, an
execution context and a `Row` per row: on the peer race's Q5 (two statements) that was 35-40 %
of the request's CPU, asyncpg's own work 10 %. The loaders' hot statements are built once and
cached (`loaders/batch.py`, `lru_cache`): the statement builders mark them `reusable()`, and on
PostgreSQL with asyncpg `Database.fetch` runs them with `driver.fetch(sql, *args)` on the
request's pooled connection (asyncpg keeps its own prepared-statement cache), compiling each
statement once per dialect here.

What a `RawStatement` keeps from the compilation, and why its answers are SQLAlchemy's:

- the SQL text SQLAlchemy itself would send (the asyncpg dialect's `$n` style, with its casts);
- one argument per `$n` in `compiled.positiontup` order: a value bound into the statement (a
  page size + 1, a filter value) is taken and bind-processed once; a parameter left unvalued
  (`keys`) is taken from the call's parameters and passed through its bind processor each time;
- a `namedtuple` row class with the result's column names and a `_mapping` property: what the
  consumers use of a `Row` (`row[i]`, `row._fields`, `row.title`, `row._mapping["id"]`);
- values as asyncpg decodes them, which is what SQLAlchemy hands out too when no column has a
  result processor on this dialect (UTCDateTime has none on asyncpg: loaders/dialect.py).

A statement is not run raw (`compile_raw` gives None, and it takes SQLAlchemy's path, for good)
when any of its result columns has a result processor, when it has expanding or literal-execute
parameters (rendered per call), or when its column names cannot be a namedtuple's fields.

Connection events: the raw path sends no `before_cursor_execute` / `after_cursor_execute`, so
whenever the connection has any event listener (`Connection._has_events`: the statement
counters of tests/ and bench/, the statement swaps of tests/test_cancellation.py) or echoes SQL,
`Database.fetch` takes SQLAlchemy's path instead. A listener then sees every statement, real
and unchanged, exactly as before; the raw path is proven by its own tests
(tests/loaders/test_rawpg.py) and by every test that runs without listeners.

Private APIs (SQLAlchemy 2.1.9, asyncpg 0.32.0): `SQLCompiler.positiontup`,
`SQLCompiler._bind_processors`, `post_compile_params` / `literal_execute_params`,
`_result_columns`, `TypeEngine._cached_result_processor`, `Connection._has_events` / `_echo`,
and `connection.sync_connection.connection.driver_connection` (the asyncpg connection, via
`Database._remember_driver`). tests/loaders/test_rawpg.py compares raw rows with SQLAlchemy's.
"""

import keyword
import weakref
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Executable
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

S = TypeVar("S", bound=Executable)


@dataclass(frozen=True, slots=True)
class RawStatement:
    sql: str
    # Per `$n`: (name of a run-time parameter, its bind processor) or (None, the value).
    arguments: tuple[tuple[str | None, Any], ...]
    row: type[tuple[Any, ...]]
    make_row: Callable[[Any], tuple[Any, ...]]

    def args(self, parameters: Mapping[str, Any] | None) -> list[Any]:
        out = []
        for name, value in self.arguments:
            if name is None:
                out.append(value)
            else:
                assert parameters is not None
                given = parameters[name]
                out.append(given if value is None else value(given))
        return out

    def rows(self, records: Sequence[Any]) -> list[tuple[Any, ...]]:
        return list(map(self.make_row, records))


# Per reusable statement, its raw form for each dialect it ran on (None: not fit to run raw).
# Several engines (tests, bench) have dialects of their own: each keeps its compilation.
_Compiled = weakref.WeakKeyDictionary[Dialect, "RawStatement | None"]
_REUSABLE: weakref.WeakKeyDictionary[Executable, _Compiled] = weakref.WeakKeyDictionary()


def reusable(statement: S) -> S:
    """Mark a statement that is built once and run many times (a cached one): on asyncpg,
    `Database.fetch` may then run it raw. Returns the statement."""
    if statement not in _REUSABLE:
        _REUSABLE[statement] = weakref.WeakKeyDictionary()
    return statement


def raw_statement(statement: Executable, dialect: Dialect) -> RawStatement | None:
    """The raw form of a `reusable` statement for `dialect`, compiled at its first use; None
    for a statement not marked reusable or not fit to run raw."""
    compiled = _REUSABLE.get(statement)
    if compiled is None:
        return None
    try:
        return compiled[dialect]
    except KeyError:
        raw = compiled[dialect] = compile_raw(statement, dialect)
        return raw


def _mapping(row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(row._fields, row, strict=True))  # type: ignore[attr-defined]


def compile_raw(statement: Executable, dialect: Dialect) -> RawStatement | None:
    """Compile `statement` for `dialect` into what asyncpg runs; None when it must not run raw."""
    if not isinstance(statement, ClauseElement):
        return None
    compiled = statement.compile(dialect=dialect)
    if not isinstance(compiled, SQLCompiler) or compiled.positiontup is None:
        return None
    if compiled.post_compile_params or compiled.literal_execute_params:
        return None
    names = [column[0] for column in compiled._result_columns]
    if not names or len(set(names)) != len(names):
        return None
    if any(not n.isidentifier() or keyword.iskeyword(n) or n.startswith("_") for n in names):
        return None
    for column in compiled._result_columns:
        if column[3]._cached_result_processor(dialect, None) is not None:
            return None
    processors: Mapping[str, Any] = compiled._bind_processors
    bound = compiled.construct_params(_check=False)
    # Left unvalued when the statement was built (`bindparam("keys")`): given at each call.
    unvalued = {name for name, bind in compiled.binds.items() if bind.required}
    arguments: list[tuple[str | None, Any]] = []
    for name in compiled.positiontup:
        processor = processors.get(name)
        if name in unvalued:
            arguments.append((name, processor))
        else:
            value = bound[name]
            arguments.append((None, value if processor is None else processor(value)))
    row = namedtuple("RawRow", names)  # type: ignore[misc]
    row._mapping = property(_mapping)  # type: ignore[attr-defined]
    return RawStatement(compiled.string, tuple(arguments), row, partial(tuple.__new__, row))
