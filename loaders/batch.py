"""Batch functions: one SQL statement for a whole batch of keys, results in key order.

Each function takes the keys aiodataloader collected in one tick and returns one result per
key, in the same order (missing rows give None, an empty page or 0), as the DataLoader contract
requires. `registry.py` binds the leading arguments with `functools.partial`.
"""

from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Integer,
    Row,
    Select,
    Table,
    any_,
    bindparam,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY

from loaders.database import Database
from loaders.filters import NUL, one_of, predicates
from loaders.keyset import beyond, order_by
from loaders.rawpg import reusable
from loaders.relations import Relation
from loaders.specs import EMPTY_PAGE, Condition, Page, PageSpec

ROW_NUMBER = "_inkgraph_rn"


def public_columns(table: Table) -> list[Column[Any]]:
    """The columns a loader may read: all but those marked `info={"private": True}`.

    A password hash is such a column; keeping it out of every loader's SELECT means no resolver
    can ever see it, whatever a future GraphQL type declares.
    """
    return [c for c in table.columns if not c.info.get("private")]


def key_in(column: Column[Any], keys: Sequence[Any], dialect_name: str) -> ColumnElement[bool]:
    """`column IN keys` that stays one statement for any number of keys.

    asyncpg caps a statement at 32,767 bind parameters and an expanding IN binds one per key,
    so PostgreSQL gets a single array parameter (`= ANY($1)`). Elsewhere integer keys are
    rendered inline (`literal_execute`), which avoids SQLite's variable limit; text keys (a
    username from the request) are always bound, never rendered into the SQL, and one holding
    U+0000 is dropped, as no stored text can hold it (see loaders/filters.py).
    """
    if keys and all(isinstance(k, int) for k in keys):
        if dialect_name == "postgresql":
            return column == any_(bindparam("keys", list(keys), type_=ARRAY(Integer())))
        return column.in_(bindparam("keys", list(keys), expanding=True, literal_execute=True))
    return one_of(column, [k for k in keys if not (isinstance(k, str) and NUL in k)], dialect_name)


def _int_keys(keys: Sequence[Any]) -> bool:
    return bool(keys) and all(type(k) is int for k in keys)


def keys_parameter(column: Column[Any], dialect_name: str) -> ColumnElement[bool]:
    """`key_in` for integer keys with the keys left out: the statement is built once and
    cached, and the keys are passed when it runs (`{"keys": [...]}`). Building a page
    statement costs more than running it on a small batch; the SQL is the same."""
    if dialect_name == "postgresql":
        return column == any_(bindparam("keys", type_=ARRAY(Integer())))
    return column.in_(bindparam("keys", expanding=True, literal_execute=True))


def _window_conditions(
    table: Table, spec: PageSpec, dialect_name: str
) -> list[ColumnElement[bool]]:
    conditions = predicates(table, spec.filter, dialect_name)
    if spec.after is not None:
        conditions.append(beyond(table, spec.order, spec.after, forward=True))
    if spec.before is not None:
        conditions.append(beyond(table, spec.order, spec.before, forward=False))
    return conditions


def _to_page(rows: Sequence[Row[Any]], spec: PageSpec) -> Page:
    """Trim the one extra row fetched to learn whether more exist, and restore display order."""
    more = len(rows) > spec.size
    rows = rows[: spec.size]
    if spec.backwards:
        return Page(rows=rows[::-1], has_next=False, has_previous=more)
    return Page(rows=rows, has_next=more, has_previous=False)


async def load_by_column(
    db: Database, column: Column[Any], keys: Sequence[Any]
) -> list[Row[Any] | None]:
    """Rows by a unique column (usually the primary key): one `WHERE col IN (...)` per batch."""
    if _int_keys(keys):
        rows = await db.fetch(_by_column_statement(column, db.dialect_name), {"keys": list(keys)})
    else:
        statement = select(*public_columns(column.table)).where(
            key_in(column, keys, db.dialect_name)
        )
        rows = await db.fetch(statement)
    index = rows[0]._fields.index(column.name) if rows else 0
    by_key = {row[index]: row for row in rows}
    return [by_key.get(k) for k in keys]


@lru_cache(maxsize=256)
def _by_column_statement(column: Column[Any], dialect_name: str) -> Select[Any]:
    table = column.table
    return reusable(select(*public_columns(table)).where(keys_parameter(column, dialect_name)))


# Per-parent pages in one statement.
#
#   SELECT … FROM (
#       SELECT t.*, ROW_NUMBER() OVER (PARTITION BY t.fk ORDER BY t.sort, t.id) AS rn
#       FROM t WHERE t.fk IN (:parents) AND <filter> AND <after/before keyset predicate>
#   ) WHERE rn <= :size + 1
#
# The window numbers each parent's rows separately, so every parent gets its own first `size`
# rows from a single statement, whatever the number of parents. One extra row per parent tells
# whether a next (or, reading backwards with `last`, a previous) page exists. The keyset
# predicate is shared by every parent of the batch: on a nested connection a cursor is a
# position in the sort order, not a row of one parent.
def page_statement(
    relation: Relation, spec: PageSpec, keys: Sequence[Any], dialect_name: str
) -> Select[Any]:
    return _page_select(
        relation, spec, key_in(relation.remote_column, keys, dialect_name), dialect_name
    )


@lru_cache(maxsize=512)
def _page_template(relation: Relation, spec: PageSpec, dialect_name: str) -> Select[Any]:
    """`page_statement` for integer keys passed at run time (see `keys_parameter`)."""
    return reusable(
        _page_select(
            relation, spec, keys_parameter(relation.remote_column, dialect_name), dialect_name
        )
    )


def _page_select(
    relation: Relation, spec: PageSpec, keys_clause: ColumnElement[bool], dialect_name: str
) -> Select[Any]:
    table, fk = relation.target, relation.remote_column
    rn = (
        func.row_number()
        .over(partition_by=fk, order_by=order_by(table, spec.order, reverse=spec.backwards))
        .label(ROW_NUMBER)
    )
    inner = (
        select(*public_columns(table), rn)
        .where(keys_clause, *_window_conditions(table, spec, dialect_name))
        .subquery("page")
    )
    return (
        select(*(inner.c[c.name] for c in public_columns(table)))
        .where(inner.c[ROW_NUMBER] <= spec.size + 1)
        .order_by(inner.c[fk.name], inner.c[ROW_NUMBER])
    )


async def load_pages(
    db: Database, relation: Relation, spec: PageSpec, keys: Sequence[Any]
) -> list[Page]:
    """One page of `relation` for every parent key in `keys`."""
    if _int_keys(keys):
        statement = _page_template(relation, spec, db.dialect_name)
        rows = await db.fetch(statement, {"keys": list(keys)})
    else:
        rows = await db.fetch(page_statement(relation, spec, keys, db.dialect_name))
    grouped: dict[Any, list[Row[Any]]] = defaultdict(list)
    if rows:
        # By position: the key column's index is the same for every row of one result, and
        # indexing a row is several times cheaper than `row._mapping[name]`.
        index = rows[0]._fields.index(relation.remote_column.name)
        for row in rows:
            grouped[row[index]].append(row)
    return [_to_page(grouped[k], spec) if k in grouped else EMPTY_PAGE for k in keys]


async def load_counts(
    db: Database, relation: Relation, conditions: tuple[Condition, ...], keys: Sequence[Any]
) -> list[int]:
    """How many rows of `relation` each parent has under `conditions`: one GROUP BY."""
    if _int_keys(keys):
        statement = _count_statement(relation, conditions, db.dialect_name, None)
        rows = await db.fetch(statement, {"keys": list(keys)})
    else:
        rows = await db.fetch(_count_statement(relation, conditions, db.dialect_name, keys))
    counts = {row[0]: int(row[-1]) for row in rows}  # (key, n)
    return [counts.get(k, 0) for k in keys]


@lru_cache(maxsize=256)
def _cached_count_statement(
    relation: Relation, conditions: tuple[Condition, ...], dialect_name: str
) -> Select[Any, int]:
    return reusable(
        _count_select(
            relation, conditions, keys_parameter(relation.remote_column, dialect_name), dialect_name
        )
    )


def _count_statement(
    relation: Relation,
    conditions: tuple[Condition, ...],
    dialect_name: str,
    keys: Sequence[Any] | None,
) -> Select[Any, int]:
    if keys is None:
        return _cached_count_statement(relation, conditions, dialect_name)
    clause = key_in(relation.remote_column, keys, dialect_name)
    return _count_select(relation, conditions, clause, dialect_name)


def _count_select(
    relation: Relation,
    conditions: tuple[Condition, ...],
    keys_clause: ColumnElement[bool],
    dialect_name: str,
) -> Select[Any, int]:
    table, fk = relation.target, relation.remote_column
    statement: Select[Any, int] = (
        select(fk.label("key"), func.count().label("n"))
        .where(keys_clause, *predicates(table, conditions, dialect_name))
        .group_by(fk)
    )
    return statement


async def load_root_page(db: Database, table: Table, spec: PageSpec) -> Page:
    """A page of a whole table (a root connection): one plain ORDER BY … LIMIT size + 1."""
    return _to_page(await db.fetch(_root_page_statement(table, spec, db.dialect_name)), spec)


@lru_cache(maxsize=512)
def _root_page_statement(table: Table, spec: PageSpec, dialect_name: str) -> Select[Any]:
    return reusable(
        select(*public_columns(table))
        .where(*_window_conditions(table, spec, dialect_name))
        .order_by(*order_by(table, spec.order, reverse=spec.backwards))
        .limit(spec.size + 1)
    )


async def load_root_count(db: Database, table: Table, conditions: tuple[Condition, ...]) -> int:
    ((count,),) = await db.fetch(_root_count_statement(table, conditions, db.dialect_name))
    return int(count)


@lru_cache(maxsize=256)
def _root_count_statement(
    table: Table, conditions: tuple[Condition, ...], dialect_name: str
) -> Select[Any]:
    return reusable(
        select(func.count()).select_from(table).where(*predicates(table, conditions, dialect_name))
    )
