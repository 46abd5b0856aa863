"""Relay connections over `loaders.Page`: argument checks, lazy pages, edges and cursors.

A connection object is cheap to create: nothing is loaded until a field asks. `edges`, `nodes`
and `pageInfo` share one page load; `totalCount` alone costs one count and no page.

`edges` and `nodes` hand the page's rows to `PageSource.objects` with the names of the fields
selected on each node, so that the node type can load its many-to-one relations for the whole
page at once (server/api/nodes/base.py): graphql-core then completes the page without one
awaitable per row, which is most of what a large page costs.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import strawberry
from sqlalchemy import Row, Table

from loaders import Condition, Order, Page, PageSpec, Relation
from server.api import cursors
from server.api.context import Info
from server.api.errors import bad_user_input
from server.api.selection import selected_names

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


@strawberry.type(description="Relay page information, computed with the page's own query.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


# Key of `ConnectionField` in a connection field's strawberry metadata.
CONNECTION_FIELD = "inkgraph.connection"


@dataclass(frozen=True, slots=True)
class ConnectionField:
    """What a connection field serves: read by the compiled plan (server/api/plan.py), which
    answers such fields from the loaders without calling the resolver."""

    target: str  # the node type's name
    field: str  # the name in its cursors ("User.posts")
    relation: Relation | None  # None for a root connection


@dataclass(slots=True)
class PageSource:
    """Where one connection's rows come from; the page is loaded at most once."""

    field: str
    table: Table
    order: Order
    load_page: Callable[[], Awaitable[Page]]
    count: Callable[[], Awaitable[int]]
    # The page's rows as GraphQL objects, given the names of the fields selected on them.
    objects: Callable[[Sequence[Row[Any]], frozenset[str]], Awaitable[list[Any]]]
    _page: Awaitable[Page] | None = None

    def page(self) -> Awaitable[Page]:
        """The page, loaded on first use (a connection asked only for totalCount loads none)."""
        if self._page is None:
            self._page = self.load_page()
        return self._page

    def cursor(self, row: Row[Any]) -> str:
        return cursors.encode(self.field, self.order, row, self.table)


@strawberry.type
class Connection(Generic[T]):
    source: strawberry.Private[PageSource]

    @strawberry.field
    async def edges(self, info: Info) -> list[Edge[T]]:
        source = self.source
        rows = (await source.page()).rows
        nodes = await source.objects(rows, selected_names(info, "node"))
        return [
            Edge(cursor=source.cursor(row), node=node)
            for row, node in zip(rows, nodes, strict=True)
        ]

    @strawberry.field
    async def nodes(self, info: Info) -> list[T]:
        source = self.source
        rows = (await source.page()).rows
        return await source.objects(rows, selected_names(info))

    @strawberry.field
    async def page_info(self) -> PageInfo:
        page = await self.source.page()
        rows = page.rows
        return PageInfo(
            has_next_page=page.has_next,
            has_previous_page=page.has_previous,
            start_cursor=self.source.cursor(rows[0]) if rows else None,
            end_cursor=self.source.cursor(rows[-1]) if rows else None,
        )

    @strawberry.field(description="Size of the filtered set, ignoring paging.")
    async def total_count(self) -> int:
        return await self.source.count()


def page_spec(
    *,
    field: str,
    table: Table,
    order: Order,
    conditions: tuple[Condition, ...],
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> PageSpec:
    """Check the Relay arguments and turn them into a `PageSpec` (BAD_USER_INPUT if wrong)."""
    if first is not None and last is not None:
        raise bad_user_input("Pass `first` or `last`, not both.")
    for name, value in (("first", first), ("last", last)):
        if value is not None and not 0 <= value <= MAX_PAGE_SIZE:
            raise bad_user_input(
                f"`{name}` must be between 0 and {MAX_PAGE_SIZE}; got {value}.", argument=name
            )
    if first is None and last is None:
        first = DEFAULT_PAGE_SIZE

    def position(cursor: str | None) -> Any:
        if cursor is None:
            return None
        return cursors.decode(cursor, field=field, order=order, table=table)

    return PageSpec(
        order=order,
        filter=conditions,
        first=first,
        last=last,
        after=position(after),
        before=position(before),
    )


def shareable(awaitable: Awaitable[Page]) -> Awaitable[Page]:
    """Turn a coroutine into a future that several fields (edges, pageInfo…) may await."""
    return asyncio.ensure_future(awaitable)
