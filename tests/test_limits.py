"""Query limits, argument caps, errors per answer and schema exposure (API.md "Limits and
protection"): each limit just under is served, just over is refused with its code, figures
and no SQL; the contract's worked examples come out exactly."""

import asyncio
import gc
import time
from typing import Any

import httpx
import pytest
from graphql import Lexer, Source, TokenKind, get_introspection_query, parse
from sqlalchemy.ext.asyncio import AsyncEngine

from server.api import complexity, ids
from server.api.schema import build_schema
from server.settings import QUERY_LIMITS, Settings
from tests.conftest import make_client
from tests.support.gql import GraphQLClient
from tests.support.sqlcount import count_statements

SCHEMA = build_schema()._schema

THREE_LEVELS = """{ articles(first: 20) { totalCount nodes { title
  comments(first: 5, filter: {text: {contains: "great"}}) { totalCount
    nodes { text author { username posts(first: 2) { totalCount nodes { title } } } } } } } }"""
DEEP_10 = (
    "{ comments(first: 1) { nodes { "
    + "article { comments(first: 1) { nodes { " * 10
    + "text"
    + " } } }" * 10
    + " } } }"
)
U100_P100_U_P100_U_P100 = """{ users(first: 100) { nodes { posts(first: 100) { nodes {
  user { posts(first: 100) { nodes {
    user { posts(first: 100) { nodes { title } } } } } } } } } } }"""

# (document, depth, nodes, cost, refused by) — the contract's table, row by row.
WORKED_EXAMPLES = [
    ("{ posts(first: 10) { nodes { title } } }", 3, 10, 11, None),
    ("{ users { nodes { posts { nodes { title } } } } }", 5, 420, 441, None),
    (THREE_LEVELS, 8, 320, 662, None),
    (
        "{ users(first: 100) { nodes { username posts(first: 100) { nodes { title } } } } }",
        5,
        10_100,
        10_201,
        None,
    ),
    (
        "{ users(first: 100) { edges { cursor node { username "
        "posts(first: 100) { edges { cursor node { title } } } } } } }",
        7,
        10_100,
        20_301,
        None,
    ),
    (
        "{ comments(first: 100) { nodes { article { comments(first: 100) { nodes { "
        "author { username } } } } } } }",
        7,
        10_100,
        20_301,
        None,
    ),
    (
        "{ users(first: 100) { nodes { posts(first: 100) { nodes { user { "
        "posts(first: 3) { nodes { title } } } } } } } }",
        8,
        40_100,
        60_201,
        "nodes",
    ),
    (U100_P100_U_P100_U_P100, 11, 101_010_100, 103_030_201, "nodes"),
    (DEEP_10, 33, 11, 32, "depth"),
]


def figures(query: str, variables: dict[str, Any] | None = None) -> complexity.Figures:
    return complexity.measure(SCHEMA, parse(query), None, variables)


@pytest.mark.parametrize(("query", "depth", "nodes", "cost", "refused"), WORKED_EXAMPLES)
def test_worked_examples_have_the_contracts_figures(
    query: str, depth: int, nodes: int, cost: int, refused: str | None
) -> None:
    assert figures(query) == complexity.Figures(depth, nodes, cost)


def test_page_sizes_come_from_variables_and_are_capped() -> None:
    query = (
        "query($n: Int, $m: Int) "
        "{ users(first: $n) { nodes { posts(last: $m) { nodes { id } } } } }"
    )
    assert figures(query, {"n": 10, "m": 3}).nodes == 10 + 30
    assert figures(query, {}).nodes == 20 + 400  # absent: the default page of 20
    assert figures(query, {"n": 5000, "m": -4}).nodes == 100  # capped at 100; negative is 0
    both = "{ posts(first: 3, last: 7) { nodes { id } } }"
    assert figures(both).nodes == 7  # the larger of the two
    skipped = "{ posts(first: 5) @skip(if: true) { nodes { id } } }"
    assert figures(skipped).nodes == 5  # @skip/@include count as included


def test_fragments_count_like_their_expansion() -> None:
    inline = "{ users(first: 10) { nodes { posts(first: 10) { nodes { id } } } } }"
    spread = """{ users(first: 10) { ...U } }
      fragment U on UserConnection { nodes { ...P } }
      fragment P on User { posts(first: 10) { nodes { id } } }"""
    assert figures(spread) == figures(inline)


def doubling(levels: int) -> str:
    """`F0` spreads `F1` twice, `F1` spreads `F2` twice…: 2^levels copies of the last one."""
    parts = ["query { ...F0 }"]
    parts += [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)]
    parts.append(f"fragment F{levels} on Query {{ posts(first: 100) {{ nodes {{ id }} }} }}")
    return "\n".join(parts)


def test_a_fragment_doubling_document_costs_linear_time() -> None:
    document = parse(doubling(60))
    assert len(doubling(60)) < 4000
    started = time.perf_counter()
    result = complexity.measure(SCHEMA, document, None, None)
    elapsed = time.perf_counter() - started
    assert result.nodes == 2**60 * 100
    assert result.cost == 2**60 * 101
    assert elapsed < 0.05, elapsed


def test_depth_leaves_out_introspection() -> None:
    assert figures("{ __schema { types { fields { type { ofType { name } } } } } }").depth == 0
    assert figures("{ posts(first: 1) { __typename nodes { __typename } } }").depth == 2


# ---------------------------------------------------------------------------- over HTTP


async def refusal(client: GraphQLClient, engine: AsyncEngine, query: str, **variables: Any) -> Any:
    """The one error of a refused request, which ran no SQL."""
    with count_statements(engine) as statements:
        body = await client.execute(query, **variables)
    assert statements == [], statements.listing()
    assert body.get("data") is None, body
    assert len(body["errors"]) == 1, body["errors"]
    return body["errors"][0]


async def assert_too_complex(
    client: GraphQLClient, engine: AsyncEngine, query: str, limit: str, maximum: int, actual: int
) -> None:
    error = await refusal(client, engine, query)
    assert error["extensions"] == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": limit,
        "max": maximum,
        "actual": actual,
    }
    assert error["message"] == f"The query exceeds the {limit} limit: {actual} > {maximum}."


@pytest.mark.parametrize(("query", "depth", "nodes", "cost", "refused"), WORKED_EXAMPLES)
async def test_worked_examples_are_served_or_refused_as_the_contract_says(
    client: GraphQLClient,
    patient_client: GraphQLClient,
    engine: AsyncEngine,
    query: str,
    depth: int,
    nodes: int,
    cost: int,
    refused: str | None,
) -> None:
    if refused is None:
        await patient_client.data(query)
    else:
        actual = {"depth": depth, "nodes": nodes, "cost": cost}[refused]
        maximum = {"depth": 12, "nodes": 20_000, "cost": 50_000}[refused]
        await assert_too_complex(client, engine, query, refused, maximum, actual)


def padded(query: str, length: int) -> str:
    return query + " " * (length - len(query))


def tokens(count: int) -> str:
    """A valid document of `count` lexical tokens (1,000 or 1,001). Not 998 `__typename`s:
    graphql-core's overlapping-fields rule gives up on that many equal fields."""
    spreads = " ".join(f"...F{i}" for i in range(110))  # 2 tokens each
    fragments = " ".join(f"fragment F{i} on Query {{ __typename }}" for i in range(110))  # 7 each
    extra = " __typename" if count == 1_001 else ""
    return f"{{ viewer {{ id }} users {{ totalCount }}{extra} {spreads} }} {fragments}"


def lexical_tokens(query: str) -> int:
    lexer, count = Lexer(Source(query)), 0
    while lexer.advance().kind is not TokenKind.EOF:
        count += 1
    return count


def directives(count: int) -> str:
    return "{ " + "__typename @include(if: true) " * count + "}"  # one use per field


def aliases(count: int) -> str:
    return "{ " + " ".join(f"a{i}: __typename" for i in range(count)) + " }"


def depth(levels: int) -> str:
    """A document of depth `levels` (at least 3): comments > nodes > (article > …) > leaf."""
    middle, leaf = divmod(levels - 3, 3)
    inner = ["text", "article { id }", "article { comments { totalCount } }"][leaf]
    hops = "article { comments(first: 1) { nodes { " * middle
    return "{ comments(first: 1) { nodes { " + hops + inner + " } } }" * middle + " } } }"


NODES_20000 = """{ users(first: 100) { nodes {
    a: posts(first: 99) { nodes { id } } b: posts(first: 99) { nodes { id } } } }
  posts(first: 100) { nodes { id } } }"""
NODES_20001 = NODES_20000.replace(
    "posts(first: 100) { nodes { id } } }",
    "posts(first: 100) { nodes { id } } articles(first: 1) { nodes { id } } }",
)


def cost(total: int) -> str:
    """Cost `total` (49,999–50,001): 100 users with 82 posts that cost 6 each (the post, its
    user, two connections, two counts), five pages of 100 posts, and a top-up page."""
    top_up = {49_999: 92, 50_000: 93, 50_001: 94}[total]
    pages = " ".join(f"p{i}: posts(first: 100) {{ nodes {{ id }} }}" for i in range(5))
    return f"""{{ users(first: 100) {{ nodes {{ posts(first: 82) {{ nodes {{
        user {{ posts {{ totalCount }} comments {{ totalCount }} }} }} }} }} }}
      {pages} posts(first: {top_up}) {{ nodes {{ id }} }} }}"""


def test_the_boundary_documents_measure_what_they_claim() -> None:
    assert [lexical_tokens(tokens(n)) for n in (1_000, 1_001)] == [1_000, 1_001]
    assert figures(depth(12)).depth == 12
    assert figures(depth(13)).depth == 13
    assert figures(NODES_20000).nodes == 20_000
    assert figures(NODES_20001).nodes == 20_001
    assert [figures(cost(n)).cost for n in (49_999, 50_000, 50_001)] == [49_999, 50_000, 50_001]
    assert figures(cost(50_001)).nodes < 20_000


# (limit, default max, document just at the limit, document one over, its actual figure)
BOUNDARIES = [
    (
        "characters",
        15_000,
        padded("{ __typename }", 15_000),
        padded("{ __typename }", 15_001),
        15_001,
    ),
    ("tokens", 1_000, tokens(1_000), tokens(1_001), 1_001),
    ("directives", 50, directives(50), directives(51), 51),
    ("aliases", 15, aliases(15), aliases(16), 16),
    ("depth", 12, depth(12), depth(13), 13),
    ("nodes", 20_000, NODES_20000, NODES_20001, 20_001),
    ("cost", 50_000, cost(50_000), cost(50_001), 50_001),
]


@pytest.mark.parametrize(
    ("limit", "maximum", "at", "over", "actual"), BOUNDARIES, ids=[b[0] for b in BOUNDARIES]
)
async def test_each_limit_serves_its_maximum_and_refuses_one_more(
    client: GraphQLClient,
    patient_client: GraphQLClient,
    engine: AsyncEngine,
    limit: str,
    maximum: int,
    at: str,
    over: str,
    actual: int,
) -> None:
    await patient_client.data(at)
    await assert_too_complex(client, engine, over, limit, maximum, actual)


async def test_the_issues_abusive_documents_are_refused_before_any_sql(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    abusive = """{ users(first:100){nodes{posts(first:100){nodes{user{posts(first:100){nodes{
      user{posts(first:100){nodes{title}}}}}}}}}} }"""
    error = await refusal(client, engine, abusive)
    assert error["extensions"]["limit"] == "nodes"
    assert error["extensions"]["actual"] == 101_010_100
    error = await refusal(client, engine, doubling(30))
    assert error["extensions"]["limit"] == "nodes"
    graphql_cop = "{ " + " ".join(f"a{i}: __typename" for i in range(101)) + " }"
    assert (await refusal(client, engine, graphql_cop))["extensions"]["limit"] == "aliases"
    user = f'user(id: "{ids.encode("User", 1)}") {{ id }}'
    users = "{ " + " ".join(f"u{i}: {user}" for i in range(16)) + " }"
    assert (await refusal(client, engine, users))["extensions"]["limit"] == "aliases"
    pages = "{ " + " ".join(f"p{i}: posts(first: 100) {{ nodes {{ id }} }}" for i in range(1000))
    assert (await refusal(client, engine, pages + " }"))["extensions"]["limit"] == "characters"


async def test_the_full_introspection_query_is_served(client: GraphQLClient) -> None:
    data = await client.data(get_introspection_query())
    assert data["__schema"]["queryType"]["name"] == "Query"


async def test_megabyte_documents_are_refused_fast_and_others_are_served_meanwhile(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    # Just under the 1 MiB body limit (HTTP_MAX_BODY_BYTES), so the query limits answer.
    huge = [" " * 1_000_000 + "{ __typename }", "__typename " * 90_000, "{ a" * 300_000]

    async def refuse(query: str) -> float:
        started = time.perf_counter()
        response = await http.post("/graphql", json={"query": query})
        elapsed = time.perf_counter() - started
        assert response.json()["errors"][0]["extensions"]["limit"] == "characters"
        return elapsed

    async def cheap() -> float:
        started = time.perf_counter()
        response = await http.post("/graphql", json={"query": "{ posts(first: 1) { totalCount } }"})
        assert "errors" not in response.json()
        return time.perf_counter() - started

    # Timed are the refusals, not one-time set-up or a collection of the test session's heap
    # (thousands of tests in): one untimed refusal first, and a collection before.
    await refuse(huge[0])
    gc.collect()
    with count_statements(engine) as statements:
        refusals = [await refuse(query) for query in huge]
    assert statements == []
    assert max(refusals) < 0.5, refusals
    results = await asyncio.gather(*(refuse(q) for q in huge * 5), *(cheap() for _ in range(10)))
    assert max(results[len(huge) * 5 :]) < 1.0, results


async def test_status_is_400_for_graphql_response_json(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/graphql",
        json={"query": aliases(16)},
        headers={"Accept": "application/graphql-response+json"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


async def test_limits_are_set_by_environment_and_zero_turns_one_off(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRAPHQL_MAX_ALIASES", "2")
    monkeypatch.setenv("GRAPHQL_MAX_DEPTH", "0")
    async with make_client(engine, Settings()) as http:
        client = GraphQLClient(http)
        await client.data(aliases(2))
        await assert_too_complex(client, engine, aliases(3), "aliases", 2, 3)
        await client.data(depth(13))


# ---------------------------------------------------------------------------- argument caps


def node_ids(count: int) -> list[str]:
    return [ids.encode("Post", pk) for pk in range(1, count + 1)]


async def assert_capped(
    client: GraphQLClient,
    engine: AsyncEngine,
    query: str,
    argument: str,
    actual: int,
    **variables: Any,
) -> None:
    error = await refusal(client, engine, query, **variables)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["argument"] == argument
    assert argument in error["message"]
    assert str(actual) in error["message"]


NODES_QUERY = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"
IN_QUERY = "query($v: [String!]) { posts(filter: {title: {in: $v}}) { totalCount } }"


async def test_nodes_takes_at_most_100_ids(client: GraphQLClient, engine: AsyncEngine) -> None:
    data = await client.data(NODES_QUERY, ids=node_ids(100))
    assert len(data["nodes"]) == 100
    await assert_capped(client, engine, NODES_QUERY, "nodes.ids", 101, ids=node_ids(101))
    literal = "{ nodes(ids: [" + ", ".join(f'"{i}"' for i in node_ids(101)) + "]) { id } }"
    await assert_capped(client, engine, literal, "nodes.ids", 101)


async def test_input_lists_take_at_most_250_items(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    values = [f"t{n}" for n in range(250)]
    assert (await client.data(IN_QUERY, v=values))["posts"]["totalCount"] == 0
    await assert_capped(client, engine, IN_QUERY, "$v", 251, v=[*values, "one more"])
    literal = (
        "{ posts(filter: {title: {in: ["
        + ", ".join(f'"t{n}"' for n in range(251))
        + "]}}) { totalCount } }"
    )
    await assert_capped(client, engine, literal, "posts.filter.title.in", 251)


async def test_page_size_out_of_range_runs_no_sql(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    for first in (101, 0 - 1):
        error = await refusal(client, engine, f"{{ posts(first: {first}) {{ totalCount }} }}")
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert "first" in error["message"]


# ---------------------------------------------------------------------------- errors per answer


async def test_an_answer_carries_at_most_ten_errors(client: GraphQLClient) -> None:
    body = await client.execute("{ " + " ".join(f"f{i}" for i in range(12)) + " }")
    assert len(body["errors"]) == 10
    assert len({error["message"] for error in body["errors"]}) == 10


async def test_identical_request_errors_are_reported_once(client: GraphQLClient) -> None:
    body = await client.execute("query { __typename " + "@aa " * 10 + "}")
    assert len(body["errors"]) == 1, body["errors"]
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


# ---------------------------------------------------------------------------- exposure

SUGGESTION_PROBES = [
    pytest.param('{ user(username: "ada") { usernam } }', {}, id="field"),
    pytest.param("{ posts(firs: 1) { totalCount } }", {}, id="argument"),
    pytest.param("{ posts(orderBy: {field: TITL}) { totalCount } }", {}, id="enum"),
    pytest.param('{ posts(filter: {titl: {eq: "x"}}) { totalCount } }', {}, id="input field"),
    pytest.param("query($o: PostOrde) { posts(orderBy: $o) { totalCount } }", {}, id="type"),
    pytest.param(
        "query($o: PostOrder) { posts(orderBy: $o) { totalCount } }",
        {"o": {"field": "TITL"}},
        id="enum in variables",
    ),
    pytest.param(
        "query($f: PostFilter) { posts(filter: $f) { totalCount } }",
        {"f": {"titl": {"eq": "x"}}},
        id="input field in variables",
    ),
]


@pytest.mark.parametrize(("query", "variables"), SUGGESTION_PROBES)
async def test_no_suggestions_by_default(
    client: GraphQLClient, engine: AsyncEngine, query: str, variables: dict[str, Any]
) -> None:
    with count_statements(engine) as statements:
        body = await client.execute(query, **variables)
    assert statements == []
    assert body["errors"]
    for error in body["errors"]:
        assert "Did you mean" not in error["message"], error


async def test_suggestions_come_back_when_switched_on(engine: AsyncEngine) -> None:
    async with make_client(engine, Settings(graphql_suggestions=True)) as http:
        body = await GraphQLClient(http).execute('{ user(username: "ada") { usernam } }')
    assert "Did you mean 'username'?" in body["errors"][0]["message"]


INTROSPECTION = [
    "{ __schema { types { name } } }",
    '{ __type(name: "User") { name fields { name } } }',
    "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }",
]


@pytest.mark.parametrize("query", INTROSPECTION)
async def test_introspection_off_refuses_schema_queries(engine: AsyncEngine, query: str) -> None:
    async with make_client(engine, Settings(graphql_introspection=False)) as http:
        client = GraphQLClient(http)
        body = await client.execute(query)
        assert body.get("data") is None
        assert body["errors"]
        assert {e["extensions"]["code"] for e in body["errors"]} == {"GRAPHQL_VALIDATION_FAILED"}
        assert all("introspection" in e["message"].lower() for e in body["errors"])
        assert await client.data("{ __typename posts(first: 1) { totalCount } }")
        page = await http.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 404


async def test_introspection_is_on_by_default(
    client: GraphQLClient, http: httpx.AsyncClient
) -> None:
    data = await client.data('{ __type(name: "User") { name } }')
    assert data == {"__type": {"name": "User"}}
    page = await http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200


def test_without_query_limits_turns_off_every_limit_and_nothing_else() -> None:
    defaults = Settings()
    unlimited = defaults.without_query_limits()
    limits = {name for name in Settings.model_fields if name.startswith("graphql_max_")}
    assert limits | {"graphql_execution_timeout"} == set(QUERY_LIMITS)
    changed = {
        name
        for name in Settings.model_fields
        if getattr(unlimited, name) != getattr(defaults, name)
    }
    assert changed == set(QUERY_LIMITS)
    assert all(getattr(unlimited, name) == 0 for name in QUERY_LIMITS)
