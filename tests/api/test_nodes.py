"""Root lookups: node/nodes round trips for every type, typed lookups, and their bad input."""

import base64
from typing import Any

import pytest
from strawberry.utils.str_converters import to_camel_case

from loaders import Relation
from server.api import ids
from server.api.nodes import ENTITIES, Entity
from tests.support import dataset
from tests.support.connections import CONNECTIONS
from tests.support.gql import GraphQLClient


def _one_of_each() -> list[Any]:
    """Per entity: a row from the middle of its reference rows and its text column."""
    params = []
    for conn in CONNECTIONS.values():
        if not conn.nested:
            rows = conn.rows(None)
            row = rows[len(rows) // 2]
            value = getattr(row, conn.text)
            params.append(pytest.param(conn.node_type, row.id, conn.text, value, id=conn.node_type))
    return params


ONE_OF_EACH = _one_of_each()
FIELD_NAMES = {name: to_camel_case(name) for _, _, name, _ in (p.values for p in ONE_OF_EACH)}


@pytest.mark.parametrize(("type_name", "pk", "column", "value"), ONE_OF_EACH)
async def test_node_round_trips_every_type(
    client: GraphQLClient, type_name: str, pk: int, column: str, value: str
) -> None:
    global_id = ids.encode(type_name, pk)
    field = FIELD_NAMES[column]
    data = await client.data(
        f"""query($id: ID!) {{ node(id: $id) {{ __typename id
              ... on {type_name} {{ databaseId {field} }} }} }}""",
        id=global_id,
    )
    assert data["node"] == {
        "__typename": type_name,
        "id": global_id,
        "databaseId": pk,
        field: value,
    }


TO_ONE = [
    pytest.param(entity, name, relation, id=f"{entity.name}.{name}")
    for entity in ENTITIES
    for name, relation in entity.to_one.items()
]


@pytest.mark.parametrize(("entity", "name", "relation"), TO_ONE)
async def test_many_to_one_fields_of_a_refetched_node(
    client: GraphQLClient, entity: Entity[Any], name: str, relation: Relation
) -> None:
    # The path a page never takes: the node alone, its relation loaded by itself.
    fk = relation.local_column.name
    for row in dataset.ROWS[entity.table.name]:
        data = await client.data(
            f"query($id: ID!) {{ node(id: $id) {{ ... on {entity.name} "
            f"{{ {name} {{ databaseId }} }} }} }}",
            id=ids.encode(entity.name, row.id),
        )
        key = getattr(row, fk)
        assert data["node"] == {name: None if key is None else {"databaseId": key}}


async def test_ids_from_a_connection_refetch_the_same_object(client: GraphQLClient) -> None:
    listed = await client.data("{ comments(first: 5) { nodes { id text } } }")
    for comment in listed["comments"]["nodes"]:
        data = await client.data(
            "query($id: ID!) { node(id: $id) { ... on Comment { text } } }", id=comment["id"]
        )
        assert data["node"]["text"] == comment["text"]


async def test_nodes_keeps_order_and_gives_null_for_missing_rows(client: GraphQLClient) -> None:
    wanted = [
        ids.encode("Post", 3),
        ids.encode("User", 999),
        ids.encode("User", 1),
        ids.encode("Comment", 1),
        ids.encode("Post", 3),
    ]
    data = await client.data(
        """query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }""", ids=wanted
    )
    assert data["nodes"] == [
        {"__typename": "Post", "id": wanted[0]},
        None,
        {"__typename": "User", "id": wanted[2]},
        {"__typename": "Comment", "id": wanted[3]},
        {"__typename": "Post", "id": wanted[4]},
    ]


async def test_missing_rows_are_null(client: GraphQLClient) -> None:
    data = await client.data(
        """query($u: ID!, $p: ID!, $a: ID!, $c: ID!) { node(id: $p) { id }
             user(id: $u) { id } post(id: $p) { id } article(id: $a) { id } comment(id: $c) { id }
           }""",
        u=ids.encode("User", 999),
        p=ids.encode("Post", 999),
        a=ids.encode("Article", 999),
        c=ids.encode("Comment", 999),
    )
    assert data == {"node": None, "user": None, "post": None, "article": None, "comment": None}


@pytest.mark.parametrize(
    ("field", "type_name", "pk"),
    [
        ("user", "User", 3),
        ("post", "Post", 1),
        ("article", "Article", 2),
        ("comment", "Comment", 13),
    ],
)
async def test_typed_lookups_find_their_row(
    client: GraphQLClient, field: str, type_name: str, pk: int
) -> None:
    data = await client.data(
        f"query($id: ID!) {{ {field}(id: $id) {{ databaseId }} }}", id=ids.encode(type_name, pk)
    )
    assert data[field] == {"databaseId": pk}


@pytest.mark.parametrize("spelling", ["bob", "BOB", "Bob", "bOb"])
async def test_user_by_username_ignores_case(client: GraphQLClient, spelling: str) -> None:
    data = await client.data("query($u: String!) { user(username: $u) { username } }", u=spelling)
    assert data["user"] == {"username": "Bob"}


async def test_user_by_unknown_username_is_null(client: GraphQLClient) -> None:
    data = await client.data('{ user(username: "nobody") { id } }')
    assert data["user"] is None


BAD_LOOKUPS = [
    pytest.param("{ user { id } }", id="user without arguments"),
    pytest.param('{ user(id: "VXNlcjox", username: "alice") { id } }', id="user with both"),
    pytest.param('{ node(id: "garbage!") { id } }', id="node garbage"),
    pytest.param('{ node(id: "") { id } }', id="node empty"),
    pytest.param(
        f'{{ node(id: "{base64.b64encode(b"User:abc").decode()}") {{ id }} }}',
        id="node non-numeric pk",
    ),
    pytest.param(
        f'{{ node(id: "{base64.b64encode(b"Nope:1").decode()}") {{ id }} }}', id="node unknown type"
    ),
    pytest.param(
        f'{{ nodes(ids: ["{ids.encode("User", 1)}", "nope"]) {{ id }} }}',
        id="nodes with one bad id",
    ),
    pytest.param(f'{{ user(id: "{ids.encode("Post", 1)}") {{ id }} }}', id="user with a Post id"),
    pytest.param(f'{{ post(id: "{ids.encode("User", 1)}") {{ id }} }}', id="post with a User id"),
    pytest.param(
        f'{{ article(id: "{ids.encode("Comment", 1)}") {{ id }} }}', id="article with a Comment id"
    ),
    pytest.param(
        f'{{ comment(id: "{ids.encode("Article", 1)}") {{ id }} }}', id="comment with an Article id"
    ),
]


@pytest.mark.parametrize("query", BAD_LOOKUPS)
async def test_bad_ids_are_bad_user_input(client: GraphQLClient, query: str) -> None:
    assert await client.error_codes(query) == ["BAD_USER_INPUT"]


async def test_relations_of_a_looked_up_object(client: GraphQLClient) -> None:
    data = await client.data(
        """query($id: ID!) { article(id: $id) { comments(first: 100) { totalCount nodes {
             databaseId author { username } article { databaseId } } } } }""",
        id=ids.encode("Article", 1),
    )
    expected = [c for c in dataset.COMMENTS if c.article_id == 1]
    names = {u.id: u.username for u in dataset.USERS}
    comments = data["article"]["comments"]
    assert comments["totalCount"] == len(expected)
    assert comments["nodes"] == [
        {
            "databaseId": c.id,
            "article": {"databaseId": 1},
            "author": None if c.author_id is None else {"username": names[c.author_id]},
        }
        for c in expected
    ]


async def test_post_user_and_user_comments_mirror_each_other(client: GraphQLClient) -> None:
    # 99, not 100: 100 × 100 twice is over the 20,000-node limit (the data set is small).
    data = await client.data(
        """{ users(first: 100) { nodes { databaseId
              posts(first: 99) { totalCount nodes { user { databaseId } } }
              comments(first: 99) { totalCount nodes { author { databaseId } } } } } }"""
    )
    for user in data["users"]["nodes"]:
        uid = user["databaseId"]
        assert user["posts"]["totalCount"] == sum(p.user_id == uid for p in dataset.POSTS)
        assert all(p["user"]["databaseId"] == uid for p in user["posts"]["nodes"])
        assert user["comments"]["totalCount"] == sum(c.author_id == uid for c in dataset.COMMENTS)
        assert all(c["author"]["databaseId"] == uid for c in user["comments"]["nodes"])
