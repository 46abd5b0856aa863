"""Comments: anyone signed in comments on an article; its author or an editor changes it.

The `Comment` policy: the owner is the comment's author (`author_id`), and editors may change
any comment. The article a new comment refers to must exist (NOT_FOUND on `articleId`), but
commenting needs no right over the article.
"""

import strawberry
from sqlalchemy.exc import IntegrityError

from server.api.context import Info
from server.api.mutations.articles import ARTICLES
from server.api.mutations.common import (
    DeletePayload,
    Payload,
    Policy,
    editable_row,
    existing_row,
    reload,
    require_create,
    require_viewer,
    writing,
)
from server.api.nodes.comment import Comment
from server.api.user_errors import Checks, Rejected, not_found
from server.store import writes
from server.store.models import TEXT_MAX

COMMENTS = Policy("Comment", writes.COMMENTS, owner="author_id", editors=True)


@strawberry.input
class CreateCommentInput:
    article_id: strawberry.ID
    text: str


@strawberry.input
class UpdateCommentInput:
    id: strawberry.ID
    text: str


@strawberry.input
class DeleteCommentInput:
    id: strawberry.ID


@strawberry.type
class CreateCommentPayload(Payload):
    comment: Comment | None = None


@strawberry.type
class UpdateCommentPayload(Payload):
    comment: Comment | None = None


@strawberry.type
class DeleteCommentPayload(DeletePayload):
    pass


@strawberry.type
class CommentMutations:
    @strawberry.mutation(description="Comment on an article; its author is you.")
    async def create_comment(
        self, info: Info, input: CreateCommentInput
    ) -> CreateCommentPayload | None:
        viewer = await require_viewer(info)
        try:
            checks = Checks()
            article_pk = checks.node_id(input.article_id, ARTICLES.type_name, path="articleId")
            text = checks.text(input.text, "text", TEXT_MAX)
            checks.raise_if_any()
            require_create(COMMENTS, viewer)
            async with writing(info) as connection:
                await existing_row(
                    connection, ARTICLES, input.article_id, article_pk, path="articleId"
                )
                try:
                    pk = await writes.insert_row(
                        connection,
                        writes.COMMENTS,
                        text=text,
                        article_id=article_pk,
                        author_id=viewer.id,
                    )
                except IntegrityError:  # the article was deleted meanwhile
                    raise not_found(ARTICLES.type_name, input.article_id, "articleId") from None
        except Rejected as rejected:
            return CreateCommentPayload(user_errors=rejected.errors)
        return CreateCommentPayload(comment=await reload(info, COMMENTS, pk))

    @strawberry.mutation(description="Edit a comment (its author or an editor).")
    async def update_comment(
        self, info: Info, input: UpdateCommentInput
    ) -> UpdateCommentPayload | None:
        viewer = await require_viewer(info)
        try:
            checks = Checks()
            pk = checks.node_id(input.id, COMMENTS.type_name)
            text = checks.text(input.text, "text", TEXT_MAX)
            checks.raise_if_any()
            async with writing(info) as connection:
                await editable_row(connection, COMMENTS, viewer, input.id, pk)
                await writes.update_row(connection, writes.COMMENTS, pk, text=text)
        except Rejected as rejected:
            return UpdateCommentPayload(user_errors=rejected.errors)
        return UpdateCommentPayload(comment=await reload(info, COMMENTS, pk))

    @strawberry.mutation(description="Delete a comment (its author or an editor).")
    async def delete_comment(
        self, info: Info, input: DeleteCommentInput
    ) -> DeleteCommentPayload | None:
        viewer = await require_viewer(info)
        try:
            checks = Checks()
            pk = checks.node_id(input.id, COMMENTS.type_name)
            checks.raise_if_any()
            async with writing(info) as connection:
                await editable_row(connection, COMMENTS, viewer, input.id, pk)
                await writes.delete_row(connection, writes.COMMENTS, pk)
        except Rejected as rejected:
            return DeleteCommentPayload(user_errors=rejected.errors)
        return DeleteCommentPayload(deleted_id=strawberry.ID(input.id))
