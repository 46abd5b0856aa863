"""The skeleton every mutation shares, and `Policy`: who may write the rows of one entity.

Every mutation runs the same steps, in this order, for every entity:

1. who is calling: `require_viewer` raises UNAUTHENTICATED without a valid token;
2. read the input: problems become `userErrors` (INVALID, NOT_FOUND for a malformed or
   wrong-type ID…), all reported together, before any SQL;
3. slow work (argon2) outside any transaction (`hash_password`);
4. one transaction (`writing`): the row to change is read inside it (`editable_row`), and
   the answers come in one order, the same for every entity: **existence first** (no such row
   → the userError NOT_FOUND), **then permission** (the entity's `Policy` says no → the GraphQL
   error FORBIDDEN); then the writes run, and any exception rolls every one of them back;
5. the payload re-reads what was written through fresh loaders, so it reflects the write.

Why existence before permission: every row a mutation can name is readable by anyone through
`node(id:)`, so answering NOT_FOUND to someone without the right reveals nothing they could not
query, and one order for every entity means a caller (and a test) never has to know which
entity checks what first. An entity whose rows become private must revisit this.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import strawberry
from sqlalchemy import Row, Table
from sqlalchemy.ext.asyncio import AsyncConnection

from server.api.context import Info
from server.api.errors import forbidden, unauthenticated
from server.api.nodes import ENTITIES
from server.api.user_errors import UserError, not_found
from server.store import writes

UNSET: Any = strawberry.UNSET


@dataclass(frozen=True, slots=True)
class Policy:
    """Who may create and change the rows of one entity, stated once.

    A row may be changed by its owner (the user whose id is in the `owner` column) and, when
    `editors` is set, by any editor. An entity without an owner column belongs to the editors:
    only they may create its rows. Anyone signed in may create a row they will own.
    """

    type_name: str
    table: Table
    owner: str | None = None
    editors: bool = False

    def may_create(self, viewer: Row[Any]) -> bool:
        return self.owner is not None or (self.editors and bool(viewer.is_editor))

    def may_edit(self, viewer: Row[Any], row: Row[Any]) -> bool:
        owns = self.owner is not None and getattr(row, self.owner) == viewer.id
        return owns or (self.editors and bool(viewer.is_editor))

    def columns(self) -> tuple[str, ...]:
        """What `editable_row` reads: the id, and the owner column if there is one."""
        return ("id",) if self.owner in (None, "id") else ("id", self.owner)


async def require_viewer(info: Info) -> Row[Any]:
    """The signed-in user, or the GraphQL error UNAUTHENTICATED."""
    viewer = await info.context.viewer()
    if viewer is None:
        raise unauthenticated()
    return viewer


def require_create(policy: Policy, viewer: Row[Any]) -> None:
    """FORBIDDEN unless `viewer` may create rows of `policy`'s entity."""
    if not policy.may_create(viewer):
        raise forbidden()


async def existing_row(
    connection: AsyncConnection, policy: Policy, global_id: str, pk: int, *, path: str = "id"
) -> Row[Any]:
    """The row `global_id` names, read inside the transaction; the userError NOT_FOUND on
    `path` if there is none (for rows a mutation refers to without changing them)."""
    row = await writes.fetch_one(connection, policy.table, pk, *policy.columns())
    if row is None:
        raise not_found(policy.type_name, global_id, path)
    return row


async def editable_row(
    connection: AsyncConnection,
    policy: Policy,
    viewer: Row[Any],
    global_id: str,
    pk: int,
    *,
    path: str = "id",
) -> Row[Any]:
    """The row to change, read inside the transaction: NOT_FOUND if there is none, then
    FORBIDDEN if `policy` does not let `viewer` change it (the one order, see the module).

    A user's own row is not read again: the token check read it for this request."""
    if policy.owner == "id" and pk == viewer.id:
        return viewer
    row = await existing_row(connection, policy, global_id, pk, path=path)
    if not policy.may_edit(viewer, row):
        raise forbidden()
    return row


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


async def reload(info: Info, policy: Policy, pk: int) -> Any:
    """The node for row `pk` as it is now (None if it is gone), through fresh loaders."""
    entity = ENTITIES[policy.type_name]
    row = await info.context.loaders.by_id(entity.table).load(pk)
    return None if row is None else entity.wrap(row)


@strawberry.type
class Payload:
    """What every payload carries: what the caller got wrong (empty on success)."""

    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class DeletePayload(Payload):
    """The global ID of the row that is gone (null when nothing was deleted)."""

    deleted_id: strawberry.ID | None = None
