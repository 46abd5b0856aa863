"""The short ways answer exactly as strawberry's whole pipeline does: direct queries
(server/api/direct.py) and the view's plain JSON POSTs (`GraphQLView._run_plain`).

Each request here goes to two apps over the same engine: the default one, and one with both
short ways switched off. Status, content type and body bytes must be the same, and so must the
SQL statement counts; each case also says whether the direct path answered it or left it to
strawberry, and what the answer is.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio
from graphql import get_operation_ast, parse
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.routing import Route

from server.api import ids
from server.api.direct import DirectQueries
from server.api.schema import InkgraphSchema
from server.app import create_app
from server.settings import Settings
from server.view import GraphQLView
from tests.support.sqlcount import count_statements

GRAPHQL_RESPONSE = "application/graphql-response+json"


def _view(app: Any) -> GraphQLView:
    route = next(r for r in app.routes if isinstance(r, Route) and r.path == "/graphql")
    view = route.endpoint
    assert isinstance(view, GraphQLView)
    return view


def _schema(app: Any) -> InkgraphSchema:
    schema = _view(app).schema
    assert isinstance(schema, InkgraphSchema)
    return schema


@dataclass
class Apps:
    direct: httpx.AsyncClient
    strawberry: httpx.AsyncClient
    engine: AsyncEngine  # both apps'


@pytest_asyncio.fixture(scope="module")
async def apps(engine: AsyncEngine) -> AsyncIterator[Apps]:
    settings = Settings(graphql_max_depth=6)
    direct, plain = create_app(settings, engine=engine), create_app(settings, engine=engine)
    assert _schema(direct).direct is not None
    _schema(plain).direct = None
    _view(plain).short_posts = False
    transport = httpx.ASGITransport
    async with (
        httpx.AsyncClient(transport=transport(app=direct), base_url="http://i") as a,
        httpx.AsyncClient(transport=transport(app=plain), base_url="http://i") as b,
    ):
        yield Apps(a, b, engine)


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """One entry per request the direct path saw: True when it answered it."""
    seen: list[bool] = []
    original = DirectQueries.run

    async def run(self: DirectQueries, *args: Any) -> Any:
        result = await original(self, *args)
        seen.append(result is not None)
        return result

    monkeypatch.setattr(DirectQueries, "run", run)
    return seen


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    direct: bool  # whether the direct path answered it


async def both(
    apps: Apps,
    taken: list[bool],
    body: Any,
    *,
    method: str = "POST",
    accept: str = "application/json",
) -> Answer:
    """The answer of the default app, after checking the other app gives the same bytes and
    the same number of SQL statements."""
    answers = []
    for client in (apps.direct, apps.strawberry):
        headers = {"accept": accept, "content-type": "application/json"}
        if method == "POST":
            request = client.post("/graphql", content=orjson.dumps(body), headers=headers)
        else:
            request = client.get("/graphql", params=body, headers=headers)
        with count_statements(apps.engine) as statements:
            response = await request
        answers.append(
            (response.status_code, response.headers["content-type"], response.content, statements)
        )
    (status, kind, content, statements), other = answers
    assert (status, kind, content) == other[:3]
    assert len(statements) == len(other[3])
    assert len(taken) <= 1  # only the default app has a direct path
    direct = taken == [True]
    taken.clear()
    return Answer(
        status, orjson.loads(content) if kind.startswith("application/json") else {}, direct
    )


async def test_a_query_is_answered_directly(apps: Apps, taken: list[bool]) -> None:
    answer = await both(apps, taken, {"query": "{ users(first: 2) { nodes { databaseId } } }"})
    assert answer.direct
    assert answer.body == {"data": {"users": {"nodes": [{"databaseId": 1}, {"databaseId": 2}]}}}


async def test_variables_and_a_named_operation_among_several(apps: Apps, taken: list[bool]) -> None:
    document = """query One($id: ID!) { node(id: $id) { ... on User { username } } }
                  query Two { articles(first: 1) { totalCount } }"""
    user = ids.encode("User", 1)
    one = await both(
        apps, taken, {"query": document, "operationName": "One", "variables": {"id": user}}
    )
    assert one.direct
    assert set(one.body["data"]["node"]) == {"username"}
    two = await both(apps, taken, {"query": document, "operationName": "Two"})
    assert two.direct
    assert two.body["data"]["articles"]["totalCount"] > 0
    # Two operations and no name: graphql-core's request error, through strawberry.
    neither = await both(apps, taken, {"query": document})
    assert not neither.direct
    assert neither.body["data"] is None
    missing = await both(apps, taken, {"query": document, "operationName": "Three"})
    assert not missing.direct


async def test_errors_made_while_executing_are_coded_the_same(
    apps: Apps, taken: list[bool]
) -> None:
    # A variable that does not coerce: a request error raised inside execution.
    bad_variable = await both(
        apps,
        taken,
        {"query": "query($n: Int) { users(first: $n) { totalCount } }", "variables": {"n": "x"}},
        accept=GRAPHQL_RESPONSE,
    )
    assert bad_variable.direct
    assert bad_variable.status == 400
    assert [e["extensions"]["code"] for e in bad_variable.body["errors"]] == ["BAD_USER_INPUT"]
    # A field error with a path, and null in its place.
    bad_id = await both(
        apps, taken, {"query": '{ a: node(id: "nope") { id } b: users { totalCount } }'}
    )
    assert bad_id.direct
    assert bad_id.status == 200
    assert bad_id.body["data"]["a"] is None
    assert bad_id.body["data"]["b"]["totalCount"] > 0
    assert [e["path"] for e in bad_id.body["errors"]] == [["a"]]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("{ users { nodes { username } ", "GRAPHQL_PARSE_FAILED"),
        ("{ users { nodes { nope } } }", "GRAPHQL_VALIDATION_FAILED"),
        (
            "{ users { nodes { posts { nodes { user { posts { nodes { user { id } } } } } } } } }",
            "QUERY_TOO_COMPLEX",
        ),
    ],
)
async def test_a_refused_document_is_left_to_strawberry(
    apps: Apps, taken: list[bool], query: str, code: str
) -> None:
    answer = await both(apps, taken, {"query": query}, accept=GRAPHQL_RESPONSE)
    assert not answer.direct
    assert answer.status == 400
    assert [e["extensions"]["code"] for e in answer.body["errors"]] == [code]


async def test_get_and_mutations(apps: Apps, taken: list[bool]) -> None:
    query = await both(apps, taken, {"query": "{ users { totalCount } }"}, method="GET")
    assert query.direct
    assert query.body["data"]["users"]["totalCount"] > 0
    login = (
        'mutation { login(input: {username: "nobody", password: "wrong"}) '
        "{ token userErrors { code } } }"
    )
    over_get = await both(apps, taken, {"query": login}, method="GET")
    assert not over_get.direct
    assert over_get.status == 405
    over_post = await both(apps, taken, {"query": login})
    assert not over_post.direct
    assert over_post.status == 200
    assert over_post.body["data"]["login"]["token"] is None
    assert over_post.body["data"]["login"]["userErrors"]


@pytest.mark.parametrize(
    ("content", "content_type", "accept"),
    [
        (b'{"query": "{ users { totalCount } }"}', "application/json; charset=utf-8", "*/*"),
        (b'{"query": "{ users { totalCount } }"}', "application/JSON", "*/*"),
        (b'[{"query": "{ users { totalCount } }"}]', "application/json", "*/*"),
        (
            b'{"query": "{ users { totalCount } }", "extensions": {"a": 1}}',
            "application/json",
            "*/*",
        ),
        (b'{"query": "{ users { totalCount } }", "extra": 1}', "application/json", "*/*"),
        (b'{"query": 1}', "application/json", "*/*"),
        (b'{"query": "{ users { totalCount } }", "variables": []}', "application/json", "*/*"),
        (b'{"query": "{ users { totalCount } }", "operationName": 2}', "application/json", "*/*"),
        (b'{"query": "{ users { totalCount } }"', "application/json", "*/*"),
        (b'"query"', "application/json", "*/*"),
        (b"", "application/json", "*/*"),
        (b'{"query": "{ users { totalCount } }"}', "application/json", "text/event-stream"),
        (
            b'{"query": "{ users { totalCount } }"}',
            "application/json",
            'multipart/mixed;subscriptionSpec="1.0"',
        ),
        (b'{"query": "{ users { totalCount } }"}', "text/plain", "*/*"),
        (b'{"query": null}', "application/json", GRAPHQL_RESPONSE),
        (b'{"query": "{ users { totalCount } }", "variables": null}', "application/json", "*/*"),
    ],
)
async def test_the_view_answers_any_post_as_strawberry_does(
    apps: Apps, content: bytes, content_type: str, accept: str
) -> None:
    headers = {"content-type": content_type, "accept": accept}
    direct = await apps.direct.post("/graphql", content=content, headers=headers)
    plain = await apps.strawberry.post("/graphql", content=content, headers=headers)
    assert direct.status_code == plain.status_code
    assert direct.headers.get("content-type") == plain.headers.get("content-type")
    assert direct.content == plain.content


def test_the_operation_is_picked_as_direct_queries_expect() -> None:
    # server/api/direct.py relies on get_operation_ast: the named one, or the only one.
    two = parse("query A { a } query B { b } fragment F on Q { f }")
    one = parse("fragment F on Q { f } { a }")
    assert get_operation_ast(two, None) is None
    assert get_operation_ast(two, "B") is two.definitions[1]
    assert get_operation_ast(two, "C") is None
    assert get_operation_ast(one, None) is one.definitions[1]
    assert get_operation_ast(one, "A") is None
