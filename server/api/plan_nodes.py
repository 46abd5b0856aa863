"""The pieces a compiled plan is made of, and how each one runs (see server/api/plan.py).

A plan works a level at a time: `ObjectPlan.objects(run, rows)` completes a whole list of rows
of one entity (every row of every page at that place of the query) into plain dicts, reading
scalars straight from the rows, and asks the loaders for each relation once for the whole list.
So a page of 1,000 rows costs a few list comprehensions and one loader call per relation, not
one awaitable per field.

Whatever the plan cannot answer exactly as graphql-core would (a null in a non-null field, a
value its scalar refuses, an argument that raises) raises `Fallback`; the caller then runs the
operation through graphql-core, which produces the error with its own message and path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from graphql.pyutils import gather_with_cancel
from sqlalchemy import Row, Table

from loaders import Loaders, Order, Page, Relation
from server.api import cursors, ids
from server.api.relay import shareable


class Fallback(Exception):
    """This request is graphql-core's to answer (it will produce the same error, if any)."""


@dataclass(slots=True)
class Run:
    """One execution of a plan: the request's loaders and context, and argument values."""

    loaders: Loaders
    context: Any
    variables: Any  # graphql-core's VariableValues of this request
    arguments: dict[int, Any] = field(default_factory=dict)  # id(part) -> prepared arguments


async def gather(awaitables: Sequence[Awaitable[Any]]) -> list[Any]:
    """Await all; the first failure cancels the rest (nothing keeps running after a Fallback)."""
    if len(awaitables) == 1:
        return [await awaitables[0]]
    return list(await gather_with_cancel(*awaitables))


INT_RANGE = (-(2**31), 2**31 - 1)


def _coerce_all(
    values: list[Any], coerce: Callable[[Any], Any], nullable: bool, natural: type | None = None
) -> list[Any]:
    """Each value through its scalar's output coercion, as graphql-core completes a leaf.

    `natural` is the Python type the scalar hands back unchanged (str for String and ID, int
    in the 32-bit range for Int, bool for Boolean): a list of only such values is returned
    as it is, which is most of the work saved on a large page."""
    if natural is int:
        low, high = INT_RANGE
        if all(type(v) is int and low <= v <= high for v in values):
            return values
    elif natural is not None and all(type(v) is natural for v in values):
        return values
    try:
        out = [None if v is None else coerce(v) for v in values]
    except Exception as error:  # the scalar refuses it: graphql-core reports the error
        raise Fallback from error
    if None in out and (
        not nullable or any(o is None and v is not None for o, v in zip(out, values, strict=True))
    ):
        raise Fallback  # a null in a non-null field, or a value the scalar turned into null
    return out


@lru_cache(maxsize=1024)
def record_maker(keys: tuple[str, ...]) -> Callable[..., dict[str, Any]]:
    """A function building one response object from its field values, keys in order:
    `record_maker(("id", "title"))(1, "x") == {"id": 1, "title": "x"}`.

    Generated as a dict display, the cheapest way CPython builds a small dict; the keys are
    GraphQL names (letters, digits, underscore), written with repr()."""
    if not all(key.replace("_", "a").isalnum() and key.isascii() for key in keys):
        raise ValueError(f"not GraphQL names: {keys!r}")
    params = ", ".join(f"v{i}" for i in range(len(keys)))
    items = ", ".join(f"{key!r}: v{i}" for i, key in enumerate(keys))
    maker: Callable[..., dict[str, Any]] = eval(
        f"lambda {params}: {{{items}}}"
    )  # keys checked above
    return maker


def records(keys: tuple[str, ...], columns: list[list[Any]]) -> list[dict[str, Any]]:
    """One dict per row from column-wise values."""
    return list(map(record_maker(keys), *columns))


@dataclass(frozen=True, slots=True)
class Scalar:
    """A scalar field read from a column (`global_id`: the type's global ID of that column)."""

    column: str
    coerce: Callable[[Any], Any]
    nullable: bool
    global_id: str | None = None
    natural: type | None = None  # see _coerce_all

    def values(self, rows: Sequence[Row[Any]], names: Sequence[str]) -> list[Any]:
        index = names.index(self.column)
        raw = [row[index] for row in rows]
        if self.global_id is not None:
            type_name = self.global_id
            raw = [None if v is None else ids.encode(type_name, v) for v in raw]
        return _coerce_all(raw, self.coerce, self.nullable, self.natural)


@dataclass(frozen=True, slots=True)
class Constant:
    """`__typename`."""

    value: str

    def values(self, rows: Sequence[Row[Any]], _names: Sequence[str]) -> list[Any]:
        return [self.value] * len(rows)


class Part:
    """A field whose values need the loaders (a relation or a connection)."""

    def walk(self) -> list[Part]:
        """This part and the parts below it."""
        return [self]

    def prepare(self, run: Run) -> None:
        """Compute argument values before any statement runs (raising Fallback if bad)."""

    async def values(self, run: Run, rows: Sequence[Row[Any]]) -> list[Any]:
        raise NotImplementedError


@dataclass(slots=True)
class ObjectPlan:
    """The selection on one entity type: response keys in graphql-core's order."""

    type_name: str
    keys: tuple[str, ...]
    readers: list[tuple[int, Scalar | Constant]]
    parts: list[tuple[int, Part]]

    def walk(self) -> list[Part]:
        return [nested for _, part in self.parts for nested in part.walk()]

    async def objects(self, run: Run, rows: Sequence[Row[Any]]) -> list[dict[str, Any]]:
        if not rows:
            return []
        columns: list[list[Any]] = [[]] * len(self.keys)
        names = rows[0]._fields
        for slot, reader in self.readers:
            columns[slot] = reader.values(rows, names)
        if self.parts:
            found = await gather([part.values(run, rows) for _, part in self.parts])
            for (slot, _), values in zip(self.parts, found, strict=True):
                columns[slot] = values
        return records(self.keys, columns)


@dataclass(slots=True)
class ToOne(Part):
    """A many-to-one field: one loader call for all rows, the targets completed once each."""

    relation: Relation
    target: ObjectPlan
    nullable: bool

    def walk(self) -> list[Part]:
        return self.target.walk()

    async def values(self, run: Run, rows: Sequence[Row[Any]]) -> list[Any]:
        found = await run.loaders.one_for_each(self.relation, rows)
        present = [(fk, row) for fk, row in found.items() if row is not None]
        done = await self.target.objects(run, [row for _, row in present])
        by_key = {fk: obj for (fk, _), obj in zip(present, done, strict=True)}
        index = rows[0]._fields.index(self.relation.local_column.name)
        out = [by_key.get(row[index]) for row in rows]
        if not self.nullable and None in out:
            raise Fallback
        return out


# ---------------------------------------------------------------------------- connections


@dataclass(frozen=True, slots=True)
class Paging:
    """What a connection's pages need besides their rows: cursors."""

    field: str
    order: Order
    table: Table

    def cursor(self, row: Row[Any]) -> str:
        return cursors.encode(self.field, self.order, row, self.table)


@dataclass(slots=True)
class EdgePlan:
    keys: tuple[str, ...]
    kinds: tuple[str, ...]  # "cursor" | "node" | "__typename"
    typename: str
    node: ObjectPlan | None

    async def edges(self, run: Run, rows: Sequence[Row[Any]], paging: Paging) -> list[Any]:
        nodes = await self.node.objects(run, rows) if self.node is not None else None
        columns: list[list[Any]] = []
        for kind in self.kinds:
            if kind == "cursor":
                columns.append([paging.cursor(row) for row in rows])
            elif kind == "node":
                assert nodes is not None
                columns.append(nodes)
            else:
                columns.append([self.typename] * len(rows))
        return records(self.keys, columns)


def _page_field(name: str, page: Page, paging: Paging) -> Any:
    if name == "hasNextPage":
        return page.has_next
    if name == "hasPreviousPage":
        return page.has_previous
    if name == "startCursor":
        return paging.cursor(page.rows[0]) if page.rows else None
    if name == "endCursor":
        return paging.cursor(page.rows[-1]) if page.rows else None
    return "PageInfo"  # __typename


@dataclass(slots=True)
class ConnectionPlan:
    """The selection on a connection type: edges, nodes, pageInfo, totalCount, __typename."""

    keys: tuple[str, ...]
    kinds: tuple[str, ...]
    subplans: tuple[Any, ...]  # ObjectPlan (nodes), EdgePlan (edges), page-info keys, ...
    typename: str
    count_coerce: Callable[[Any], Any]

    loads: tuple[str, ...]  # "page" / "count": what the fields need, in the order they ask

    def walk(self) -> list[Part]:
        parts: list[Part] = []
        for kind, sub in zip(self.kinds, self.subplans, strict=True):
            if kind == "nodes":
                parts += sub.walk()
            elif kind == "edges" and sub.node is not None:
                parts += sub.node.walk()
        return parts

    async def complete(
        self, run: Run, pages: list[Page] | None, counts: list[int] | None, paging: Paging
    ) -> list[dict[str, Any]]:
        size = len(pages) if pages is not None else len(counts or ())
        rows = [row for page in pages for row in page.rows] if pages is not None else []
        # nodes and edges complete together: their relations share the loaders' next round.
        waits: list[Awaitable[list[Any]]] = []
        for kind, sub in zip(self.kinds, self.subplans, strict=True):
            if kind == "nodes":
                waits.append(sub.objects(run, rows))
            elif kind == "edges":
                waits.append(sub.edges(run, rows, paging))
        completed = iter(await gather(waits)) if waits else iter(())
        columns: list[list[Any]] = []
        for kind, sub in zip(self.kinds, self.subplans, strict=True):
            if kind in ("nodes", "edges"):
                columns.append(_split(next(completed), pages))
            elif kind == "pageInfo":
                columns.append([_page_info(sub, page, paging) for page in pages or ()])
            elif kind == "totalCount":
                columns.append(_coerce_all(list(counts or ()), self.count_coerce, False, int))
            else:
                columns.append([self.typename] * size)
        return records(self.keys, columns)


def _split(flat: list[Any], pages: list[Page] | None) -> list[list[Any]]:
    out, start = [], 0
    for page in pages or ():
        end = start + len(page.rows)
        out.append(flat[start:end])
        start = end
    return out


def _page_info(spec: tuple[tuple[str, str], ...], page: Page, paging: Paging) -> dict[str, Any]:
    return {key: _page_field(name, page, paging) for key, name in spec}


@dataclass(slots=True)
class ConnectionArguments:
    """A connection's arguments turned into what the loaders take (see types.connection_field)."""

    spec: Any
    conditions: Any
    paging: Paging


@dataclass(slots=True)
class Connection(Part):
    """A connection field, nested (one page per parent row) or at the root (`relation` None)."""

    relation: Relation | None
    plan: ConnectionPlan
    arguments: Callable[[Run], ConnectionArguments]  # may raise: graphql-core's error then

    def walk(self) -> list[Part]:
        return [self, *self.plan.walk()]

    def prepare(self, run: Run) -> None:
        try:
            run.arguments[id(self)] = self.arguments(run)
        except Exception as error:
            raise Fallback from error

    async def values(self, run: Run, rows: Sequence[Row[Any]]) -> list[Any]:
        args: ConnectionArguments = run.arguments[id(self)]
        loaders, relation, plan = run.loaders, self.relation, self.plan
        table = args.paging.table
        waits: list[Awaitable[Any]] = []
        # Page and count in the order the connection's fields ask for them, as graphql-core's
        # resolvers would.
        for what in plan.loads:
            if what == "count":
                if relation is None:
                    waits.append(_all([loaders.root_count(table, args.conditions)]))
                else:
                    waits.append(_all([loaders.count(relation, r, args.conditions) for r in rows]))
            elif relation is None:
                waits.append(_all([shareable(loaders.root_page(table, args.spec))]))
            else:
                waits.append(_all([loaders.page(relation, r, args.spec) for r in rows]))
        found = dict(zip(plan.loads, await gather(waits), strict=True))
        return await plan.complete(run, found.get("page"), found.get("count"), args.paging)


async def _all(awaitables: list[Awaitable[Any]]) -> list[Any]:
    if not awaitables:
        return []
    return await gather(awaitables)
