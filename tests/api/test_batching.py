"""The batching rule, counted: statements per request depend on the query's shape only.

Each query of the battery runs on a small data set and on one ten times larger (every parent
has the same number of children, there are 10x the parents) and every page is large enough to
return all rows, so the larger run really resolves 10x the objects. The statement count must be
identical at both scales and within the contract's bound: per place in the query where a
relation or root field appears, one statement for its rows and one for its totalCount; lookups
by ID of one type share a statement. Batches go to the database in rounds (loaders/rounds.py):
everything that becomes known while the previous statements run is one round, so lookups of
one type in one round share a statement wherever they sit in the query (`Post.user` and
`Comment.author`), and a lookup that needs an earlier round's rows is in a later round. Each
count below is exact, not just a ceiling, and the same however the requests interleave.
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from server.api import ids
from server.api.nodes import ENTITIES
from server.store import models
from server.store.models import table_of
from tests.conftest import make_client, unlimited_settings
from tests.support.backends import fresh_database
from tests.support.connections import CONNECTIONS, PARENT_LIST, Conn
from tests.support.gql import GraphQLClient
from tests.support.sqlcount import count_statements

USERS_PER_SCALE = 6
ARTICLES_PER_SCALE = 2
POSTS_PER_USER = 3
COMMENTS_PER_ARTICLE = 6


async def _fill(engine: AsyncEngine, scale: int) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    n_users, n_articles = USERS_PER_SCALE * scale, ARTICLES_PER_SCALE * scale
    users = [
        {"id": u, "username": f"user{u}", "created_at": t0 + timedelta(seconds=u)}
        for u in range(1, n_users + 1)
    ]
    posts = [
        {
            "id": (u - 1) * POSTS_PER_USER + k,
            "user_id": u,
            "title": f"post {u}.{k}",
            "created_at": t0 + timedelta(seconds=u * 10 + k),
        }
        for u in range(1, n_users + 1)
        for k in range(1, POSTS_PER_USER + 1)
    ]
    articles = [
        {"id": a, "title": f"article {a}", "created_at": t0 + timedelta(seconds=a)}
        for a in range(1, n_articles + 1)
    ]
    comments = [
        {
            "id": (a - 1) * COMMENTS_PER_ARTICLE + k,
            "article_id": a,
            # every sixth comment has no author; the others cycle through the users
            "author_id": None if k == COMMENTS_PER_ARTICLE else (a * k) % n_users + 1,
            "text": f"comment {a}.{k}",
            "created_at": t0 + timedelta(seconds=a * 10 + k),
        }
        for a in range(1, n_articles + 1)
        for k in range(1, COMMENTS_PER_ARTICLE + 1)
    ]
    async with engine.begin() as connection:
        for model, rows in (
            (models.User, users),
            (models.Post, posts),
            (models.Article, articles),
            (models.Comment, comments),
        ):
            await connection.execute(insert(table_of(model)), rows)


@dataclass
class Scaled:
    engine: AsyncEngine
    client: GraphQLClient
    scale: int


@pytest_asyncio.fixture(scope="module")
async def scaled(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[list[Scaled]]:
    tmp = tmp_path_factory.mktemp(f"batching-{backend}")
    async with fresh_database(backend, tmp) as small, fresh_database(backend, tmp) as large:
        await _fill(small, 1)
        await _fill(large, 10)
        # The battery's documents are about statement counts at scale, far past the query
        # limits (tests/test_limits.py covers those): an app with every limit off.
        unlimited = unlimited_settings()
        async with (
            make_client(small, unlimited) as http_small,
            make_client(large, unlimited) as http_large,
        ):
            yield [
                Scaled(small, GraphQLClient(http_small), 1),
                Scaled(large, GraphQLClient(http_large), 10),
            ]


@dataclass(frozen=True)
class Case:
    name: str
    query: str
    bound: int  # from the contract's rule; see each case's comment
    objects: str | None  # what grows 10x (None: counts only), for the failure message


BATTERY = [
    # articles: rows + count; comments: rows + count; author (users by id); posts: rows + count
    Case(
        "articles>comments>author>posts, totalCount at each level",
        """{
        articles(first: 100) { totalCount nodes { title
          comments(first: 100) { totalCount nodes { text
            author { username posts(first: 100) { totalCount nodes { title } } } } } } } }""",
        bound=7,
        objects="articles, their comments, authors and their posts",
    ),
    # users: rows; posts: rows; comments: rows; then one round: Post.user and Comment.author
    # (users by id, one statement for both places) and Comment.article (articles by id)
    Case(
        "users>posts>user and users>comments>article,author",
        """{
        users(first: 100) { nodes { username
          posts(first: 100) { nodes { title user { username } } }
          comments(first: 100) { nodes { text article { title } author { username } } } } } }""",
        bound=5,
        objects="users with posts and comments",
    ),
    # users: rows + count; posts (ordered, filtered, paged): rows + count; Post.user: users by id
    Case(
        "edges, cursors, pageInfo, orderBy and filter on a nested connection",
        """{
        users(first: 100, filter: {username: {startsWith: "USER"}}) { totalCount edges { cursor
          node { posts(first: 2, orderBy: {field: TITLE, direction: DESC},
                       filter: {title: {contains: "POST"}}) {
            totalCount pageInfo { hasNextPage endCursor } edges { cursor node { user { id } } }
        } } } } }""",
        bound=5,
        objects="users, two posts each",
    ),
    # comments: rows; article: by id; article.comments: rows + count; author (twice): users by
    # id; author.comments: rows
    Case(
        "comments>article>comments>author and comments>author>comments",
        """{
        comments(first: 100) { nodes {
          article { comments(last: 3) { totalCount nodes { author { username } } } }
          author { comments(first: 2) { nodes { text } } } } } }""",
        bound=7,
        objects="comments with articles and authors",
    ),
    # two root places: rows each; Post.user in both places: users by id, one statement
    Case(
        "aliases: the same connection twice with different orderBy",
        """{
        a: posts(first: 100) { nodes { user { username } } }
        b: posts(first: 100, orderBy: {field: TITLE, direction: DESC}) { nodes { user { id } } }
        }""",
        bound=3,
        objects="posts, twice",
    ),
    # comments: rows; Comment.article through a fragment: articles by id; author is turned
    # off by @include / @skip, so its users-by-id statement never runs
    Case(
        "many-to-one through fragments, edges and @include/@skip",
        """{
        comments(first: 100) {
          nodes { ...C author @include(if: false) { username } }
          edges { node { ... on Comment { article { id } author @skip(if: true) { id } } } } } }
        fragment C on Comment { text article { title } }""",
        bound=2,
        objects="comments with their article",
    ),
    # two root lookups and a node lookup of one type, in one round: one users-by-id statement
    Case(
        "aliased root lookups by id share a statement",
        """{
        a: user(id: "VXNlcjox") { username } b: user(id: "VXNlcjoy") { username }
        c: node(id: "VXNlcjoz") { id } }""",
        bound=1,
        objects=None,
    ),
    # articles: count only (no rows asked); comments: count only
    Case(
        "totalCount alone loads no rows",
        """{
        articles(first: 100) { totalCount } comments { totalCount } }""",
        bound=2,
        objects=None,
    ),
]


@pytest.mark.parametrize("case", BATTERY, ids=lambda case: case.name)
async def test_statement_count_does_not_grow_with_rows(scaled: list[Scaled], case: Case) -> None:
    counts, sizes = [], []
    for run in scaled:
        with count_statements(run.engine) as statements:
            data = await run.client.data(case.query)
        counts.append(len(statements))
        sizes.append(len(str(data)))
        assert len(statements) == case.bound, (
            f"{case.name}: {len(statements)} statements at scale {run.scale}, bound "
            f"{case.bound}:\n{statements.listing()}"
        )
    assert counts[0] == counts[1], f"{case.name}: {counts} statements at scales 1 and 10"
    if case.objects is not None:  # root pages stop at 100 rows, so not a full 10x
        assert sizes[1] > 3 * sizes[0], f"the 10x data set should return more {case.objects}"


async def test_rounds_do_not_depend_on_how_requests_interleave(scaled: list[Scaled]) -> None:
    """Concurrent requests finish their statements in any order; each still runs its rounds
    exactly as alone (a split round would add statements, a merged one lose a place)."""
    run = scaled[1]
    case = next(case for case in BATTERY if case.name.startswith("users>posts>user"))
    concurrent = 12
    with count_statements(run.engine) as statements:
        answers = await asyncio.gather(*(run.client.data(case.query) for _ in range(concurrent)))
    assert all(answer == answers[0] for answer in answers)
    assert len(statements) == concurrent * case.bound, statements.listing()


async def test_nodes_of_many_ids_share_one_statement_per_type(scaled: list[Scaled]) -> None:
    counts = []
    for run in scaled:
        n_posts = USERS_PER_SCALE * run.scale * POSTS_PER_USER
        n_comments = ARTICLES_PER_SCALE * run.scale * COMMENTS_PER_ARTICLE
        global_ids = [ids.encode("Post", pk) for pk in range(1, n_posts + 1)]
        global_ids += [ids.encode("Comment", pk) for pk in range(1, n_comments + 1)]
        global_ids.append(ids.encode("Post", 10**6))  # names no row: a null entry
        with count_statements(run.engine) as statements:
            data = await run.client.data(
                """query($ids: [ID!]!) { nodes(ids: $ids) {
                     ... on Post { title user { username } }
                     ... on Comment { article { title } } } }""",
                ids=global_ids,
            )
        assert len(data["nodes"]) == len(global_ids)
        assert data["nodes"][-1] is None
        assert all(node is not None for node in data["nodes"][:-1])
        counts.append(len(statements))
        # posts by id, comments by id, users by id, articles by id
        assert len(statements) == 4, statements.listing()
    assert counts[0] == counts[1]


async def test_nested_pages_are_per_parent_in_one_statement(scaled: list[Scaled]) -> None:
    run = scaled[1]
    with count_statements(run.engine) as statements:
        data = await run.client.data(
            "{ users(first: 100) { nodes { databaseId posts(first: 2) { nodes { title } } } } }"
        )
    users = data["users"]["nodes"]
    assert len(users) == USERS_PER_SCALE * 10
    for user in users:
        uid = user["databaseId"]
        assert [p["title"] for p in user["posts"]["nodes"]] == [f"post {uid}.1", f"post {uid}.2"]
    pages = [
        sql
        for sql in statements
        if "row_number() OVER (PARTITION BY" in sql.replace("ROW_NUMBER", "row_number")
    ]
    assert len(statements) == 2, statements.listing()
    assert len(pages) == 1, statements.listing()
    assert "OFFSET" not in pages[0].upper()


# ---------------------------------------------------------------------------- every connection


def _registry_case(conn: Conn) -> tuple[str, int]:
    """A query reading every row of `conn` with every many-to-one field of its nodes, and its
    exact statement count: the rows, their totalCount, one by-id lookup per target table of
    the many-to-one fields (page-wide, whatever the number of rows), and the parents' page."""
    entity = ENTITIES[conn.node_type]
    to_one = " ".join(f"{name} {{ databaseId }}" for name in entity.to_one)
    body = f"{conn.field}(first: 100) {{ totalCount nodes {{ databaseId {to_one} }} }}"
    if conn.nested:
        assert conn.parent_type is not None
        body = f"{PARENT_LIST[conn.parent_type]}(first: 100) {{ nodes {{ {body} }} }}"
    targets = {relation.target for relation in entity.to_one.values()}
    return f"{{ {body} }}", 2 + len(targets) + conn.nested


@pytest.mark.parametrize("conn", list(CONNECTIONS.values()), ids=lambda c: c.name)
async def test_every_connection_loads_its_rows_and_relations_in_fixed_statements(
    engine: AsyncEngine, unlimited_client: GraphQLClient, conn: Conn
) -> None:
    query, bound = _registry_case(conn)
    with count_statements(engine) as statements:
        await unlimited_client.data(query)
    assert len(statements) == bound, f"{conn.name}: {query}\n{statements.listing()}"
