"""Posts: write, retitle and delete your own.

The `Post` policy: anyone signed in may write a post (its user is the viewer); only the post's
user may change or delete it.
"""

import strawberry

from server.api.context import Info
from server.api.mutations.common import (
    DeletePayload,
    Payload,
    Policy,
    editable_row,
    reload,
    require_create,
    require_viewer,
    writing,
)
from server.api.nodes.post import Post
from server.api.user_errors import Checks, Rejected
from server.store import writes
from server.store.models import TITLE_MAX

POSTS = Policy("Post", writes.POSTS, owner="user_id")


@strawberry.input
class CreatePostInput:
    title: str


@strawberry.input
class UpdatePostInput:
    id: strawberry.ID
    title: str


@strawberry.input
class DeletePostInput:
    id: strawberry.ID


@strawberry.type
class CreatePostPayload(Payload):
    post: Post | None = None


@strawberry.type
class UpdatePostPayload(Payload):
    post: Post | None = None


@strawberry.type
class DeletePostPayload(DeletePayload):
    pass


@strawberry.type
class PostMutations:
    @strawberry.mutation(description="Write a post; its user is you.")
    async def create_post(self, info: Info, input: CreatePostInput) -> CreatePostPayload | None:
        viewer = await require_viewer(info)
        try:
            checks = Checks()
            title = checks.text(input.title, "title", TITLE_MAX)
            checks.raise_if_any()
            require_create(POSTS, viewer)
            async with writing(info) as connection:
                pk = await writes.insert_row(
                    connection, writes.POSTS, title=title, user_id=viewer.id
                )
        except Rejected as rejected:
            return CreatePostPayload(user_errors=rejected.errors)
        return CreatePostPayload(post=await reload(info, POSTS, pk))

    @strawberry.mutation(description="Retitle one of your posts.")
    async def update_post(self, info: Info, input: UpdatePostInput) -> UpdatePostPayload | None:
        viewer = await require_viewer(info)
        try:
            checks = Checks()
            pk = checks.node_id(input.id, POSTS.type_name)
            title = checks.text(input.title, "title", TITLE_MAX)
            checks.raise_if_any()
            async with writing(info) as connection:
                await editable_row(connection, POSTS, viewer, input.id, pk)
                await writes.update_row(connection, writes.POSTS, pk, title=title)
        except Rejected as rejected:
            return UpdatePostPayload(user_errors=rejected.errors)
        return UpdatePostPayload(post=await reload(info, POSTS, pk))

    @strawberry.mutation(description="Delete one of your posts.")
    async def delete_post(self, info: Info, input: DeletePostInput) -> DeletePostPayload | None:
        viewer = await require_viewer(info)
        try:
            checks = Checks()
            pk = checks.node_id(input.id, POSTS.type_name)
            checks.raise_if_any()
            async with writing(info) as connection:
                await editable_row(connection, POSTS, viewer, input.id, pk)
                await writes.delete_row(connection, writes.POSTS, pk)
        except Rejected as rejected:
            return DeletePostPayload(user_errors=rejected.errors)
        return DeletePostPayload(deleted_id=strawberry.ID(input.id))
