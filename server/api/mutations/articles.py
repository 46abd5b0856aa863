"""Articles: editors only.

The `Article` policy: articles have no owner, so they belong to the editors, who alone may
create, retitle and delete them. Like every entity, a missing article answers NOT_FOUND before
a non-editor is told FORBIDDEN (see `common`); before this package, articles checked the role
first.
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
from server.api.nodes.article import Article
from server.api.user_errors import Checks, Rejected
from server.store import writes
from server.store.models import TITLE_MAX

ARTICLES = Policy("Article", writes.ARTICLES, editors=True)


@strawberry.input
class CreateArticleInput:
    title: str


@strawberry.input
class UpdateArticleInput:
    id: strawberry.ID
    title: str


@strawberry.input
class DeleteArticleInput:
    id: strawberry.ID


@strawberry.type
class CreateArticlePayload(Payload):
    article: Article | None = None


@strawberry.type
class UpdateArticlePayload(Payload):
    article: Article | None = None


@strawberry.type
class DeleteArticlePayload(DeletePayload):
    pass


@strawberry.type
class ArticleMutations:
    @strawberry.mutation(description="Publish an article (editors only).")
    async def create_article(
        self, info: Info, input: CreateArticleInput
    ) -> CreateArticlePayload | None:
        viewer = await require_viewer(info)
        try:
            checks = Checks()
            title = checks.text(input.title, "title", TITLE_MAX)
            checks.raise_if_any()
            require_create(ARTICLES, viewer)
            async with writing(info) as connection:
                pk = await writes.insert_row(connection, writes.ARTICLES, title=title)
        except Rejected as rejected:
            return CreateArticlePayload(user_errors=rejected.errors)
        return CreateArticlePayload(article=await reload(info, ARTICLES, pk))

    @strawberry.mutation(description="Retitle an article (editors only).")
    async def update_article(
        self, info: Info, input: UpdateArticleInput
    ) -> UpdateArticlePayload | None:
        viewer = await require_viewer(info)
        try:
            checks = Checks()
            pk = checks.node_id(input.id, ARTICLES.type_name)
            title = checks.text(input.title, "title", TITLE_MAX)
            checks.raise_if_any()
            async with writing(info) as connection:
                await editable_row(connection, ARTICLES, viewer, input.id, pk)
                await writes.update_row(connection, writes.ARTICLES, pk, title=title)
        except Rejected as rejected:
            return UpdateArticlePayload(user_errors=rejected.errors)
        return UpdateArticlePayload(article=await reload(info, ARTICLES, pk))

    @strawberry.mutation(description="Delete an article and its comments (editors only).")
    async def delete_article(
        self, info: Info, input: DeleteArticleInput
    ) -> DeleteArticlePayload | None:
        viewer = await require_viewer(info)
        try:
            checks = Checks()
            pk = checks.node_id(input.id, ARTICLES.type_name)
            checks.raise_if_any()
            async with writing(info) as connection:
                await editable_row(connection, ARTICLES, viewer, input.id, pk)
                await writes.delete_article(connection, pk)
        except Rejected as rejected:
            return DeleteArticlePayload(user_errors=rejected.errors)
        return DeleteArticlePayload(deleted_id=strawberry.ID(input.id))
