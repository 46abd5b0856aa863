"""The DataLoader contract of every batch function, on every backend, with no GraphQL.

For every relationship on the SQLModel tables: one result per key in key order, missing keys
give None / an empty page / 0, duplicate keys are fine, and a whole batch is ONE statement —
also past asyncpg's 32,767 bind-parameter limit. Expected values come from a plain
`SELECT * FROM target` grouped in Python, so the batch SQL is checked against the simplest
possible reading of the same rows.
"""

import asyncio
from collections import defaultdict
from typing import Any

import pytest
from sqlalchemy import Row, Table, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapper
from sqlmodel import SQLModel

import server.store.models
from loaders import EMPTY_PAGE, Database, Loaders, Order, PageSpec, Relation, primary_key
from loaders.batch import load_by_column, load_counts, load_pages, load_root_page
from server.store.models import table_of
from tests.support.sqlcount import count_statements


def _model(mapper: Mapper[Any]) -> type:
    model: type = mapper.class_  # mypy sees `type[Any]` as not Hashable (Relation.of's cache)
    return model


RELATIONS = sorted(
    (
        Relation.of(_model(mapper), prop.key)
        for mapper in SQLModel._sa_registry.mappers
        for prop in mapper.relationships
    ),
    key=lambda relation: relation.name,
)
ONE_TO_MANY = [pytest.param(r, id=r.name) for r in RELATIONS if r.many]
MANY_TO_ONE = [pytest.param(r, id=r.name) for r in RELATIONS if not r.many]

MISSING = (0, 987_654)  # keys no row has
HUGE = 40_000  # more keys than asyncpg's 32,767 bind parameters


async def all_rows(engine: AsyncEngine, table: Table) -> list[Row[Any]]:
    async with engine.connect() as connection:
        result = await connection.execute(select(table).order_by(primary_key(table)))
        return list(result.all())


def pk_of(row: Row[Any] | None) -> int | None:
    return None if row is None else row._mapping["id"]


async def children_by_parent(engine: AsyncEngine, relation: Relation) -> dict[Any, list[int]]:
    """Child ids of each parent key, in id order: the reference for pages and counts."""
    grouped: dict[Any, list[int]] = defaultdict(list)
    for row in await all_rows(engine, relation.target):
        grouped[row._mapping[relation.remote_column.name]].append(row._mapping["id"])
    return grouped


def keys_for(parent_ids: list[int]) -> list[int]:
    """Every parent, in reverse order, with missing keys and duplicates mixed in."""
    reverse = parent_ids[::-1]
    return [*reverse[:2], MISSING[0], *reverse[2:], reverse[0], MISSING[1], reverse[-1]]


# ---------------------------------------------------------------------------- one-to-many


@pytest.mark.parametrize("relation", ONE_TO_MANY)
@pytest.mark.parametrize(
    "spec", [PageSpec(first=3), PageSpec(last=2), PageSpec(first=0)], ids=["first3", "last2", "0"]
)
async def test_pages_in_key_order(
    engine: AsyncEngine, db: Database, relation: Relation, spec: PageSpec
) -> None:
    children = await children_by_parent(engine, relation)
    parents = [pk_of(row) for row in await all_rows(engine, relation.parent)]
    keys = keys_for(parents)  # type: ignore[arg-type]
    assert any(len(children[k]) > spec.size for k in parents), "data set too small to page"

    with count_statements(engine) as statements:
        pages = await load_pages(db, relation, spec, keys)
    assert len(statements) == 1, statements.listing()

    assert len(pages) == len(keys)
    for key, page in zip(keys, pages, strict=True):
        ids = children.get(key, [])
        if not ids:
            assert page == EMPTY_PAGE, key
            continue
        if spec.backwards:
            assert [pk_of(r) for r in page.rows] == ids[-spec.size :][: spec.size], key
            assert (page.has_previous, page.has_next) == (len(ids) > spec.size, False), key
        else:
            assert [pk_of(r) for r in page.rows] == ids[: spec.size], key
            assert (page.has_next, page.has_previous) == (len(ids) > spec.size, False), key


@pytest.mark.parametrize("relation", ONE_TO_MANY)
async def test_counts_in_key_order(engine: AsyncEngine, db: Database, relation: Relation) -> None:
    children = await children_by_parent(engine, relation)
    parents = [pk_of(row) for row in await all_rows(engine, relation.parent)]
    keys = keys_for(parents)  # type: ignore[arg-type]
    with count_statements(engine) as statements:
        counts = await load_counts(db, relation, (), keys)
    assert len(statements) == 1, statements.listing()
    assert counts == [len(children.get(k, [])) for k in keys]
    assert 0 in counts  # the missing keys at least


@pytest.mark.parametrize("relation", ONE_TO_MANY)
async def test_loaders_batch_every_parent_into_one_statement(
    engine: AsyncEngine, db: Database, relation: Relation
) -> None:
    children = await children_by_parent(engine, relation)
    parents = await all_rows(engine, relation.parent)
    loaders = Loaders(db)
    spec = PageSpec(order=Order("id", descending=True), first=2)
    with count_statements(engine) as statements:
        pages = await asyncio.gather(*(loaders.page(relation, p, spec) for p in parents))
    assert len(statements) == 1, statements.listing()
    with count_statements(engine) as statements:
        counts = await asyncio.gather(*(loaders.count(relation, p) for p in parents))
    assert len(statements) == 1, statements.listing()

    for parent, page, count in zip(parents, pages, counts, strict=True):
        ids = children.get(parent._mapping[relation.local_column.name], [])
        assert [pk_of(r) for r in page.rows] == ids[::-1][:2]
        assert count == len(ids)


@pytest.mark.parametrize("relation", ONE_TO_MANY)
async def test_huge_batch_of_parents_is_one_statement(
    engine: AsyncEngine, db: Database, relation: Relation
) -> None:
    children = await children_by_parent(engine, relation)
    keys = list(range(1, HUGE + 1))
    with count_statements(engine) as statements:
        pages = await load_pages(db, relation, PageSpec(first=1), keys)
        counts = await load_counts(db, relation, (), keys)
    assert len(statements) == 2, statements.listing()
    assert [[pk_of(r) for r in page.rows] for page in pages] == [
        children.get(k, [])[:1] for k in keys
    ]
    assert counts == [len(children.get(k, [])) for k in keys]


# ---------------------------------------------------------------------------- many-to-one


@pytest.mark.parametrize("relation", MANY_TO_ONE)
async def test_rows_by_key_in_key_order(
    engine: AsyncEngine, db: Database, relation: Relation
) -> None:
    targets = [pk_of(row) for row in await all_rows(engine, relation.target)]
    keys = keys_for(targets)  # type: ignore[arg-type]
    with count_statements(engine) as statements:
        rows = await load_by_column(db, relation.remote_column, keys)
    assert len(statements) == 1, statements.listing()
    assert [pk_of(row) for row in rows] == [None if k in MISSING else k for k in keys]


@pytest.mark.parametrize("relation", MANY_TO_ONE)
async def test_loaders_one_for_every_child_is_one_statement(
    engine: AsyncEngine, db: Database, relation: Relation
) -> None:
    children = await all_rows(engine, relation.parent)
    fk = relation.local_column.name
    loaders = Loaders(db)
    with count_statements(engine) as statements:
        rows = await asyncio.gather(*(loaders.one(relation, child) for child in children))
    assert len(statements) == (1 if any(c._mapping[fk] is not None for c in children) else 0)
    assert [pk_of(row) for row in rows] == [child._mapping[fk] for child in children]


async def test_null_foreign_key_gives_none_without_a_statement(
    engine: AsyncEngine, db: Database
) -> None:
    author = Relation.of(server.store.models.Comment, "author")
    orphans = [c for c in await all_rows(engine, author.parent) if c._mapping["author_id"] is None]
    assert orphans, "the data set should hold comments without an author"
    with count_statements(engine) as statements:
        assert await Loaders(db).one(author, orphans[0]) is None
    assert statements == []


@pytest.mark.parametrize("relation", MANY_TO_ONE)
async def test_huge_batch_of_ids_is_one_statement(
    engine: AsyncEngine, db: Database, relation: Relation
) -> None:
    existing = {pk_of(row) for row in await all_rows(engine, relation.target)}
    keys = list(range(HUGE, 0, -1))
    loaders = Loaders(db)
    with count_statements(engine) as statements:
        rows = await asyncio.gather(*(loaders.by_id(relation.target).load(k) for k in keys))
    assert len(statements) == 1, statements.listing()
    assert [pk_of(row) for row in rows] == [k if k in existing else None for k in keys]


# ---------------------------------------------------------------------------- unique text column


async def test_rows_by_a_text_column(engine: AsyncEngine, db: Database) -> None:
    users: Table = table_of(server.store.models.User)
    names = [row._mapping["username_key"] for row in await all_rows(engine, users)]
    keys = [names[-1], "nobody", *names, names[0], "NOBODY"]
    with count_statements(engine) as statements:
        rows = await load_by_column(db, users.c.username_key, keys)
    assert len(statements) == 1, statements.listing()
    found = [None if row is None else row._mapping["username_key"] for row in rows]
    assert found == [None if k in ("nobody", "NOBODY") else k for k in keys]


# ---------------------------------------------------------------------------- private columns


async def test_no_loader_reads_a_password_hash(engine: AsyncEngine, db: Database) -> None:
    """A column marked private (the password hash) is in no loader's SELECT, nor its rows."""
    users: Table = table_of(server.store.models.User)
    posts = Relation.of(server.store.models.User, "posts")
    user = Relation.of(server.store.models.Post, "user")
    ids = [pk_of(row) for row in await all_rows(engine, users)]
    loaders = Loaders(db)
    with count_statements(engine) as statements:
        by_id = await loaders.by_id(users).load_many(ids)
        by_fk = await load_by_column(db, user.remote_column, ids)
        root = await load_root_page(db, users, PageSpec(first=5))
        await load_pages(db, posts, PageSpec(first=2), ids)
    assert len(statements) == 4
    assert all("password_hash" not in sql for sql in statements), statements.listing()
    assert [pk_of(r) for r in by_id] == ids
    assert [pk_of(r) for r in by_fk] == ids
    for row in [*by_id, *by_fk, *root.rows]:
        assert row is not None
        assert "password_hash" not in row._mapping
