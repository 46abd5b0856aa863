"""Relay pagination and ordering (API.md, "Connections"), root and nested, on every backend.

Every expectation is computed in Python from tests/support/dataset.py: rows sorted by
(sort value, id) — code-point order for text, instants for timestamps — reversed for DESC, so
all three backends are held to one reference. The data set has ties on CREATED_AT (users 2/3,
every fifth post, comment pairs) and on TITLE ("Zebra" twice), so the id tie-break is visible.
"""

import base64
import itertools
import re
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
from sqlalchemy import Table, delete, event, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import SQLModel

from server.store import models
from server.store.models import table_of
from tests.support import dataset
from tests.support.connections import CONNECTIONS, Conn
from tests.support.gql import GraphQLClient

Row = Any  # one of the dataset's frozen row classes

PAGE = 3  # small, so every walk crosses several page boundaries

# ---------------------------------------------------------------------------- the reference


CONNS = CONNECTIONS
ROOTS = [c for c in CONNS.values() if not c.nested]
NESTED = [c for c in CONNS.values() if c.nested]


def page_size(count: int) -> int:
    """PAGE, or smaller for short lists, so that every walk spans at least three pages."""
    return PAGE if count > 2 * PAGE else max(1, (count - 1) // 2)


def busiest_parent(conn: Conn) -> int | None:
    """The parent with the most rows (the one walked through), None for a root connection."""
    if not conn.nested:
        return None
    return max(conn.parents, key=lambda p: (len(conn.rows(p)), -p))


def sort_key(conn: Conn, field: str) -> Callable[[Row], tuple[Any, int]]:
    value = conn.orders[field]
    return lambda row: (value(row), row.id)


def ordered(
    conn: Conn,
    parent: int | None,
    field: str = "ID",
    direction: str = "ASC",
    where: Callable[[Row], bool] = lambda _: True,
) -> list[Row]:
    """The connection's rows in the contract's order: (sort value, id), both in `direction`."""
    rows = [r for r in conn.rows(parent) if where(r)]
    return sorted(rows, key=sort_key(conn, field), reverse=direction == "DESC")


def ids(rows: list[Row]) -> list[int]:
    return [r.id for r in rows]


def orderings(conns: list[Conn]) -> Iterator[Any]:
    """pytest params: every connection x every orderBy field x both directions."""
    for conn in conns:
        for field in conn.orders:
            for direction in ("ASC", "DESC"):
                yield pytest.param(conn, field, direction, id=f"{conn.name}-{field}-{direction}")


# ---------------------------------------------------------------------------- querying

CONNECTION_SELECTION = """
    totalCount
    edges { cursor node { databaseId } }
    nodes { databaseId }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
"""


def query_for(conn: Conn, selection: str = CONNECTION_SELECTION) -> str:
    """A query reaching `conn` once (nested ones through `node(id: $parent)`)."""
    t = conn.node_type
    variables = (
        f"$first: Int, $after: String, $last: Int, $before: String, "
        f"$orderBy: {t}Order, $filter: {t}Filter"
    )
    arguments = (
        "first: $first, after: $after, last: $last, before: $before, "
        "orderBy: $orderBy, filter: $filter"
    )
    body = f"conn: {conn.field}({arguments}) {{ {selection} }}"
    if conn.nested:
        return (
            f"query($parent: ID!, {variables}) {{ node(id: $parent) "
            f"{{ ... on {conn.parent_type} {{ {body} }} }} }}"
        )
    return f"query({variables}) {{ {body} }}"


def global_id(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def variables_for(conn: Conn, parent: int | None, args: dict[str, Any]) -> dict[str, Any]:
    variables = dict(args)
    if conn.nested:
        assert conn.parent_type is not None
        assert parent is not None
        variables["parent"] = global_id(conn.parent_type, parent)
    return variables


async def fetch(
    client: GraphQLClient, conn: Conn, parent: int | None = None, **args: Any
) -> dict[str, Any]:
    """The connection object, checked for the invariants every page must satisfy."""
    data = await client.data(query_for(conn), **variables_for(conn, parent, args))
    page: dict[str, Any] = (data["node"] if conn.nested else data)["conn"]
    check_page_shape(page)
    return page


def check_page_shape(page: dict[str, Any]) -> None:
    """nodes mirror edges; startCursor/endCursor are the first/last edge's, null when empty."""
    edges, info = page["edges"], page["pageInfo"]
    assert [e["node"] for e in edges] == page["nodes"]
    assert info["startCursor"] == (edges[0]["cursor"] if edges else None)
    assert info["endCursor"] == (edges[-1]["cursor"] if edges else None)


def edge_ids(page: dict[str, Any]) -> list[int]:
    return [e["node"]["databaseId"] for e in page["edges"]]


def order_arg(field: str, direction: str) -> dict[str, str]:
    return {"field": field, "direction": direction}


async def cursors_by_id(
    client: GraphQLClient, conn: Conn, parent: int | None, order: dict[str, str] | None = None
) -> dict[int, str]:
    """Every row's cursor in `order` (each connection here has at most 100 rows)."""
    page = await fetch(client, conn, parent, first=100, orderBy=order)
    assert not page["pageInfo"]["hasNextPage"]
    return {e["node"]["databaseId"]: e["cursor"] for e in page["edges"]}


FORBIDDEN_IN_MESSAGES = re.compile(
    r"Traceback|File \"|SELECT|WHERE|sqlalchemy|asyncpg|asyncmy|aiosqlite|sqlite3|"
    r"Error\(|\.py\b",
    re.IGNORECASE,
)


async def assert_bad_user_input(client: GraphQLClient, query: str, **variables: Any) -> None:
    """One BAD_USER_INPUT error, no data for the field, and no internals in the message."""
    body = await client.execute(query, **variables)
    errors = body.get("errors")
    assert errors, f"expected an error, got {body}"
    assert [e.get("extensions", {}).get("code") for e in errors] == ["BAD_USER_INPUT"], errors
    for error in errors:
        assert not FORBIDDEN_IN_MESSAGES.search(error["message"]), error["message"]


def cursor_of(payload: object) -> str:
    """A hand-made cursor in the server's own layout (base64url of a JSON array)."""
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode()


# ---------------------------------------------------------------------------- walking pages


@pytest.mark.parametrize(("conn", "field", "direction"), list(orderings(list(CONNS.values()))))
async def test_walking_forward_visits_every_row_once_in_order(
    client: GraphQLClient, conn: Conn, field: str, direction: str
) -> None:
    parent = busiest_parent(conn)
    expected = ids(ordered(conn, parent, field, direction))
    size = page_size(len(expected))
    assert len(expected) > 2 * size  # at least three pages
    order = order_arg(field, direction)
    seen: list[int] = []
    after = None
    while True:
        page = await fetch(client, conn, parent, first=size, after=after, orderBy=order)
        assert edge_ids(page) == expected[len(seen) : len(seen) + size]
        seen += edge_ids(page)
        assert page["pageInfo"]["hasNextPage"] is (len(seen) < len(expected))
        assert page["totalCount"] == len(expected)
        after = page["pageInfo"]["endCursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
    assert seen == expected
    # Past the last row: an empty page with null cursors and nothing next.
    page = await fetch(client, conn, parent, first=PAGE, after=after, orderBy=order)
    assert page["edges"] == []
    assert page["pageInfo"]["hasNextPage"] is False
    assert page["totalCount"] == len(expected)


@pytest.mark.parametrize(("conn", "field", "direction"), list(orderings(list(CONNS.values()))))
async def test_walking_backward_visits_every_row_once_in_order(
    client: GraphQLClient, conn: Conn, field: str, direction: str
) -> None:
    parent = busiest_parent(conn)
    expected = ids(ordered(conn, parent, field, direction))
    size = page_size(len(expected))
    assert len(expected) > 2 * size
    order = order_arg(field, direction)
    end = len(expected)  # rows expected[end:] were seen
    before = None
    while True:
        page = await fetch(client, conn, parent, last=size, before=before, orderBy=order)
        start = max(0, end - size)
        assert edge_ids(page) == expected[start:end]  # display order, not reversed
        end = start
        assert page["pageInfo"]["hasPreviousPage"] is (end > 0)
        assert page["totalCount"] == len(expected)
        before = page["pageInfo"]["startCursor"]
        if not page["pageInfo"]["hasPreviousPage"]:
            break
    assert end == 0
    page = await fetch(client, conn, parent, last=PAGE, before=before, orderBy=order)
    assert page["edges"] == []
    assert page["pageInfo"]["hasPreviousPage"] is False


def has_tie(conn: Conn, field: str) -> bool:
    """Whether two rows of one parent share `field`'s value."""
    value = conn.orders[field]
    for parent in conn.parents or (None,):
        values = [value(r) for r in conn.rows(parent)]
        if len(values) != len(set(values)):
            return True
    return False


def tied_orderings() -> Iterator[Any]:
    for conn in CONNS.values():
        for field in conn.orders:
            if has_tie(conn, field):
                for direction in ("ASC", "DESC"):
                    yield pytest.param(
                        conn, field, direction, id=f"{conn.name}-{field}-{direction}"
                    )


@pytest.mark.parametrize(("conn", "field", "direction"), list(tied_orderings()))
async def test_cursor_between_tied_rows_splits_them_by_id(
    client: GraphQLClient, conn: Conn, field: str, direction: str
) -> None:
    """Rows with equal sort values are ordered by id, and a cursor on one of them lands
    between them: `after` gives its twin next, `before` the twin gives it back."""
    value = conn.orders[field]
    parents = conn.parents or (None,)
    tested = 0
    for parent in parents:
        rows = ordered(conn, parent, field, direction)
        pairs = [(a, b) for a, b in itertools.pairwise(rows) if value(a) == value(b)]
        if not pairs:
            continue
        order = order_arg(field, direction)
        cursors = await cursors_by_id(client, conn, parent, order)
        assert list(cursors) == ids(rows)
        for a, b in pairs:
            assert (a.id < b.id) is (direction == "ASC")
            page = await fetch(client, conn, parent, first=1, after=cursors[a.id], orderBy=order)
            assert edge_ids(page) == [b.id]
            page = await fetch(client, conn, parent, last=1, before=cursors[b.id], orderBy=order)
            assert edge_ids(page) == [a.id]
            tested += 1
    assert tested


def test_the_data_set_has_the_ties_these_tests_rely_on() -> None:
    """Guard against a data set change making the tie tests vacuous."""
    tied = {(p.values[0].name, p.values[1]) for p in tied_orderings()}
    assert tied >= {
        ("Query.posts", "TITLE"),
        ("Query.posts", "CREATED_AT"),
        ("Query.users", "CREATED_AT"),
        ("Query.comments", "CREATED_AT"),
        ("User.posts", "CREATED_AT"),
        ("Article.comments", "CREATED_AT"),
    }


@pytest.mark.parametrize(("conn", "field", "direction"), list(orderings(list(CONNS.values()))))
async def test_after_and_before_together_give_the_rows_strictly_between(
    client: GraphQLClient, conn: Conn, field: str, direction: str
) -> None:
    parent = busiest_parent(conn)
    rows = ids(ordered(conn, parent, field, direction))
    order = order_arg(field, direction)
    cursors = await cursors_by_id(client, conn, parent, order)
    low, high = 0, len(rows) - 1
    between = rows[low + 1 : high]
    page = await fetch(
        client,
        conn,
        parent,
        first=100,
        after=cursors[rows[low]],
        before=cursors[rows[high]],
        orderBy=order,
    )
    assert edge_ids(page) == between
    page = await fetch(
        client,
        conn,
        parent,
        last=2,
        after=cursors[rows[low]],
        before=cursors[rows[high]],
        orderBy=order,
    )
    assert edge_ids(page) == between[-2:]
    assert page["pageInfo"]["hasPreviousPage"] is (len(between) > 2)


# ---------------------------------------------------------------------------- page sizes


def sized_cases() -> Iterator[Any]:
    """Each connection with a parent that has rows and, for nested ones, one that has none."""
    for conn in CONNS.values():
        yield pytest.param(conn, busiest_parent(conn), id=f"{conn.name}-full")
        if conn.nested:
            empty = next(p for p in conn.parents if not conn.rows(p))
            yield pytest.param(conn, empty, id=f"{conn.name}-empty")


@pytest.mark.parametrize(("conn", "parent"), list(sized_cases()))
@pytest.mark.parametrize("explicit_null", [False, True], ids=["omitted", "explicit-null"])
async def test_default_page_is_twenty_rows(
    client: GraphQLClient, conn: Conn, parent: int | None, explicit_null: bool
) -> None:
    expected = ids(ordered(conn, parent))
    args = {"first": None, "last": None, "after": None, "before": None} if explicit_null else {}
    page = await fetch(client, conn, parent, **args)
    assert edge_ids(page) == expected[:20]
    assert page["pageInfo"]["hasNextPage"] is (len(expected) > 20)
    assert page["totalCount"] == len(expected)


async def test_default_page_size_cuts_a_nested_connection_with_more_rows(
    client: GraphQLClient,
) -> None:
    """User 1 has 25 posts: the default page holds 20 of them, and says there are more."""
    conn = CONNS["User.posts"]
    assert len(conn.rows(1)) == 25
    page = await fetch(client, conn, 1)
    assert edge_ids(page) == ids(ordered(conn, 1))[:20]
    assert page["pageInfo"]["hasNextPage"] is True
    assert page["totalCount"] == 25


@pytest.mark.parametrize(("conn", "parent"), list(sized_cases()))
async def test_first_zero_returns_no_edges_and_says_whether_rows_exist(
    client: GraphQLClient, conn: Conn, parent: int | None
) -> None:
    count = len(conn.rows(parent))
    page = await fetch(client, conn, parent, first=0)
    assert page["edges"] == []
    assert page["nodes"] == []
    assert page["pageInfo"]["hasNextPage"] is (count > 0)
    assert page["totalCount"] == count


@pytest.mark.parametrize(("conn", "parent"), list(sized_cases()))
async def test_last_zero_returns_no_edges_and_says_whether_rows_exist(
    client: GraphQLClient, conn: Conn, parent: int | None
) -> None:
    count = len(conn.rows(parent))
    page = await fetch(client, conn, parent, last=0)
    assert page["edges"] == []
    assert page["nodes"] == []
    assert page["pageInfo"]["hasPreviousPage"] is (count > 0)
    assert page["totalCount"] == count


@pytest.mark.parametrize("conn", list(CONNS.values()), ids=lambda c: c.name)
async def test_first_zero_after_a_cursor_says_whether_rows_follow_it(
    client: GraphQLClient, conn: Conn
) -> None:
    parent = busiest_parent(conn)
    rows = ids(ordered(conn, parent))
    cursors = await cursors_by_id(client, conn, parent)
    page = await fetch(client, conn, parent, first=0, after=cursors[rows[-2]])
    assert page["edges"] == []
    assert page["pageInfo"]["hasNextPage"] is True
    page = await fetch(client, conn, parent, first=0, after=cursors[rows[-1]])
    assert page["edges"] == []
    assert page["pageInfo"]["hasNextPage"] is False
    page = await fetch(client, conn, parent, last=0, before=cursors[rows[1]])
    assert page["edges"] == []
    assert page["pageInfo"]["hasPreviousPage"] is True
    page = await fetch(client, conn, parent, last=0, before=cursors[rows[0]])
    assert page["edges"] == []
    assert page["pageInfo"]["hasPreviousPage"] is False


@pytest.mark.parametrize("size_arg", ["first", "last"])
async def test_a_page_of_one_hundred_is_allowed(client: GraphQLClient, size_arg: str) -> None:
    conn = CONNS["Query.posts"]
    page = await fetch(client, conn, **{size_arg: 100})
    assert edge_ids(page) == ids(ordered(conn, None))  # 35 rows: all of them
    assert page["pageInfo"]["hasNextPage" if size_arg == "first" else "hasPreviousPage"] is False


# ---------------------------------------------------------------------------- bad input

BAD_ARGUMENTS = [
    pytest.param({"first": 1, "last": 1}, id="first-and-last"),
    pytest.param({"first": 0, "last": 0}, id="first-and-last-zero"),
    pytest.param({"first": 101}, id="first-101"),
    pytest.param({"first": -1}, id="first-negative"),
    pytest.param({"last": 101}, id="last-101"),
    pytest.param({"last": -1}, id="last-negative"),
    pytest.param({"first": 2**31 - 1}, id="first-huge"),
    pytest.param({"last": 2**31}, id="last-beyond-Int"),
]


@pytest.mark.parametrize("conn", list(CONNS.values()), ids=lambda c: c.name)
@pytest.mark.parametrize("args", BAD_ARGUMENTS)
async def test_bad_page_sizes_are_bad_user_input(
    client: GraphQLClient, conn: Conn, args: dict[str, Any]
) -> None:
    parent = busiest_parent(conn)
    await assert_bad_user_input(client, query_for(conn), **variables_for(conn, parent, args))


MALFORMED_CURSORS = [
    pytest.param("garbage", id="garbage"),
    pytest.param("", id="empty"),
    pytest.param("!!!!", id="punctuation"),
    pytest.param("ünïcødé", id="non-ascii"),
    pytest.param(base64.b64encode(b"hello world").decode(), id="base64-text"),
    pytest.param(base64.b64encode(b"\xff\xfe\x00\x01").decode(), id="base64-bytes"),
    pytest.param(cursor_of([]), id="empty-array"),
    pytest.param(cursor_of({"v": 1}), id="object"),
    pytest.param(cursor_of("abcde"), id="five-char-string"),
    pytest.param(cursor_of([1, "Query.posts", "id:asc", None]), id="too-short"),
    pytest.param(cursor_of([1, "Query.posts", "id:asc", None, 3, 4]), id="too-long"),
    pytest.param(cursor_of([2, "Query.posts", "id:asc", None, 3]), id="unknown-version"),
    pytest.param(cursor_of([True, "Query.posts", "id:asc", None, 3]), id="boolean-version"),
    pytest.param(cursor_of([1, "Query.posts", "id:asc", None, "3"]), id="string-id"),
    pytest.param(cursor_of([1, "Query.posts", "id:asc", None, 3.5]), id="float-id"),
    pytest.param(cursor_of([1, "Query.posts", "id:asc", None, True]), id="boolean-id"),
    pytest.param(cursor_of([1, "Query.posts", "id:asc", None, None]), id="null-id"),
    pytest.param(cursor_of([1, "Query.posts", "id:asc", None, 2**40]), id="id-out-of-range"),
    pytest.param(cursor_of([1, "Query.posts", "id:asc", "x", 3]), id="sort-value-on-id"),
]


@pytest.mark.parametrize("cursor", MALFORMED_CURSORS)
@pytest.mark.parametrize("position", ["after", "before"])
async def test_malformed_cursor_is_bad_user_input(
    client: GraphQLClient, cursor: str, position: str
) -> None:
    await assert_bad_user_input(client, query_for(CONNS["Query.posts"]), **{position: cursor})


# Well-formed and naming the right connection and orderBy, but with a sort value that no row
# of ours could have produced: refused as input, never a database error.
FORGED_SORT_VALUES = [
    pytest.param("CREATED_AT", "2026-01-01T00:00:00", id="naive-timestamp"),
    pytest.param("CREATED_AT", "not a date", id="not-a-timestamp"),
    pytest.param("CREATED_AT", 1767225600, id="number-timestamp"),
    pytest.param("CREATED_AT", None, id="null-timestamp"),
    pytest.param("CREATED_AT", "0001-01-01T00:00:00+05:00", id="timestamp-before-year-1-utc"),
    pytest.param("CREATED_AT", "9999-12-31T23:00:00-05:00", id="timestamp-after-9999-utc"),
    pytest.param("TITLE", 5, id="number-title"),
    pytest.param("TITLE", None, id="null-title"),
    pytest.param("TITLE", ["Zebra"], id="array-title"),
    pytest.param("TITLE", "nul\u0000title", id="title-with-nul"),
]


@pytest.mark.parametrize(("field", "sort_value"), FORGED_SORT_VALUES)
@pytest.mark.parametrize("conn", [CONNS["Query.posts"], CONNS["User.posts"]], ids=lambda c: c.name)
async def test_cursor_with_an_impossible_sort_value_is_bad_user_input(
    client: GraphQLClient, conn: Conn, field: str, sort_value: Any
) -> None:
    cursor = cursor_of([1, conn.name, f"{field.lower()}:asc", sort_value, 3])
    await assert_bad_user_input(
        client,
        query_for(conn),
        **variables_for(conn, 1, {"first": 2, "after": cursor, "orderBy": order_arg(field, "ASC")}),
    )


@pytest.mark.parametrize("field", ["CREATED_AT", "TITLE"])
async def test_hand_made_cursor_in_the_server_layout_is_accepted(
    client: GraphQLClient, field: str
) -> None:
    """The forged-cursor tests above fail for their sort value alone: the same layout with a
    real row's values works (and a timestamp in another offset names the same instant)."""
    conn = CONNS["Query.posts"]
    post = dataset.POSTS[9]
    value = post.created_at.isoformat() if field == "CREATED_AT" else post.title
    cursor = cursor_of([1, conn.name, f"{field.lower()}:asc", value, post.id])
    page = await fetch(client, conn, first=3, after=cursor, orderBy=order_arg(field, "ASC"))
    rows = ids(ordered(conn, None, field, "ASC"))
    position = rows.index(post.id)
    assert edge_ids(page) == rows[position + 1 : position + 4]


# Every connection refuses every other's cursors (the cursor key is where the field sits,
# "User.posts", derived by the registry): e.g. User.posts' on Article.comments or Query.posts.
WRONG_FIELD_CURSORS = [
    pytest.param(source, target, id=f"{source}-on-{target}")
    for source, target in itertools.permutations(CONNS, 2)
]


@pytest.mark.parametrize(("source", "target"), WRONG_FIELD_CURSORS)
@pytest.mark.parametrize("position", ["after", "before"])
async def test_cursor_from_another_connection_field_is_bad_user_input(
    client: GraphQLClient, source: str, target: str, position: str
) -> None:
    source_conn, target_conn = CONNS[source], CONNS[target]
    cursors = await cursors_by_id(client, source_conn, busiest_parent(source_conn))
    cursor = list(cursors.values())[1]
    parent = busiest_parent(target_conn)
    await assert_bad_user_input(
        client,
        query_for(target_conn),
        **variables_for(target_conn, parent, {"first": 2, position: cursor}),
    )


WRONG_ORDER_CURSORS = [
    pytest.param(("TITLE", "ASC"), ("CREATED_AT", "ASC"), id="TITLE-on-CREATED_AT"),
    pytest.param(("TITLE", "ASC"), ("TITLE", "DESC"), id="TITLE-ASC-on-TITLE-DESC"),
    pytest.param(("TITLE", "DESC"), ("TITLE", "ASC"), id="TITLE-DESC-on-TITLE-ASC"),
    pytest.param(("TITLE", "ASC"), None, id="TITLE-on-default"),
    pytest.param(None, ("TITLE", "ASC"), id="default-on-TITLE"),
    pytest.param(("ID", "ASC"), ("ID", "DESC"), id="ID-ASC-on-ID-DESC"),
    pytest.param(("CREATED_AT", "DESC"), ("ID", "DESC"), id="CREATED_AT-on-ID"),
]


@pytest.mark.parametrize(("source", "target"), WRONG_ORDER_CURSORS)
@pytest.mark.parametrize("conn", [CONNS["Query.posts"], CONNS["User.posts"]], ids=lambda c: c.name)
@pytest.mark.parametrize("position", ["after", "before"])
async def test_cursor_from_another_order_is_bad_user_input(
    client: GraphQLClient,
    conn: Conn,
    source: tuple[str, str] | None,
    target: tuple[str, str] | None,
    position: str,
) -> None:
    parent = busiest_parent(conn)
    source_order = order_arg(*source) if source else None
    cursors = await cursors_by_id(client, conn, parent, source_order)
    cursor = list(cursors.values())[1]
    target_order = order_arg(*target) if target else None
    await assert_bad_user_input(
        client,
        query_for(conn),
        **variables_for(conn, parent, {"first": 2, position: cursor, "orderBy": target_order}),
    )


async def test_default_order_and_explicit_id_asc_share_cursors(client: GraphQLClient) -> None:
    """`ID ASC` is the default order, so its cursors are the default order's cursors."""
    conn = CONNS["Query.posts"]
    default = await cursors_by_id(client, conn, None)
    explicit = await cursors_by_id(client, conn, None, order_arg("ID", "ASC"))
    page = await fetch(client, conn, first=2, after=default[5], orderBy=order_arg("ID", "ASC"))
    assert edge_ids(page) == [6, 7]
    page = await fetch(client, conn, first=2, after=explicit[5])
    assert edge_ids(page) == [6, 7]


async def test_direction_left_out_or_null_means_ascending(client: GraphQLClient) -> None:
    conn = CONNS["Query.posts"]
    expected = ids(ordered(conn, None, "TITLE", "ASC"))
    for order in ({"field": "TITLE"}, {"field": "TITLE", "direction": None}):
        page = await fetch(client, conn, first=100, orderBy=order)
        assert edge_ids(page) == expected


# ---------------------------------------------------------------------------- keyset stability


async def _put_back(connection: AsyncConnection, table: Table, rows: list[Any]) -> None:
    """Insert reference `rows` of `table` again, then, recursively, the reference rows of every
    table with a foreign key to it that point at them: deleting a post cascades (or sets null)
    to whatever references it, and the session's data set must come back whole."""
    if not rows:
        return
    keys = [row.id for row in rows]
    await connection.execute(delete(table).where(table.c.id.in_(keys)))
    await connection.execute(insert(table), [vars(row) for row in rows])
    for child in SQLModel.metadata.sorted_tables:
        for fk in child.foreign_keys:
            if fk.column.table is table:
                column = fk.parent.name
                wanted = [r for r in dataset.ROWS.get(child.name, []) if getattr(r, column) in keys]
                await _put_back(connection, child, wanted)


@asynccontextmanager
async def post_missing(engine: AsyncEngine, post: Any) -> Any:
    """Run the block with `post` deleted; it is put back exactly as it was afterwards (with the
    rows that reference it)."""
    table = table_of(models.Post)
    async with engine.begin() as connection:
        await connection.execute(delete(table).where(table.c.id == post.id))
    try:
        yield
    finally:
        await reinsert(engine, post)


async def reinsert(engine: AsyncEngine, post: Any) -> None:
    async with engine.begin() as connection:
        await _put_back(connection, table_of(models.Post), [post])


async def remove(engine: AsyncEngine, post: Any) -> None:
    table = table_of(models.Post)
    async with engine.begin() as connection:
        await connection.execute(delete(table).where(table.c.id == post.id))


@pytest.mark.parametrize(
    ("field", "direction"),
    [("ID", "ASC"), ("ID", "DESC"), ("TITLE", "ASC"), ("CREATED_AT", "DESC")],
)
@pytest.mark.parametrize("conn", [CONNS["Query.posts"], CONNS["User.posts"]], ids=lambda c: c.name)
async def test_page_after_a_cursor_does_not_shift_when_rows_before_it_come_and_go(
    client: GraphQLClient, engine: AsyncEngine, conn: Conn, field: str, direction: str
) -> None:
    parent = busiest_parent(conn)
    rows = ordered(conn, parent, field, direction)
    anchor, victim = rows[10], rows[3]  # the victim sorts before the anchor's cursor
    order = order_arg(field, direction)
    following = ids(rows[11:16])
    async with post_missing(engine, victim):
        cursors = await cursors_by_id(client, conn, parent, order)
        assert victim.id not in cursors
        page = await fetch(client, conn, parent, first=5, after=cursors[anchor.id], orderBy=order)
        assert edge_ids(page) == following
        assert page["totalCount"] == len(rows) - 1

        await reinsert(engine, victim)  # a row inserted before the cursor
        page = await fetch(client, conn, parent, first=5, after=cursors[anchor.id], orderBy=order)
        assert page["totalCount"] == len(rows)  # the insert is visible…
        assert edge_ids(page) == following  # …and the page did not move

        # And backwards: the page before a cursor does not shift when a row after it goes.
        late = rows[15]
        page = await fetch(client, conn, parent, last=3, before=cursors[late.id], orderBy=order)
        before_late = ids(rows[12:15])
        assert edge_ids(page) == before_late
        await remove(engine, rows[18])
        try:
            page = await fetch(client, conn, parent, last=3, before=cursors[late.id], orderBy=order)
            assert page["totalCount"] == len(rows) - 1
            assert edge_ids(page) == before_late
        finally:
            await reinsert(engine, rows[18])


@pytest.mark.parametrize(("field", "direction"), [("TITLE", "ASC"), ("CREATED_AT", "DESC")])
@pytest.mark.parametrize("conn", [CONNS["Query.posts"], CONNS["User.posts"]], ids=lambda c: c.name)
async def test_cursor_of_a_deleted_row_still_marks_its_position(
    client: GraphQLClient, engine: AsyncEngine, conn: Conn, field: str, direction: str
) -> None:
    parent = busiest_parent(conn)
    rows = ordered(conn, parent, field, direction)
    anchor = rows[10]
    order = order_arg(field, direction)
    cursors = await cursors_by_id(client, conn, parent, order)
    async with post_missing(engine, anchor):
        page = await fetch(client, conn, parent, first=3, after=cursors[anchor.id], orderBy=order)
        assert edge_ids(page) == ids(rows[11:14])
        page = await fetch(client, conn, parent, last=3, before=cursors[anchor.id], orderBy=order)
        assert edge_ids(page) == ids(rows[7:10])
        assert page["totalCount"] == len(rows) - 1


async def test_a_deep_page_costs_no_offset(client: GraphQLClient, engine: AsyncEngine) -> None:
    """Cursor pages are keyset range reads: no OFFSET that skips rows, root or nested (SQLite's
    compiler always writes `LIMIT ? OFFSET ?`, so there the offset bound must be 0)."""
    root, nested = CONNS["Query.posts"], CONNS["User.posts"]
    order = order_arg("TITLE", "DESC")
    root_cursors = list((await cursors_by_id(client, root, None, order)).values())
    nested_cursors = list((await cursors_by_id(client, nested, 1, order)).values())
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((" ".join(statement.split()), parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        page = await fetch(client, root, first=2, after=root_cursors[30], orderBy=order)
        assert edge_ids(page) == ids(ordered(root, None, "TITLE", "DESC"))[31:33]
        page = await fetch(client, nested, 1, first=2, after=nested_cursors[20], orderBy=order)
        assert edge_ids(page) == ids(ordered(nested, 1, "TITLE", "DESC"))[21:23]
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert seen, "no SQL was recorded"
    for statement, parameters in seen:
        if re.search(r"\bOFFSET\b", statement, re.IGNORECASE):
            assert statement.endswith("LIMIT ? OFFSET ?"), statement
            assert parameters[-1] == 0, (statement, parameters)


# ---------------------------------------------------------------------------- nested batches

NESTED_PARENTS = {"User": "users", "Article": "articles"}


def nested_batch_query(conn: Conn) -> str:
    """Every parent, each with the nested connection, in one request (one batch)."""
    t = conn.node_type
    return (
        f"query($first: Int, $after: String, $last: Int, $before: String, "
        f"$orderBy: {t}Order, $filter: {t}Filter) {{ "
        f"parents: {NESTED_PARENTS[conn.parent_type or '']}(first: 100) {{ nodes {{ databaseId "
        f"conn: {conn.field}(first: $first, after: $after, last: $last, before: $before, "
        f"orderBy: $orderBy, filter: $filter) {{ {CONNECTION_SELECTION} }} }} }} }}"
    )


async def fetch_batch(client: GraphQLClient, conn: Conn, **args: Any) -> dict[int, Any]:
    data = await client.data(nested_batch_query(conn), **args)
    pages = {node["databaseId"]: node["conn"] for node in data["parents"]["nodes"]}
    assert sorted(pages) == sorted(conn.parents)
    for page in pages.values():
        check_page_shape(page)
    return pages


NESTED_ORDERS = [
    pytest.param(CONNS["User.posts"], "ID", "ASC", id="User.posts-ID-ASC"),
    pytest.param(CONNS["User.posts"], "TITLE", "ASC", id="User.posts-TITLE-ASC"),
    pytest.param(CONNS["User.posts"], "TITLE", "DESC", id="User.posts-TITLE-DESC"),
    pytest.param(CONNS["User.posts"], "CREATED_AT", "DESC", id="User.posts-CREATED_AT-DESC"),
    pytest.param(CONNS["User.comments"], "ID", "DESC", id="User.comments-ID-DESC"),
    pytest.param(CONNS["User.comments"], "CREATED_AT", "ASC", id="User.comments-CREATED_AT-ASC"),
    pytest.param(CONNS["Article.comments"], "ID", "ASC", id="Article.comments-ID-ASC"),
    pytest.param(
        CONNS["Article.comments"], "CREATED_AT", "DESC", id="Article.comments-CREATED_AT-DESC"
    ),
]


@pytest.mark.parametrize(("conn", "field", "direction"), NESTED_ORDERS)
@pytest.mark.parametrize("size", [0, 1, 2, 100])
async def test_nested_first_n_is_per_parent(
    unlimited_client: GraphQLClient, conn: Conn, field: str, direction: str, size: int
) -> None:
    # 100 per parent for 100 parents, as edges and nodes: over the node limit, which is not
    # what this is about (tests/test_limits.py is).
    client = unlimited_client
    pages = await fetch_batch(client, conn, first=size, orderBy=order_arg(field, direction))
    for parent, page in pages.items():
        expected = ids(ordered(conn, parent, field, direction))
        assert edge_ids(page) == expected[:size], f"parent {parent}"
        assert page["pageInfo"]["hasNextPage"] is (len(expected) > size), f"parent {parent}"
        assert page["totalCount"] == len(expected), f"parent {parent}"


@pytest.mark.parametrize(("conn", "field", "direction"), NESTED_ORDERS)
@pytest.mark.parametrize("size", [0, 1, 2, 100])
async def test_nested_last_n_is_per_parent(
    unlimited_client: GraphQLClient, conn: Conn, field: str, direction: str, size: int
) -> None:
    # 100 per parent for 100 parents, as edges and nodes: over the node limit, which is not
    # what this is about (tests/test_limits.py is).
    client = unlimited_client
    pages = await fetch_batch(client, conn, last=size, orderBy=order_arg(field, direction))
    for parent, page in pages.items():
        expected = ids(ordered(conn, parent, field, direction))
        assert edge_ids(page) == expected[max(0, len(expected) - size) :], f"parent {parent}"
        assert page["pageInfo"]["hasPreviousPage"] is (len(expected) > size), f"parent {parent}"
        assert page["totalCount"] == len(expected), f"parent {parent}"


def splitting_row(conn: Conn, field: str, direction: str) -> Row:
    """A row whose position leaves some parent's rows all before it, another parent's rows
    all after it, and a third parent's rows on both sides: the shared cursor's cases."""
    key = sort_key(conn, field)
    descending = direction == "DESC"
    everything = sorted(
        (r for p in conn.parents for r in conn.rows(p)), key=key, reverse=descending
    )

    def after(row: Row, mark: Row) -> bool:
        return key(row) < key(mark) if descending else key(row) > key(mark)

    def kinds(mark: Row) -> set[str]:
        found = set()
        for parent in conn.parents:
            rows = conn.rows(parent)
            later = sum(after(r, mark) for r in rows)
            if rows:
                found.add("none" if later == 0 else "all" if later == len(rows) else "some")
        return found

    # Best all three cases; at least a parent left with nothing and one cut by the position.
    for wanted in ({"none", "all", "some"}, {"none", "some"}):
        for mark in everything:
            if kinds(mark) >= wanted:
                return mark
    raise AssertionError(f"no row splits the parents of {conn.name} by {field} {direction}")


@pytest.mark.parametrize(("conn", "field", "direction"), NESTED_ORDERS)
async def test_nested_after_is_a_position_applied_to_every_parent(
    client: GraphQLClient, conn: Conn, field: str, direction: str
) -> None:
    mark = splitting_row(conn, field, direction)
    owner = next(p for p in conn.parents if mark in conn.rows(p))
    order = order_arg(field, direction)
    cursor = (await cursors_by_id(client, conn, owner, order))[mark.id]
    key = sort_key(conn, field)
    pages = await fetch_batch(client, conn, first=2, after=cursor, orderBy=order)
    for parent, page in pages.items():
        rows = ordered(conn, parent, field, direction)
        later = [
            r.id
            for r in rows
            if (key(r) < key(mark) if direction == "DESC" else key(r) > key(mark))
        ]
        assert edge_ids(page) == later[:2], f"parent {parent}"
        assert page["pageInfo"]["hasNextPage"] is (len(later) > 2), f"parent {parent}"
        assert page["totalCount"] == len(rows), f"parent {parent}"  # paging ignored


@pytest.mark.parametrize(("conn", "field", "direction"), NESTED_ORDERS)
async def test_nested_before_is_a_position_applied_to_every_parent(
    client: GraphQLClient, conn: Conn, field: str, direction: str
) -> None:
    mark = splitting_row(conn, field, direction)
    owner = next(p for p in conn.parents if mark in conn.rows(p))
    order = order_arg(field, direction)
    cursor = (await cursors_by_id(client, conn, owner, order))[mark.id]
    key = sort_key(conn, field)
    pages = await fetch_batch(client, conn, last=2, before=cursor, orderBy=order)
    for parent, page in pages.items():
        rows = ordered(conn, parent, field, direction)
        earlier = [
            r.id
            for r in rows
            if (key(r) > key(mark) if direction == "DESC" else key(r) < key(mark))
        ]
        assert edge_ids(page) == earlier[-2:], f"parent {parent}"
        assert page["pageInfo"]["hasPreviousPage"] is (len(earlier) > 2), f"parent {parent}"
        assert page["totalCount"] == len(rows), f"parent {parent}"


async def test_nested_cursor_from_one_parent_pages_that_parent_alone_through_the_batch(
    client: GraphQLClient,
) -> None:
    """Walking user 1's posts through `users { posts(after:) }`: the page of user 1 at each
    step is exactly what `user(id: 1) { posts }` gives at that step."""
    conn = CONNS["User.posts"]
    order = order_arg("CREATED_AT", "ASC")
    expected = ids(ordered(conn, 1, "CREATED_AT", "ASC"))
    seen: list[int] = []
    after = None
    while True:
        pages = await fetch_batch(client, conn, first=4, after=after, orderBy=order)
        page = pages[1]
        seen += edge_ids(page)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == expected


# ---------------------------------------------------------------------------- totalCount


@pytest.mark.parametrize("conn", list(CONNS.values()), ids=lambda c: c.name)
async def test_total_count_ignores_first_after_last_and_before(
    client: GraphQLClient, conn: Conn
) -> None:
    parent = busiest_parent(conn)
    rows = ids(ordered(conn, parent))
    cursors = await cursors_by_id(client, conn, parent)
    pages: list[dict[str, Any]] = [
        {"first": 1},
        {"first": 0},
        {"last": 2},
        {"first": 2, "after": cursors[rows[2]]},
        {"last": 1, "before": cursors[rows[-1]]},
        {"first": 1, "after": cursors[rows[-1]]},
    ]
    for args in pages:
        page = await fetch(client, conn, parent, **args)
        assert page["totalCount"] == len(rows), args


@pytest.mark.parametrize("conn", list(CONNS.values()), ids=lambda c: c.name)
async def test_total_count_alone_needs_no_page(client: GraphQLClient, conn: Conn) -> None:
    parent = busiest_parent(conn)
    query = query_for(conn, "totalCount")
    data = await client.data(query, **variables_for(conn, parent, {"first": 1}))
    page = data["node"]["conn"] if conn.nested else data["conn"]
    assert page == {"totalCount": len(conn.rows(parent))}
