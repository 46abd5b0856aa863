"""What the compiled plan (server/api/plan.py) could get wrong, each checked against graphql-core.

Every query here runs twice on the contract data set, whatever `--plan` says: once through a
schema with the plan on and once through plain graphql-core. The two answers must be the same
bytes and need the same number of SQL statements; each test also checks what the data or
errors are, and whether the plan answered the request or handed it to graphql-core.
"""

from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.types.arguments import convert_arguments

from loaders import Database, Loaders, batch
from server.api import ids, plan
from server.api.context import Context
from server.api.execution import LeafFastPathContext
from server.api.plan import PlanExecutor
from server.api.schema import build_schema
from server.app import create_app
from server.settings import Settings
from tests.support import dataset
from tests.support.sqlcount import count_statements

ON, OFF = build_schema(), build_schema(compiled_plan=False)


@dataclass
class Answer:
    body: dict[str, Any]
    path: str  # "planned", "fallback" or "unplanned": how the plan-on run was answered

    @property
    def data(self) -> Any:
        return self.body["data"]

    @property
    def error_paths(self) -> list[list[Any]]:
        return [error.get("path") for error in self.body["errors"]]


async def _run(engine: AsyncEngine, schema: Any, query: str, variables: Any) -> tuple[bytes, int]:
    db = Database(engine)
    try:
        context = Context(request=None, response=None, db=db, loaders=Loaders(db))
        with count_statements(engine) as statements:
            result = await schema.execute(query, variable_values=variables, context_value=context)
    finally:
        await db.close()
    errors = [error.formatted for error in result.errors or ()]
    return orjson.dumps({"data": result.data, "errors": errors}), len(statements)


async def both(engine: AsyncEngine, query: str, **variables: Any) -> Answer:
    """The answer, after checking that the plan and graphql-core give the same one."""
    before = dict(plan.STATS)
    planned, planned_count = await _run(engine, ON, query, variables)
    (path,) = [k for k, v in plan.STATS.items() if v != before.get(k, 0)]
    plain, plain_count = await _run(engine, OFF, query, variables)
    assert planned == plain
    if path == "planned":
        assert planned_count == plain_count
    return Answer(orjson.loads(planned), path)


async def test_fragments_on_the_node_interface(engine: AsyncEngine) -> None:
    user, post = ids.encode("User", 1), ids.encode("Post", 1)
    answer = await both(
        engine,
        """query($ids: [ID!]!, $user: ID!) {
             node(id: $user) { __typename ... on Node { id } ... on User { username } }
             nodes(ids: $ids) { __typename ...N ...P ... on Comment { text } } }
           fragment N on Node { id }
           fragment P on Post { title user { ... on Node { id } } }""",
        ids=[post, user, ids.encode("Post", 10**6), ids.encode("Comment", 1)],
        user=user,
    )
    assert answer.path == "planned"
    assert answer.data["node"] == {"__typename": "User", "id": user, "username": "alice"}
    first_post = dataset.POSTS[0]
    assert answer.data["nodes"][0] == {
        "__typename": "Post",
        "id": post,
        "title": first_post.title,
        "user": {"id": ids.encode("User", first_post.user_id)},
    }
    assert answer.data["nodes"][1] == {"__typename": "User", "id": user}
    assert answer.data["nodes"][2] is None
    assert answer.data["nodes"][3]["text"] == dataset.COMMENTS[0].text


async def test_skip_and_include_follow_the_variables_of_each_request(
    engine: AsyncEngine,
) -> None:
    query = """query($with: Boolean!, $n: Int) { posts(first: $n) { nodes {
                 title @skip(if: $with) user @include(if: $with) { username } } } }"""
    shown = await both(engine, query, **{"with": True, "n": 2})
    hidden = await both(engine, query, **{"with": False, "n": 3})
    assert shown.path == hidden.path == "planned"
    assert [set(node) for node in shown.data["posts"]["nodes"]] == [{"user"}] * 2
    # The plan cached for the first request is not reused with the other variables.
    assert [node["title"] for node in hidden.data["posts"]["nodes"]] == [
        p.title for p in dataset.POSTS[:3]
    ]


async def test_aliases_of_one_field_with_different_arguments(engine: AsyncEngine) -> None:
    answer = await both(
        engine,
        """{ users(first: 1) { nodes {
             a: posts(first: 1) { nodes { title } }
             b: posts(first: 3, orderBy: {field: ID, direction: DESC}) { totalCount
                  edges { cursor node { databaseId } } pageInfo { hasNextPage } } } } }""",
    )
    assert answer.path == "planned"
    (alice,) = answer.data["users"]["nodes"]
    own = [p.id for p in dataset.POSTS if p.user_id == 1]
    assert alice["a"] == {"nodes": [{"title": dataset.POSTS[0].title}]}
    assert [e["node"]["databaseId"] for e in alice["b"]["edges"]] == sorted(own)[::-1][:3]
    assert alice["b"]["totalCount"] == len(own)
    assert alice["b"]["pageInfo"] == {"hasNextPage": True}


async def test_literal_arguments_are_converted_once_and_variables_every_request(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversions: list[dict[str, Any]] = []

    def counted(raw: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        conversions.append(raw)
        return convert_arguments(raw, *args, **kwargs)

    monkeypatch.setattr("server.api.plan_build.convert_arguments", counted)
    bob = ids.encode("User", 2)
    literal = f'{{ posts(first: 2) {{ nodes {{ databaseId }} }} user(id: "{bob}") {{ username }} }}'
    answers = [await both(engine, literal)]
    # Converted at most once per field (the plan is shared by every backend's run in this
    # process), and never again afterwards.
    assert len(conversions) <= 2
    conversions.clear()
    answers += [await both(engine, literal) for _ in range(2)]
    assert conversions == []
    assert {a.path for a in answers} == {"planned"}
    assert len({orjson.dumps(a.body) for a in answers}) == 1
    assert answers[0].data["user"] == {"username": dataset.USERS[1].username}
    conversions.clear()
    query = "query($n: Int) { posts(first: $n) { nodes { databaseId } } }"
    two, four = await both(engine, query, n=2), await both(engine, query, n=4)
    assert (len(two.data["posts"]["nodes"]), len(four.data["posts"]["nodes"])) == (2, 4)
    assert conversions == [{"first": 2}, {"first": 4}]
    # A literal argument that fails is not remembered: each request reports the error.
    bad = '{ user(id: "bm90IGFuIGlk") { username } }'
    for _ in range(2):
        answer = await both(engine, bad)
        assert answer.data == {"user": None}
        assert answer.error_paths == [["user"]]


async def test_argument_errors_in_nested_lists_keep_graphql_cores_paths(
    engine: AsyncEngine,
) -> None:
    answer = await both(
        engine, "{ users(first: 2) { nodes { username posts(first: 101) { totalCount } } } }"
    )
    assert answer.path == "fallback"
    assert answer.data is None  # posts is non-null, so is every node and the root connection
    # graphql-core keeps the first error: the second user's sits under an already nulled path.
    assert answer.error_paths == [["users", "nodes", 0, "posts"]]
    assert {e["extensions"]["code"] for e in answer.body["errors"]} == {"BAD_USER_INPUT"}


async def test_a_bad_id_in_a_nullable_root_field_nulls_only_that_field(
    engine: AsyncEngine,
) -> None:
    answer = await both(
        engine, '{ a: post(id: "nope") { title } b: user(username: "alice") { id } }'
    )
    assert answer.path == "fallback"
    assert answer.data == {"a": None, "b": {"id": ids.encode("User", 1)}}
    assert answer.error_paths == [["a"]]


async def test_a_null_in_a_non_null_field_propagates_as_in_graphql_core(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = batch.load_by_column

    async def articles_vanished(db: Database, column: Any, keys: Any) -> Any:
        rows = await real(db, column, keys)
        return [None] * len(keys) if column.table.name == "articles" else rows

    monkeypatch.setattr(batch, "load_by_column", articles_vanished)
    answer = await both(
        engine,
        """{ post(id: "UG9zdDox") { title } comments(first: 2) { nodes { text
             author { username } article { title } } } }""",
    )
    assert answer.path == "fallback"
    # Comment.article is non-null, and so are the nodes list and the root connection.
    assert answer.data is None
    assert answer.error_paths == [["comments", "nodes", 0, "article"]]
    # A server-side inconsistency, not the caller's fault: masked, as graphql-core's error is.
    assert answer.body["errors"][0]["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}


async def test_typename_at_every_level(engine: AsyncEngine) -> None:
    answer = await both(
        engine,
        """{ __typename t: __typename users(first: 1) { __typename
             nodes { __typename } edges { __typename node { __typename } }
             pageInfo { __typename startCursor } } }""",
    )
    assert answer.path == "planned"
    users = answer.data["users"]
    assert answer.data["__typename"] == answer.data["t"] == "Query"
    assert users["__typename"] == "UserConnection"
    assert users["edges"] == [{"__typename": "UserEdge", "node": {"__typename": "User"}}]
    assert users["nodes"] == [{"__typename": "User"}]
    assert users["pageInfo"]["__typename"] == "PageInfo"


async def test_node_refetch_gives_the_object_the_list_gave(engine: AsyncEngine) -> None:
    selection = "id databaseId title createdAt user { id username }"
    listed = await both(engine, f"{{ posts(last: 2) {{ nodes {{ {selection} }} }} }}")
    post = listed.data["posts"]["nodes"][-1]
    again = await both(
        engine,
        f"query($id: ID!) {{ node(id: $id) {{ ... on Post {{ {selection} }} }} }}",
        id=post["id"],
    )
    assert listed.path == again.path == "planned"
    assert again.data["node"] == post


async def test_what_the_plan_does_not_know_goes_to_graphql_core(engine: AsyncEngine) -> None:
    introspection = await both(engine, "{ __schema { queryType { name } } users { totalCount } }")
    assert introspection.path == "unplanned"
    assert introspection.data["__schema"] == {"queryType": {"name": "Query"}}


async def test_the_setting_turns_the_plan_off(engine: AsyncEngine) -> None:
    assert ON.execution_context_class is PlanExecutor
    assert OFF.execution_context_class is LeafFastPathContext
    for flag, executor in ((True, PlanExecutor), (False, LeafFastPathContext)):
        app = create_app(Settings(graphql_compiled_plan=flag), engine=engine)
        route = next(r for r in app.routes if getattr(r, "path", None) == "/graphql")
        assert route.endpoint.schema.execution_context_class is executor  # type: ignore[attr-defined]
