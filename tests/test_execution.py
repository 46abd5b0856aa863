"""The scalar fast path (server/api/execution.py) answers exactly as graphql-core does.

First on a small schema with values that must fall back (a null in a non-null field, an Int
out of range, an extension that sees every field), then on the real schema and data: every
query of a battery gives the same JSON, byte for byte, with and without the fast path.
"""

from typing import Any

import orjson
import pytest
import strawberry
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from loaders import Database, Loaders
from server.api.context import Context
from server.api.execution import LeafFastPathContext
from server.api.schema import build_schema


@strawberry.type
class Thing:
    name: str
    maybe: str | None
    count: int
    children: list["Thing"]


def _things() -> list[Thing]:
    ok = Thing(name="ok", maybe=None, count=1, children=[])
    broken = Thing(name=None, maybe="x", count=2**40, children=[ok])  # type: ignore[arg-type]
    return [ok, broken, Thing(name="nested", maybe="y", count=3, children=[broken, ok])]


@strawberry.type
class Root:
    @strawberry.field
    def things(self) -> list[Thing | None]:
        return _things()


class SeesEveryField(SchemaExtension):
    def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
        value = _next(root, info, *args, **kwargs)
        return value.upper() if isinstance(value, str) else value


QUERY = "{ things { name maybe count children { name count maybe } } }"


def _result(context_class: type, **kwargs: Any) -> Any:
    schema = strawberry.Schema(query=Root, execution_context_class=context_class, **kwargs)
    result = schema.execute_sync(QUERY)
    errors = [(e.message, e.path) for e in result.errors or ()]
    return result.data, sorted(errors, key=str)


def test_fallbacks_match_graphql_core() -> None:
    fast = _result(LeafFastPathContext)
    stock = _result(StrawberryGraphQLCoreExecutionContext)
    assert fast == stock
    data, errors = fast
    assert data["things"][0] == {"name": "ok", "maybe": None, "count": 1, "children": []}
    assert data["things"][1] is None  # non-null name was null: the error nulls the item
    assert {tuple(path) for _, path in errors} >= {("things", 1, "name")}


def test_an_extension_that_resolves_sees_every_field() -> None:
    fast = _result(LeafFastPathContext, extensions=[SeesEveryField])
    assert fast == _result(StrawberryGraphQLCoreExecutionContext, extensions=[SeesEveryField])
    assert fast[0]["things"][0]["name"] == "OK"


BATTERY = [
    """{ users(first: 100, orderBy: {field: USERNAME}) { totalCount nodes { id databaseId
         username createdAt isEditor posts(first: 3) { edges { cursor node { id title createdAt
         user { username } } } pageInfo { hasNextPage endCursor } } } } }""",
    """{ comments(last: 50) { nodes { __typename id text createdAt
         author { id username } article { title comments(first: 2) { totalCount } } } } }""",
    """query { nodes(ids: ["VXNlcjox", "UG9zdDox", "QXJ0aWNsZTox", "Q29tbWVudDox", "UG9zdDo5OTk5"])
         { __typename id ... on User { username } ... on Post { title user { id } }
           ... on Article { title } ... on Comment { text author { username } } } }""",
    """{ a: posts(first: 5) { nodes { t: title title ...P } } b: articles { nodes { id } } }
       fragment P on Post { createdAt databaseId user { u: username } }""",
]


async def _execute(engine: AsyncEngine, context_class: type | None, query: str) -> bytes:
    schema = build_schema()
    if context_class is not None:
        schema.execution_context_class = context_class
    db = Database(engine)
    try:
        context = Context(request=None, response=None, db=db, loaders=Loaders(db))
        result = await schema.execute(query, context_value=context)
    finally:
        await db.close()
    assert not result.errors, result.errors
    return orjson.dumps(result.data)


@pytest.mark.parametrize("query", BATTERY, ids=range(len(BATTERY)))
async def test_real_queries_answer_byte_for_byte_alike(engine: AsyncEngine, query: str) -> None:
    assert issubclass(build_schema().execution_context_class, LeafFastPathContext)
    fast = await _execute(engine, None, query)
    stock = await _execute(engine, StrawberryGraphQLCoreExecutionContext, query)
    assert fast == stock
    assert len(fast) > 200
