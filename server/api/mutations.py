"""The root `Mutation`: accounts, tokens, and all-or-nothing writes with `userErrors`.

Every mutation follows the same steps:
1. who is calling: `require_viewer` raises UNAUTHENTICATED without a valid token;
2. read the input: problems become `userErrors` (INVALID, NOT_FOUND…), before any SQL;
3. slow work (argon2) outside any transaction;
4. one transaction: ownership checks read the row inside it (FORBIDDEN is a GraphQL error),
   writes run, and any exception rolls every write back;
5. the payload re-reads what was written through fresh loaders, so it reflects the write.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import strawberry
from sqlalchemy import Row, Table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from server import auth
from server.api.context import Info
from server.api.errors import forbidden, unauthenticated
from server.api.throttling import count_login, count_sign_up, login_succeeded
from server.api.types import ENTITIES, Article, Comment, Post, User
from server.api.user_errors import Checks, Rejected, UserError, UserErrorCode, not_found, user_error
from server.store import writes
from server.store.models import TEXT_MAX, TITLE_MAX

UNSET: Any = strawberry.UNSET

# ---------------------------------------------------------------------------- plumbing


async def require_viewer(info: Info) -> Row[Any]:
    viewer = await info.context.viewer()
    if viewer is None:
        raise unauthenticated()
    return viewer


@asynccontextmanager
async def writing(info: Info) -> AsyncIterator[AsyncConnection]:
    """One transaction for the mutation; afterwards loaders start empty so reads are fresh."""
    try:
        async with info.context.db.transaction() as connection:
            yield connection
    finally:
        info.context.loaders.clear()


async def hash_password(info: Info, password: str) -> str:
    """Hash with no database connection held: hashes queue for a few worker threads, and
    requests queued there holding connections would starve every other request of the pool."""
    await info.context.db.release()
    return await info.context.auth.passwords.hash(password)


async def reload(info: Info, type_name: str, pk: int) -> Any:
    entity = ENTITIES[type_name]
    row = await info.context.loaders.by_id(entity.table).load(pk)
    return None if row is None else entity.wrap(row)


async def owned_row(
    connection: AsyncConnection,
    table: Table,
    type_name: str,
    global_id: str,
    pk: int,
    owner_column: str,
    *,
    path: str = "id",
) -> Row[Any]:
    """The row to change, read inside the transaction; NOT_FOUND on `path` if there is none."""
    row = await writes.fetch_one(connection, table, pk, "id", owner_column)
    if row is None:
        raise not_found(type_name, global_id, path)
    return row


def taken(path: str = "username") -> Rejected:
    return Rejected([user_error(path, UserErrorCode.TAKEN, "That username is taken.")])


INVALID_CREDENTIALS = "Unknown username or wrong password."

# ---------------------------------------------------------------------------- inputs


@strawberry.input
class CreateUserInput:
    username: str
    password: str


@strawberry.input
class LoginInput:
    username: str = strawberry.field(description="Any case.")
    password: str


@strawberry.input
class UpdateUserInput:
    id: strawberry.ID
    username: str | None = UNSET
    password: str | None = UNSET


@strawberry.input
class DeleteUserInput:
    id: strawberry.ID


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


# ---------------------------------------------------------------------------- payloads


@strawberry.type
class Payload:
    """What every payload carries: what the caller got wrong (empty on success)."""

    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class DeletePayload(Payload):
    """The global ID of the row that is gone (null when nothing was deleted)."""

    deleted_id: strawberry.ID | None = None


@strawberry.type
class CreateUserPayload(Payload):
    user: User | None = None
    token: str | None = None


@strawberry.type
class LoginPayload(Payload):
    user: User | None = None
    token: str | None = None


@strawberry.type
class LogoutPayload(Payload):
    revoked: bool


@strawberry.type
class UpdateUserPayload(Payload):
    user: User | None = None


@strawberry.type
class DeleteUserPayload(DeletePayload):
    pass


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
class CreateArticlePayload(Payload):
    article: Article | None = None


@strawberry.type
class UpdateArticlePayload(Payload):
    article: Article | None = None


@strawberry.type
class DeleteArticlePayload(DeletePayload):
    pass


@strawberry.type
class CreateCommentPayload(Payload):
    comment: Comment | None = None


@strawberry.type
class UpdateCommentPayload(Payload):
    comment: Comment | None = None


@strawberry.type
class DeleteCommentPayload(DeletePayload):
    pass


# ---------------------------------------------------------------------------- mutations


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Sign up. Anyone may; returns the new user and a token.")
    async def create_user(self, info: Info, input: CreateUserInput) -> CreateUserPayload | None:
        await count_sign_up(info)
        try:
            checks = Checks()
            username = checks.username(input.username)
            password = checks.password(input.password)
            checks.raise_if_any()
            password_hash = await hash_password(info, password)
            async with writing(info) as connection:
                try:
                    pk = await writes.insert_row(
                        connection, writes.USERS, username=username, password_hash=password_hash
                    )
                except IntegrityError as error:
                    if not writes.is_username_conflict(error):
                        raise
                    raise taken() from None
                token = await auth.issue_token(connection, pk, info.context.auth.token_ttl)
        except Rejected as rejected:
            return CreateUserPayload(user_errors=rejected.errors)
        return CreateUserPayload(user=await reload(info, "User", pk), token=token)

    @strawberry.mutation(description="Exchange a username (any case) and password for a token.")
    async def login(self, info: Info, input: LoginInput) -> LoginPayload | None:
        await count_login(info, input.username)
        async with writing(info) as connection:
            account = await writes.user_by_username(connection, input.username)
        hash_ = None if account is None else account.password_hash
        await info.context.db.release()  # see hash_password
        if not await info.context.auth.passwords.verify(input.password, hash_):
            error = user_error(None, UserErrorCode.INVALID_CREDENTIALS, INVALID_CREDENTIALS)
            return LoginPayload(user_errors=[error])
        assert account is not None
        async with writing(info) as connection:
            token = await auth.issue_token(connection, account.id, info.context.auth.token_ttl)
        await login_succeeded(info, input.username)
        return LoginPayload(user=await reload(info, "User", account.id), token=token)

    @strawberry.mutation(description="Revoke the token this request was made with.")
    async def logout(self, info: Info) -> LogoutPayload | None:
        await require_viewer(info)
        token = info.context.token
        assert token is not None
        async with writing(info) as connection:
            revoked = await auth.revoke_token(connection, token)
        return LogoutPayload(revoked=revoked)

    @strawberry.mutation(description="Change your own username and/or password.")
    async def update_user(self, info: Info, input: UpdateUserInput) -> UpdateUserPayload | None:
        viewer = await require_viewer(info)
        try:
            checks = Checks()
            pk = checks.node_id(input.id, "User")
            values: dict[str, Any] = {}
            if input.username not in (None, UNSET):
                values["username"] = checks.username(input.username)
            if input.password not in (None, UNSET):
                checks.password(input.password)
            checks.raise_if_any()
            if pk != viewer.id:
                async with writing(info) as connection:
                    await owned_row(connection, writes.USERS, "User", input.id, pk, "id")
                raise forbidden()
            if input.password not in (None, UNSET):
                values["password_hash"] = await hash_password(info, input.password)
            async with writing(info) as connection:
                if values:
                    try:
                        await writes.update_row(connection, writes.USERS, pk, **values)
                    except IntegrityError as error:
                        if not writes.is_username_conflict(error):
                            raise
                        raise taken() from None
                if "password_hash" in values:
                    await auth.revoke_other_tokens(connection, pk, keep=info.context.token)
        except Rejected as rejected:
            return UpdateUserPayload(user_errors=rejected.errors)
        return UpdateUserPayload(user=await reload(info, "User", pk))

    @strawberry.mutation(
        description="Delete your own account: your posts go, your comments stay without an author."
    )
    async def delete_user(self, info: Info, input: DeleteUserInput) -> DeleteUserPayload | None:
        viewer = await require_viewer(info)
        try:
            checks = Checks()
            pk = checks.node_id(input.id, "User")
            checks.raise_if_any()
            async with writing(info) as connection:
                await owned_row(connection, writes.USERS, "User", input.id, pk, "id")
                if pk != viewer.id:
                    raise forbidden()
                await writes.delete_user(connection, pk)
        except Rejected as rejected:
            return DeleteUserPayload(user_errors=rejected.errors)
        return DeleteUserPayload(deleted_id=strawberry.ID(input.id))

    @strawberry.mutation(description="Write a post; its user is you.")
    async def create_post(self, info: Info, input: CreatePostInput) -> CreatePostPayload | None:
        viewer = await require_viewer(info)
        try:
            checks = Checks()
            title = checks.text(input.title, "title", TITLE_MAX)
            checks.raise_if_any()
            async with writing(info) as connection:
                pk = await writes.insert_row(
                    connection, writes.POSTS, title=title, user_id=viewer.id
                )
        except Rejected as rejected:
            return CreatePostPayload(user_errors=rejected.errors)
        return CreatePostPayload(post=await reload(info, "Post", pk))

    @strawberry.mutation(description="Retitle one of your posts.")
    async def update_post(self, info: Info, input: UpdatePostInput) -> UpdatePostPayload | None:
        viewer = await require_viewer(info)
        try:
            checks = Checks()
            pk = checks.node_id(input.id, "Post")
            title = checks.text(input.title, "title", TITLE_MAX)
            checks.raise_if_any()
            async with writing(info) as connection:
                row = await owned_row(connection, writes.POSTS, "Post", input.id, pk, "user_id")
                if row.user_id != viewer.id:
                    raise forbidden()
                await writes.update_row(connection, writes.POSTS, pk, title=title)
        except Rejected as rejected:
            return UpdatePostPayload(user_errors=rejected.errors)
        return UpdatePostPayload(post=await reload(info, "Post", pk))

    @strawberry.mutation(description="Delete one of your posts.")
    async def delete_post(self, info: Info, input: DeletePostInput) -> DeletePostPayload | None:
        viewer = await require_viewer(info)
        try:
            checks = Checks()
            pk = checks.node_id(input.id, "Post")
            checks.raise_if_any()
            async with writing(info) as connection:
                row = await owned_row(connection, writes.POSTS, "Post", input.id, pk, "user_id")
                if row.user_id != viewer.id:
                    raise forbidden()
                await writes.delete_row(connection, writes.POSTS, pk)
        except Rejected as rejected:
            return DeletePostPayload(user_errors=rejected.errors)
        return DeletePostPayload(deleted_id=strawberry.ID(input.id))

    @strawberry.mutation(description="Publish an article (editors only).")
    async def create_article(
        self, info: Info, input: CreateArticleInput
    ) -> CreateArticlePayload | None:
        viewer = await require_viewer(info)
        try:
            checks = Checks()
            title = checks.text(input.title, "title", TITLE_MAX)
            checks.raise_if_any()
            if not viewer.is_editor:
                raise forbidden()
            async with writing(info) as connection:
                pk = await writes.insert_row(connection, writes.ARTICLES, title=title)
        except Rejected as rejected:
            return CreateArticlePayload(user_errors=rejected.errors)
        return CreateArticlePayload(article=await reload(info, "Article", pk))

    @strawberry.mutation(description="Retitle an article (editors only).")
    async def update_article(
        self, info: Info, input: UpdateArticleInput
    ) -> UpdateArticlePayload | None:
        viewer = await require_viewer(info)
        try:
            checks = Checks()
            pk = checks.node_id(input.id, "Article")
            title = checks.text(input.title, "title", TITLE_MAX)
            checks.raise_if_any()
            if not viewer.is_editor:
                raise forbidden()
            async with writing(info) as connection:
                await owned_row(connection, writes.ARTICLES, "Article", input.id, pk, "id")
                await writes.update_row(connection, writes.ARTICLES, pk, title=title)
        except Rejected as rejected:
            return UpdateArticlePayload(user_errors=rejected.errors)
        return UpdateArticlePayload(article=await reload(info, "Article", pk))

    @strawberry.mutation(description="Delete an article and its comments (editors only).")
    async def delete_article(
        self, info: Info, input: DeleteArticleInput
    ) -> DeleteArticlePayload | None:
        viewer = await require_viewer(info)
        try:
            checks = Checks()
            pk = checks.node_id(input.id, "Article")
            checks.raise_if_any()
            if not viewer.is_editor:
                raise forbidden()
            async with writing(info) as connection:
                await owned_row(connection, writes.ARTICLES, "Article", input.id, pk, "id")
                await writes.delete_article(connection, pk)
        except Rejected as rejected:
            return DeleteArticlePayload(user_errors=rejected.errors)
        return DeleteArticlePayload(deleted_id=strawberry.ID(input.id))

    @strawberry.mutation(description="Comment on an article; its author is you.")
    async def create_comment(
        self, info: Info, input: CreateCommentInput
    ) -> CreateCommentPayload | None:
        viewer = await require_viewer(info)
        try:
            checks = Checks()
            article_pk = checks.node_id(input.article_id, "Article", path="articleId")
            text = checks.text(input.text, "text", TEXT_MAX)
            checks.raise_if_any()
            async with writing(info) as connection:
                await owned_row(
                    connection,
                    writes.ARTICLES,
                    "Article",
                    input.article_id,
                    article_pk,
                    "id",
                    path="articleId",
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
                    raise not_found("Article", input.article_id, "articleId") from None
        except Rejected as rejected:
            return CreateCommentPayload(user_errors=rejected.errors)
        return CreateCommentPayload(comment=await reload(info, "Comment", pk))

    @strawberry.mutation(description="Edit a comment (its author or an editor).")
    async def update_comment(
        self, info: Info, input: UpdateCommentInput
    ) -> UpdateCommentPayload | None:
        viewer = await require_viewer(info)
        try:
            checks = Checks()
            pk = checks.node_id(input.id, "Comment")
            text = checks.text(input.text, "text", TEXT_MAX)
            checks.raise_if_any()
            async with writing(info) as connection:
                row = await owned_row(
                    connection, writes.COMMENTS, "Comment", input.id, pk, "author_id"
                )
                if row.author_id != viewer.id and not viewer.is_editor:
                    raise forbidden()
                await writes.update_row(connection, writes.COMMENTS, pk, text=text)
        except Rejected as rejected:
            return UpdateCommentPayload(user_errors=rejected.errors)
        return UpdateCommentPayload(comment=await reload(info, "Comment", pk))

    @strawberry.mutation(description="Delete a comment (its author or an editor).")
    async def delete_comment(
        self, info: Info, input: DeleteCommentInput
    ) -> DeleteCommentPayload | None:
        viewer = await require_viewer(info)
        try:
            checks = Checks()
            pk = checks.node_id(input.id, "Comment")
            checks.raise_if_any()
            async with writing(info) as connection:
                row = await owned_row(
                    connection, writes.COMMENTS, "Comment", input.id, pk, "author_id"
                )
                if row.author_id != viewer.id and not viewer.is_editor:
                    raise forbidden()
                await writes.delete_row(connection, writes.COMMENTS, pk)
        except Rejected as rejected:
            return DeleteCommentPayload(user_errors=rejected.errors)
        return DeleteCommentPayload(deleted_id=strawberry.ID(input.id))
