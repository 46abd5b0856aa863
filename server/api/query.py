"""The root `Query`: node lookups by global ID, single-entity lookups and root connections."""

import asyncio
from typing import Annotated

import strawberry

from server.api import ids
from server.api.context import Info
from server.api.errors import bad_user_input
from server.api.types import (
    ENTITIES,
    Article,
    Comment,
    Entity,
    Node,
    Post,
    User,
    connection_field,
)
from server.store import models
from server.store.models import table_of


async def _load(info: Info, entity: Entity, pk: int) -> Node | None:
    row = await info.context.loaders.by_id(entity.table).load(pk)
    if row is None:
        return None
    node: Node = entity.wrap(row)
    return node


def _entity(type_name: str, global_id: str) -> Entity:
    entity = ENTITIES.get(type_name)
    if entity is None:
        raise bad_user_input(f"{global_id!r} is not a valid ID.")
    return entity


async def _typed(info: Info, type_name: str, global_id: str) -> Node | None:
    return await _load(info, ENTITIES[type_name], ids.decode_as(global_id, type_name))


@strawberry.type
class Query:
    @strawberry.field(description="Fetch any object by its global ID; null if it does not exist.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        type_name, pk = ids.decode(id)
        return await _load(info, _entity(type_name, id), pk)

    @strawberry.field(
        description="Fetch many objects by global ID, in order; null entries for "
        "IDs that do not exist."
    )
    async def nodes(
        self, info: Info, ids_: Annotated[list[strawberry.ID], strawberry.argument(name="ids")]
    ) -> list[Node | None]:
        decoded = [ids.decode(global_id) for global_id in ids_]
        entities = [_entity(name, gid) for (name, _), gid in zip(decoded, ids_, strict=True)]
        return list(
            await asyncio.gather(
                *(
                    _load(info, entity, pk)
                    for entity, (_, pk) in zip(entities, decoded, strict=True)
                )
            )
        )

    @strawberry.field(
        description="A user by global ID or by username (ignoring case); exactly one of the two."
    )
    async def user(
        self, info: Info, id: strawberry.ID | None = None, username: str | None = None
    ) -> User | None:
        if (id is None) == (username is None):
            raise bad_user_input("Pass exactly one of `id` or `username`.")
        if id is not None:
            return await _typed(info, "User", id)  # type: ignore[return-value] # a User entity
        assert username is not None
        loader = info.context.loaders.by_column(table_of(models.User), "username_key")
        row = await loader.load(username.lower())
        return None if row is None else User.from_row(row)

    @strawberry.field
    async def post(self, info: Info, id: strawberry.ID) -> Post | None:
        return await _typed(info, "Post", id)  # type: ignore[return-value] # a Post entity

    @strawberry.field
    async def article(self, info: Info, id: strawberry.ID) -> Article | None:
        return await _typed(info, "Article", id)  # type: ignore[return-value]

    @strawberry.field
    async def comment(self, info: Info, id: strawberry.ID) -> Comment | None:
        return await _typed(info, "Comment", id)  # type: ignore[return-value]

    @strawberry.field(
        description="The user whose token authenticates this request; null when anonymous."
    )
    async def viewer(self, info: Info) -> User | None:
        row = await info.context.viewer()
        return None if row is None else User.from_row(row)

    users = connection_field("User", field="Query.users")
    posts = connection_field("Post", field="Query.posts")
    articles = connection_field("Article", field="Query.articles")
    comments = connection_field("Comment", field="Query.comments")
