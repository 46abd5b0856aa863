"""`Loaders`: the per-request set of DataLoaders, created lazily, one per round and spec.

Build one `Loaders` per request (aiodataloader binds the running event loop when a loader is
constructed, and its cache must not outlive the request). Resolvers call four verbs:

    await loaders.one(Relation.of(models.Post, "user"), post_row)            # Row | None
    await loaders.page(Relation.of(models.User, "posts"), user_row, spec)    # Page
    await loaders.count(Relation.of(models.User, "posts"), user_row, conds)  # int
    await loaders.by_id(users_table).load(42)                                # Row | None

Batches are dispatched by rounds (loaders/rounds.py): everything the request asks for while its
previous statements run goes to the database together, one statement per loader. So all the
lookups by id of one table in a round share one statement, wherever they sit in the query
(`Post.user` and `Comment.author`), and so do pages of one relation with one spec. Each round
gets fresh loaders: a later round never finds rows cached by an earlier one, so whether it
runs a statement depends on the query's shape, not on which rows happened to be loaded before.
"""

from asyncio import Future
from collections.abc import Callable, Hashable, Sequence
from functools import partial
from typing import Any

from aiodataloader import DataLoader
from sqlalchemy import Row, Table

from loaders import batch
from loaders.database import Database
from loaders.relations import Relation, primary_key
from loaders.rounds import RoundLoader, Rounds
from loaders.specs import Condition, Page, PageSpec


class Loaders:
    """DataLoaders for one request over `db`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._loaders: dict[Hashable, DataLoader[Any, Any]] = {}
        self._rounds = Rounds(db.busy, db.idle, on_dispatch=self.clear)

    def _loader(self, key: Hashable, batch_fn: Callable[..., Any]) -> DataLoader[Any, Any]:
        loader = self._loaders.get(key)
        if loader is None:
            # No max_batch_size: splitting a batch would make the statement count grow with
            # the number of parents. batch.key_in keeps any batch one statement.
            loader = RoundLoader(batch_fn, self._rounds)
            self._loaders[key] = loader
        return loader

    def by_id(self, table: Table) -> DataLoader[Any, Any]:
        """Rows of `table` by primary key (None for keys with no row)."""
        return self.by_column(table, primary_key(table).name)

    def by_column(self, table: Table, column: str) -> DataLoader[Any, Any]:
        """Rows of `table` by a unique column (None for keys with no row)."""
        return self._loader(
            ("by", table, column), partial(batch.load_by_column, self.db, table.c[column])
        )

    async def one(self, relation: Relation, parent: Row[Any]) -> Row[Any] | None:
        """The row a many-to-one relation points at, or None when its foreign key is null."""
        fk = parent._mapping[relation.local_column.name]
        if fk is None:  # aiodataloader refuses None keys, and there is nothing to load
            return None
        row: Row[Any] | None = await self._by_foreign_key(relation).load(fk)
        return row

    async def one_for_each(
        self, relation: Relation, parents: Sequence[Row[Any]]
    ) -> dict[Any, Row[Any] | None]:
        """What a many-to-one relation points at for a whole page of parents, by foreign key
        (null keys left out): one batch, so the page needs no awaitable per row."""
        column = relation.local_column.name
        keys = list({k for row in parents if (k := row._mapping[column]) is not None})
        rows = await self._by_foreign_key(relation).load_many(keys)
        return dict(zip(keys, rows, strict=True))

    def _by_foreign_key(self, relation: Relation) -> DataLoader[Any, Any]:
        if not relation.to_primary_key:
            raise NotImplementedError(f"{relation.name}: many-to-one on a non-primary key")
        return self.by_id(relation.target)

    def page(self, relation: Relation, parent: Row[Any], spec: PageSpec) -> "Future[Page]":
        """One page of a one-to-many relation for `parent`, batched with its siblings.

        Returns the loader's future rather than a coroutine, so that several fields of one
        connection (edges, pageInfo) can await the same page."""
        loader = self._loader(
            ("page", relation, spec), partial(batch.load_pages, self.db, relation, spec)
        )
        page: Future[Page] = loader.load(parent._mapping[relation.local_column.name])
        return page

    def count(
        self,
        relation: Relation,
        parent: Row[Any],
        conditions: tuple[Condition, ...] = (),
    ) -> "Future[int]":
        """How many rows of a one-to-many relation `parent` has under `conditions`."""
        loader = self._loader(
            ("count", relation, conditions),
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
        """Start new loaders: nothing cached so far is served again (after a write, so that
        later reads see it, and at the start of every round)."""
        self._loaders = {}
