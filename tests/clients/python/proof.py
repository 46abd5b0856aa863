"""A Python service's first day with inkgraph: the typed async client ariadne-codegen generated
from schema.graphql and tests/clients/documents (package `inkgraph_client`, on PYTHONPATH).

    python proof.py http://127.0.0.1:PORT "a new title" "a retitle"

Prints the same JSON report as the TypeScript proof (tests/clients/scenario.py says what it must
hold); anything unexpected raises (exit 1). tests/clients/test_python_client.py generates the
client, type-checks this file against it with `mypy --strict`, and runs it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from inkgraph_client import Client, NodeByIdNodePost, Problem


def is_utc(moment: datetime) -> bool:
    offset = moment.utcoffset()
    return offset is not None and offset.total_seconds() == 0


def problems(errors: Sequence[Problem]) -> list[dict[str, Any]]:
    return [{"field": error.field, "code": error.code.value} for error in errors]


async def prove(url: str, new_title: str, retitle: str) -> dict[str, Any]:
    endpoint = f"{url}/graphql"
    anonymous = Client(url=endpoint)

    # 1. A page of users with a nested connection, through fragments; then the next page.
    page1 = (await anonymous.users_with_posts(first=3, posts_per_user=2)).users
    page2 = (
        await anonymous.users_with_posts(
            first=3, posts_per_user=2, after=page1.page_info.end_cursor
        )
    ).users
    first_user_posts = page1.nodes[0].posts

    # 2. Refetch the newest of those posts by its global ID.
    node = (await anonymous.node_by_id(id=first_user_posts.nodes[0].id)).node
    assert node is not None
    refetched: dict[str, str | None] = {"typename": node.typename__}
    refetched.update(title=None, username=None)
    if isinstance(node, NodeByIdNodePost):
        refetched.update(title=node.title, username=node.user.username)

    # 3. A wrong password is a userError; the right one (any case for the name) gives a token.
    bad = (await anonymous.login(username="ada", password="not-her-password")).login
    good = (await anonymous.login(username="ADA", password="ada-lovelace-1843")).login
    assert bad is not None
    assert good is not None
    assert good.user is not None
    assert good.token
    viewer = Client(url=endpoint, headers={"Authorization": f"Bearer {good.token}"})

    # 4. A blank title is refused with a userError; a real one creates the post as the viewer.
    blank = (await viewer.create_post(title="   ")).create_post
    created = (await viewer.create_post(title=new_title)).create_post
    assert blank is not None
    assert created is not None
    assert created.post is not None
    post = created.post

    # 5. Read it back: the viewer's newest post.
    me = (await viewer.viewer_posts(first=3)).viewer
    assert me is not None
    newest = me.posts.nodes

    # 6. Retitle it.
    updated = (await viewer.update_post(id=post.id, title=retitle)).update_post
    assert updated is not None

    return {
        "users": {
            "totalCount": page1.total_count,
            "page1": [user.username for user in page1.nodes],
            "hasNextPage": page1.page_info.has_next_page,
            "page2": [user.username for user in page2.nodes],
            "firstUserPosts": {
                "totalCount": first_user_posts.total_count,
                "titles": [p.title for p in first_user_posts.nodes],
            },
            # DateTime is mapped to datetime.datetime: parsed, and always an aware UTC instant.
            "createdAtHasOffset": all(is_utc(p.created_at) for p in first_user_posts.nodes),
        },
        "node": refetched,
        "badLogin": {"token": bad.token, "user": bad.user, "errors": problems(bad.user_errors)},
        "login": {
            "username": good.user.username,
            "isEditor": good.user.is_editor,
            "hasToken": isinstance(good.token, str),
        },
        "blankPost": {"post": blank.post, "errors": problems(blank.user_errors)},
        "created": {
            "title": post.title,
            "username": post.user.username,
            "errors": problems(created.user_errors),
        },
        "readBack": {
            "totalCount": me.posts.total_count,
            "firstTitle": newest[0].title if newest else None,
            "firstIsCreated": bool(newest) and newest[0].id == post.id,
        },
        "updated": {
            "title": updated.post.title if updated.post else None,
            "errors": problems(updated.user_errors),
        },
    }


if __name__ == "__main__":
    url, new_title, retitle = sys.argv[1:4]
    print(json.dumps(asyncio.run(prove(url, new_title, retitle))))  # noqa: T201 (the report)
