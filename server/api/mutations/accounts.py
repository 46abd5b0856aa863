"""Accounts and tokens: sign-up, login, logout, and changing or deleting your own account.

The `User` policy: a user may change and delete only themselves (`owner="id"`); no one is an
editor of accounts. Sign-up and login need no token.
"""

from typing import Any

import strawberry
from sqlalchemy.exc import IntegrityError

from server.api.context import Info
from server.api.mutations.common import (
    UNSET,
    DeletePayload,
    Payload,
    Policy,
    editable_row,
    hash_password,
    reload,
    require_viewer,
    writing,
)
from server.api.nodes.user import User
from server.api.throttling import count_login, count_sign_up, login_succeeded
from server.api.user_errors import Checks, Rejected, UserErrorCode, user_error
from server.store import writes

USERS = Policy("User", writes.USERS, owner="id")

INVALID_CREDENTIALS = "Unknown username or wrong password."


def taken(path: str = "username") -> Rejected:
    return Rejected([user_error(path, UserErrorCode.TAKEN, "That username is taken.")])


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
class AccountMutations:
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
                token = await writes.issue_token(connection, pk, info.context.auth.token_ttl)
        except Rejected as rejected:
            return CreateUserPayload(user_errors=rejected.errors)
        return CreateUserPayload(user=await reload(info, USERS, pk), token=token)

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
            token = await writes.issue_token(connection, account.id, info.context.auth.token_ttl)
        await login_succeeded(info, input.username)
        return LoginPayload(user=await reload(info, USERS, account.id), token=token)

    @strawberry.mutation(description="Revoke the token this request was made with.")
    async def logout(self, info: Info) -> LogoutPayload | None:
        await require_viewer(info)
        token = info.context.token
        assert token is not None
        async with writing(info) as connection:
            revoked = await writes.revoke_token(connection, token)
        return LogoutPayload(revoked=revoked)

    @strawberry.mutation(description="Change your own username and/or password.")
    async def update_user(self, info: Info, input: UpdateUserInput) -> UpdateUserPayload | None:
        viewer = await require_viewer(info)
        try:
            checks = Checks()
            pk = checks.node_id(input.id, USERS.type_name)
            values: dict[str, Any] = {}
            if input.username not in (None, UNSET):
                values["username"] = checks.username(input.username)
            if input.password not in (None, UNSET):
                checks.password(input.password)
            checks.raise_if_any()
            # Checked before the slow hash, so someone else's account costs no argon2 work.
            async with writing(info) as connection:
                await editable_row(connection, USERS, viewer, input.id, pk)
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
                    await writes.revoke_other_tokens(connection, pk, keep=info.context.token)
        except Rejected as rejected:
            return UpdateUserPayload(user_errors=rejected.errors)
        return UpdateUserPayload(user=await reload(info, USERS, pk))

    @strawberry.mutation(
        description="Delete your own account: your posts go, your comments stay without an author."
    )
    async def delete_user(self, info: Info, input: DeleteUserInput) -> DeleteUserPayload | None:
        viewer = await require_viewer(info)
        try:
            checks = Checks()
            pk = checks.node_id(input.id, USERS.type_name)
            checks.raise_if_any()
            async with writing(info) as connection:
                await editable_row(connection, USERS, viewer, input.id, pk)
                await writes.delete_user(connection, pk)
        except Rejected as rejected:
            return DeleteUserPayload(user_errors=rejected.errors)
        return DeleteUserPayload(deleted_id=strawberry.ID(input.id))
