"""`Loaders`: the per-request set of DataLoaders, created lazily, one per place and spec.

Build one `Loaders` per request (aiodataloader binds the running event loop when a loader is
constructed, and its cache must not outlive the request). Resolvers call four verbs:

    await loaders.one(Relation.of(models.Post, "user"), post_row, place=p)        # Row | None
    await loaders.page(Relation.of(models.User, "posts"), user_row, spec, place=p)  # Page
    await loaders.count(Relation.of(models.User, "posts"), user_row, conds, place=p)  # int
    await loaders.by_id(users_table, place=p).load(42)                            # Row | None

`place` names where in the query the call comes from (the server passes the response path
without list indices). All calls from one place become one SQL statement, however many parents
there are. Loaders are deliberately *not* shared between places: two places resolve at moments
that depend on how fast their own parents arrived, so a shared loader would sometimes merge
their statements and sometimes not, and the statement count would depend on timing and data.
One loader per place keeps the count a function of the query's shape alone.
"""

from asyncio import Future
from collections.abc import Callable, Hashable
from functools import partial
from typing import Any

from aiodataloader import DataLoader
from sqlalchemy import Row, Table

from loaders import batch
from loaders.database import Database
from loaders.relations import Relation, primary_key
from loaders.specs import Condition, Page, PageSpec

Place = Hashable


class Loaders:
    """DataLoaders for one request over `db`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._loaders: dict[Hashable, DataLoader[Any, Any]] = {}

    def _loader(self, key: Hashable, batch_fn: Callable[..., Any]) -> DataLoader[Any, Any]:
        loader = self._loaders.get(key)
        if loader is None:
            # No max_batch_size: splitting a batch would make the statement count grow with
            # the number of parents. batch.key_in keeps any batch one statement.
            loader = DataLoader(batch_load_fn=batch_fn)
            self._loaders[key] = loader
        return loader

    def by_id(self, table: Table, *, place: Place = None) -> DataLoader[Any, Any]:
        """Rows of `table` by primary key (None for keys with no row)."""
        return self.by_column(table, primary_key(table).name, place=place)

    def by_column(self, table: Table, column: str, *, place: Place = None) -> DataLoader[Any, Any]:
        """Rows of `table` by a unique column (None for keys with no row)."""
        return self._loader(
            ("by", table, column, place), partial(batch.load_by_column, self.db, table.c[column])
        )

    async def one(
        self, relation: Relation, parent: Row[Any], *, place: Place = None
    ) -> Row[Any] | None:
        """The row a many-to-one relation points at, or None when its foreign key is null."""
        fk = parent._mapping[relation.local_column.name]
        if fk is None:  # aiodataloader refuses None keys, and there is nothing to load
            return None
        if not relation.to_primary_key:
            raise NotImplementedError(f"{relation.name}: many-to-one on a non-primary key")
        row: Row[Any] | None = await self.by_id(relation.target, place=place).load(fk)
        return row

    def page(
        self, relation: Relation, parent: Row[Any], spec: PageSpec, *, place: Place = None
    ) -> "Future[Page]":
        """One page of a one-to-many relation for `parent`, batched with its siblings.

        Returns the loader's future rather than a coroutine, so that several fields of one
        connection (edges, pageInfo) can await the same page."""
        loader = self._loader(
            ("page", relation, spec, place), partial(batch.load_pages, self.db, relation, spec)
        )
        page: Future[Page] = loader.load(parent._mapping[relation.local_column.name])
        return page

    def count(
        self,
        relation: Relation,
        parent: Row[Any],
        conditions: tuple[Condition, ...] = (),
        *,
        place: Place = None,
    ) -> "Future[int]":
        """How many rows of a one-to-many relation `parent` has under `conditions`."""
        loader = self._loader(
            ("count", relation, conditions, place),
            partial(batch.load_counts, self.db, relation, conditions),
        )
        count: Future[int] = loader.load(parent._mapping[relation.local_column.name])
        return count

    async def root_page(self, table: Table, spec: PageSpec) -> Page:
        """A page of a whole table; nothing to batch, so it runs directly."""
        return await batch.load_root_page(self.db, table, spec)

    async def root_count(self, table: Table, conditions: tuple[Condition, ...] = ()) -> int:
        return await batch.load_root_count(self.db, table, conditions)

    def clear(self) -> None:
        """Forget every cached row, e.g. after a write, so later reads see it."""
        self._loaders.clear()
