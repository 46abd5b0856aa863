"""The root `Query`: node lookups by global ID, single-entity lookups and root connections.

The root connections (`users`, `posts`, …) are not written here: every entity registered
with `root="xs"` (server/api/nodes/) gets `Query.xs`, in the registry's order.
"""

import asyncio
from typing import Annotated, Any

import strawberry

from server.api import ids
from server.api.context import Info
from server.api.errors import bad_user_input
from server.api.nodes import ENTITIES, Entity, Node
from server.api.nodes.article import ARTICLE, Article
from server.api.nodes.base import N, attach, connection_field
from server.api.nodes.comment import COMMENT, Comment
from server.api.nodes.post import POST, Post
from server.api.nodes.user import USER, User
from server.store import models
from server.store.models import table_of


async def _load(info: Info, entity: Entity[N], pk: int) -> N | None:
    row = await info.context.loaders.by_id(entity.table).load(pk)
    return None if row is None else entity.wrap(row)


def _entity(type_name: str, global_id: str) -> Entity[Any]:
    entity = ENTITIES.get(type_name)
    if entity is None:
        raise bad_user_input(f"{global_id!r} is not a valid ID.")
    return entity


async def _typed(info: Info, entity: Entity[N], global_id: str) -> N | None:
    return await _load(info, entity, ids.decode_as(global_id, entity.name))


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
            return await _typed(info, USER, id)
        assert username is not None
        loader = info.context.loaders.by_column(table_of(models.User), "username_key")
        row = await loader.load(username.lower())
        return None if row is None else User.from_row(row)

    @strawberry.field
    async def post(self, info: Info, id: strawberry.ID) -> Post | None:
        return await _typed(info, POST, id)

    @strawberry.field
    async def article(self, info: Info, id: strawberry.ID) -> Article | None:
        return await _typed(info, ARTICLE, id)

    @strawberry.field
    async def comment(self, info: Info, id: strawberry.ID) -> Comment | None:
        return await _typed(info, COMMENT, id)

    @strawberry.field(
        description="The user whose token authenticates this request; null when anonymous."
    )
    async def viewer(self, info: Info) -> User | None:
        row = await info.context.viewer()
        return None if row is None else User.from_row(row)


for _entity_ in ENTITIES:
    if _entity_.root is not None:
        attach(Query, _entity_.root, connection_field("Query", _entity_.root, _entity_))
