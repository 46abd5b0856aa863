"""GraphQL over HTTP, health probes and GraphiQL, through the real app (`create_app`).

Status codes follow the GraphQL-over-HTTP spec as shared/API.md states it: GraphQL errors come
with 200, a body that is not a GraphQL request is 400, a mutation over GET is 405. Whatever the
request, the server never answers 500 and never shows its internals.
"""

import asyncio
import base64
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from starlette.applications import Starlette

import server.app
from loaders import Database, batch
from server.app import create_app
from server.ide import STATIC_PREFIX, asset_urls, assets_installed
from server.settings import Settings
from tests.support import dataset

INTERNALS = ("Traceback", 'File "', "SELECT", "sqlalchemy", "secret")
TYPENAME = {"query": "{ __typename }"}


def assert_no_internals(response: httpx.Response) -> None:
    for word in INTERNALS:
        assert word not in response.text, f"{word!r} leaked: {response.text[:500]}"


def errors_of(response: httpx.Response) -> list[dict[str, Any]]:
    assert_no_internals(response)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body.get("errors"), body
    return body["errors"]  # type: ignore[no-any-return]


def codes_of(response: httpx.Response) -> list[str]:
    return [error.get("extensions", {}).get("code") for error in errors_of(response)]


def b64(raw: str) -> str:
    return base64.b64encode(raw.encode()).decode()


def cursor(payload: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client over `app` with its lifespan running (the app disposes its own engine)."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://inkgraph"
        ) as client,
    ):
        yield client


# ---------------------------------------------------------------------------- transport


async def test_post_json_query(http: httpx.AsyncClient) -> None:
    response = await http.post("/graphql", json={"query": "{ users(first: 2) { totalCount } }"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"data": {"users": {"totalCount": len(dataset.USERS)}}}


async def test_post_with_variables_and_operation_name(http: httpx.AsyncClient) -> None:
    body = {
        "query": "query A { __typename } query B($n: Int) { users(first: $n) { totalCount } }",
        "operationName": "B",
        "variables": {"n": 1},
    }
    response = await http.post("/graphql", json=body)
    assert response.json() == {"data": {"users": {"totalCount": len(dataset.USERS)}}}


async def test_get_query(http: httpx.AsyncClient) -> None:
    response = await http.get(
        "/graphql",
        params={
            "query": "query($n: Int) { users(first: $n) { nodes { username } } }",
            "variables": json.dumps({"n": 1}),
        },
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"users": {"nodes": [{"username": "alice"}]}}}


@pytest.mark.parametrize(
    "query",
    [
        "mutation { __typename }",
        "mutation M { nope }",  # refused from its operation type alone, before validation
        "mutation { createUser(input: {}) { userErrors { message } } }",
    ],
)
async def test_mutation_over_get_is_405(http: httpx.AsyncClient, query: str) -> None:
    response = await http.get(
        "/graphql", params={"query": query}, headers={"Accept": "application/json"}
    )
    assert response.status_code == 405, response.text
    assert_no_internals(response)


async def test_mutation_over_get_writes_nothing(http: httpx.AsyncClient) -> None:
    mutation = (
        'mutation { createUser(input: {username: "via_get", password: "long enough secret"})'
        " { user { id } } }"
    )
    response = await http.get("/graphql", params={"query": mutation})
    assert response.status_code == 405, response.text
    check = await http.post("/graphql", json={"query": '{ user(username: "via_get") { id } }'})
    assert check.json() == {"data": {"user": None}}


async def test_mutation_over_get_by_operation_name_is_405(http: httpx.AsyncClient) -> None:
    response = await http.get(
        "/graphql",
        params={"query": "query Q { __typename } mutation M { __typename }", "operationName": "M"},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 405, response.text


@pytest.mark.parametrize("accept", [None, "application/json", "application/json, */*;q=0.5"])
async def test_graphql_errors_come_with_200(http: httpx.AsyncClient, accept: str | None) -> None:
    headers = {} if accept is None else {"Accept": accept}
    response = await http.post("/graphql", json={"query": "{ nope }"}, headers=headers)
    assert codes_of(response) == ["GRAPHQL_VALIDATION_FAILED"]


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        pytest.param(b'{"query": "{ __typename }"', "application/json", id="malformed JSON"),
        pytest.param(b"", "application/json", id="empty body"),
        pytest.param(b"\xff\xfe", "application/json", id="not UTF-8"),
        pytest.param(b"[" * 100_000, "application/json", id="deeply nested JSON"),
        pytest.param(b"{}", "application/json", id="{}"),
        pytest.param(b'{"query": null}', "application/json", id="query null"),
        pytest.param(b'{"query": ""}', "application/json", id="query empty"),
        pytest.param(b'{"query": 5}', "application/json", id="query 5"),
        pytest.param(b'{"query": ["{ __typename }"]}', "application/json", id="query list"),
        pytest.param(b'"x"', "application/json", id="JSON string"),
        pytest.param(b"[1]", "application/json", id="[1]"),
        pytest.param(b"[]", "application/json", id="[]"),
        pytest.param(b"null", "application/json", id="null"),
        pytest.param(b"5", "application/json", id="number"),
        pytest.param(
            b'{"query": "{ __typename }", "operationName": 5}',
            "application/json",
            id="operationName 5",
        ),
        pytest.param(
            b'{"query": "{ __typename }", "operationName": "Nope"}',
            "application/json",
            id="unknown operationName",
        ),
        pytest.param(
            b'{"query": "{ __typename }", "variables": "x"}', "application/json", id="variables x"
        ),
        pytest.param(
            b'{"query": "{ __typename }", "variables": [1]}', "application/json", id="variables []"
        ),
        pytest.param(
            b'{"query": "{ __typename }", "extensions": 5}', "application/json", id="extensions 5"
        ),
        pytest.param(b"{ __typename }", "text/plain", id="text/plain"),
        pytest.param(b"query={__typename}", "application/x-www-form-urlencoded", id="form"),
        pytest.param(b'{"query": "{ __typename }"}', None, id="no content type"),
    ],
)
async def test_not_a_graphql_request_is_400(
    http: httpx.AsyncClient, content: bytes, content_type: str | None
) -> None:
    headers = {"Accept": "application/json"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = await http.post("/graphql", content=content, headers=headers)
    assert response.status_code == 400, response.text
    assert_no_internals(response)
    message = response.text.strip()
    assert message
    assert "\n" not in message


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({}, id="no query"),
        pytest.param({"query": ""}, id="empty query"),
        pytest.param({"query": "{ __typename }", "variables": "{"}, id="variables not JSON"),
        pytest.param({"query": "{ __typename }", "variables": "5"}, id="variables 5"),
        pytest.param({"query": "{ __typename }", "variables": "[" * 5000}, id="deep variables"),
    ],
)
async def test_get_that_is_not_a_graphql_request_is_400(
    http: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await http.get("/graphql", params=params, headers={"Accept": "application/json"})
    assert response.status_code == 400, response.text
    assert_no_internals(response)


async def test_other_methods_are_405(http: httpx.AsyncClient) -> None:
    for method in ("PUT", "DELETE", "PATCH"):
        response = await http.request(method, "/graphql", json=TYPENAME)
        assert response.status_code == 405, (method, response.text)


# ---------------------------------------------------------------------------- error codes


@pytest.mark.parametrize(
    "query",
    [
        "{ users { nope } }",
        "{ users(nope: 1) { totalCount } }",
        "{ node { id } }",  # a required argument left out
        "{ users }",  # no selection on an object
        "query($n: String) { users(first: $n) { totalCount } }",
        "subscription { __typename }",
    ],
)
async def test_document_that_does_not_fit_the_schema_is_validation_failed(
    http: httpx.AsyncClient, query: str
) -> None:
    response = await http.post("/graphql", json={"query": query})
    assert codes_of(response) == ["GRAPHQL_VALIDATION_FAILED"]


@pytest.mark.parametrize(
    "query",
    ["{", "{ users { ", "query {", "}", "{ users(first: ) { totalCount } }", "{a" * 5000],
)
async def test_syntax_error_is_parse_failed(http: httpx.AsyncClient, query: str) -> None:
    response = await http.post("/graphql", json={"query": query})
    assert codes_of(response) == ["GRAPHQL_PARSE_FAILED"]


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ('{ users(first: "ten") { totalCount } }', {}),
        ("{ users(first: 1.5) { totalCount } }", {}),
        ("{ users(first: 99999999999) { totalCount } }", {}),
        ("{ users(orderBy: { field: SIZE }) { totalCount } }", {}),
        ("{ users(orderBy: { direction: ASC }) { totalCount } }", {}),
        ("{ users(orderBy: { field: ID, nope: 1 }) { totalCount } }", {}),
        ("{ node(id: null) { id } }", {}),
        ("{ nodes(ids: [null]) { id } }", {}),
        ('{ posts(filter: { createdAt: { gt: "2026-01-01" } }) { totalCount } }', {}),
        ('{ users(orderBy: { field: "ID" }) { totalCount } }', {}),
        ("query($n: Int) { users(first: $n) { totalCount } }", {"n": "ten"}),
        ("query($n: Int) { users(first: $n) { totalCount } }", {"n": 2**40}),
        ("query($n: Int!) { users(first: $n) { totalCount } }", {}),
        ("query($n: Int!) { users(first: $n) { totalCount } }", {"n": None}),
        ("query($o: UserOrder) { users(orderBy: $o) { totalCount } }", {"o": {"field": "SIZE"}}),
        ("query($o: UserOrder) { users(orderBy: $o) { totalCount } }", {"o": {"nope": 1}}),
        ("query($id: ID!) { node(id: $id) { id } }", {"id": ["x"]}),
        ("query($id: ID!) { node(id: $id) { id } }", {"id": {"x": 1}}),
        ("query($id: ID!) { node(id: $id) { id } }", {"id": None}),
        (
            "query($d: DateTime) { posts(filter: { createdAt: { gt: $d } }) { totalCount } }",
            {"d": "2026-01-01T00:00:00"},
        ),
    ],
)
async def test_wrong_argument_type_is_bad_user_input(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any]
) -> None:
    response = await http.post("/graphql", json={"query": query, "variables": variables})
    assert set(codes_of(response)) == {"BAD_USER_INPUT"}  # one error per wrong part


# Input that reaches SQL only after our own checks: each must be BAD_USER_INPUT or plain data
# (an empty result), never a database error surfacing as INTERNAL_SERVER_ERROR.
AWKWARD_INPUT = [
    pytest.param("{ node(id: $x) { id } }", "ID!", b64("User:99999999999"), id="id beyond int32"),
    pytest.param("{ nodes(ids: [$x]) { id } }", "ID!", b64("Post:2147483648"), id="ids int32+1"),
    pytest.param("{ user(id: $x) { id } }", "ID", b64("User:" + "9" * 30), id="user id huge"),
    pytest.param(
        "{ users(after: $x) { totalCount } }",
        "String",
        cursor([1, "Query.users", "id:asc", None, 2**40]),
        id="cursor id huge",
    ),
    pytest.param(
        "{ users(after: $x, orderBy: {field: CREATED_AT}) { nodes { id } } }",
        "String",
        cursor([1, "Query.users", "created_at:asc", "2026-01-01T00:00:00", 1]),
        id="cursor naive datetime",
    ),
    pytest.param(
        "{ users(after: $x, orderBy: {field: CREATED_AT}) { nodes { id } } }",
        "String",
        cursor([1, "Query.users", "created_at:asc", "9999-12-31T23:59:59-05:00", 1]),
        id="cursor datetime beyond year 9999 in UTC",
    ),
    pytest.param(
        "{ users(after: $x, orderBy: {field: USERNAME}) { nodes { id } } }",
        "String",
        cursor([1, "Query.users", "username:asc", "a\u0000b", 1]),
        id="cursor with NUL",
    ),
    pytest.param(
        "{ users(filter: {username: {eq: $x}}) { totalCount } }", "String", "a\u0000b", id="eq NUL"
    ),
    pytest.param(
        "{ users(filter: {username: {in: [$x]}}) { totalCount } }",
        "String!",
        "a\u0000b",
        id="in NUL",
    ),
    pytest.param(
        "{ users(filter: {username: {contains: $x}}) { totalCount } }",
        "String",
        "a\u0000b",
        id="contains NUL",
    ),
    pytest.param("{ user(username: $x) { id } }", "String", "a\u0000b", id="username NUL"),
    pytest.param("{ user(username: $x) { id } }", "String", "x" * 100_000, id="username long"),
    pytest.param(
        "{ posts(filter: {createdAt: {gt: $x}}) { totalCount } }",
        "DateTime",
        "9999-12-31T23:59:59-05:00",
        id="DateTime past 9999 in UTC",
    ),
    pytest.param(
        "{ posts(filter: {createdAt: {lt: $x}}) { totalCount } }",
        "DateTime",
        "0001-01-01T00:00:00+05:00",
        id="DateTime before year 1 in UTC",
    ),
]


@pytest.mark.parametrize(("selection", "type_", "value"), AWKWARD_INPUT)
async def test_awkward_input_never_becomes_an_internal_error(
    http: httpx.AsyncClient, selection: str, type_: str, value: str
) -> None:
    query = f"query($x: {type_}) {selection}"
    response = await http.post("/graphql", json={"query": query, "variables": {"x": value}})
    assert response.status_code == 200, response.text
    assert_no_internals(response)
    body = response.json()
    codes = [e.get("extensions", {}).get("code") for e in body.get("errors", [])]
    assert set(codes) <= {"BAD_USER_INPUT"}, body


# ---------------------------------------------------------------------------- unexpected errors


async def _raise_secret(*_args: Any, **_kwargs: Any) -> int:
    raise RuntimeError("secret SQL detail: SELECT password FROM users")


async def _broken_sql(db: Database, *_args: Any) -> int:
    await db.fetch(text("SELECT secret_column FROM secret_table"))
    return 0


@pytest.mark.parametrize("failure", [_raise_secret, _broken_sql], ids=["raise", "bad SQL"])
async def test_unexpected_error_is_masked_and_the_app_recovers(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, failure: Any
) -> None:
    query = {"query": "{ users { totalCount } posts(first: 1) { nodes { title } } }"}
    with monkeypatch.context() as patch:
        patch.setattr(batch, "load_root_count", failure)
        response = await http.post("/graphql", json=query)
    errors = errors_of(response)
    assert [e["message"] for e in errors] == ["Unexpected error."]
    assert [e["extensions"] for e in errors] == [{"code": "INTERNAL_SERVER_ERROR"}]
    assert errors[0]["path"] == ["users", "totalCount"]
    assert "secret" not in response.text

    after = await http.post("/graphql", json=query)
    assert after.status_code == 200
    body = after.json()
    assert "errors" not in body, body
    assert body["data"]["users"]["totalCount"] >= len(dataset.USERS)


# ---------------------------------------------------------------------------- probes


async def test_healthz(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_when_the_database_answers(http: httpx.AsyncClient) -> None:
    response = await http.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
async def test_readyz_is_503_when_the_database_refuses(scheme: str) -> None:
    settings = Settings(database_url=f"{scheme}://nobody:pw@127.0.0.1:{closed_port()}/x")
    async with serving(create_app(settings)) as client:
        started = time.monotonic()
        response = await client.get("/readyz")
        assert time.monotonic() - started < 5
        assert response.status_code == 503
        assert response.headers["content-type"].startswith("application/json")
        assert response.json() == {"status": "unavailable"}
        assert_no_internals(response)
        assert (await client.get("/healthz")).status_code == 200  # the process is still up


@contextmanager
def silent_server() -> Iterator[int]:
    """A port that completes TCP handshakes and then never says a word (a hung database)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


async def test_readyz_is_503_in_bounded_time_when_the_database_hangs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(server.app, "READINESS_TIMEOUT", 0.5)
    with silent_server() as port:
        app = create_app(Settings(database_url=f"postgresql://nobody@127.0.0.1:{port}/x"))
        async with serving(app) as client:
            started = time.monotonic()
            response = await asyncio.wait_for(client.get("/readyz"), timeout=10)
            assert time.monotonic() - started < 3
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}


# ---------------------------------------------------------------------------- GraphiQL


async def test_graphiql_is_served_with_local_assets_only(http: httpx.AsyncClient) -> None:
    if not assets_installed():
        pytest.fail("GraphiQL assets are missing: run `make install`", pytrace=False)
    page = await http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "unpkg" not in page.text
    assert "https://" not in page.text
    urls = asset_urls(page.text)
    assert {u.rsplit(".", 1)[-1] for u in urls} >= {"js", "css"}
    for url in urls:
        assert url.startswith(STATIC_PREFIX + "/"), url
        asset = await http.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url


async def test_graphiql_static_does_not_leak_files(http: httpx.AsyncClient) -> None:
    for path in ("/nope.js", "/../../settings.py", "/%2e%2e/%2e%2e/settings.py"):
        response = await http.get(STATIC_PREFIX + path)
        assert response.status_code == 404, path
