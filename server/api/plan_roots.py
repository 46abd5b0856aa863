"""The root fields a compiled plan answers: lookups by ID or username, `viewer`, connections.

Each mirrors the resolver of the same name in server/api/query.py (same loader, same key, same
check); a check that fails raises `Fallback`, so graphql-core raises the error itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from graphql.pyutils import gather_with_cancel
from sqlalchemy import Row

from server.api import ids
from server.api.nodes import ENTITIES
from server.api.plan_nodes import Connection, Fallback, ObjectPlan, Part, Run
from server.store import models
from server.store.models import table_of

ROOT = [None]  # the one "parent" of a root field


@dataclass(slots=True)
class RootPart:
    """One root field: `prepare` reads its arguments, `value` completes it."""

    key: str

    def parts(self) -> list[Part]:
        return []

    def prepare(self, run: Run) -> None:
        pass

    async def value(self, run: Run) -> Any:
        raise NotImplementedError


@dataclass(slots=True)
class Typename(RootPart):
    async def value(self, run: Run) -> Any:  # noqa: ARG002 - the shape every root part has
        return "Query"


@dataclass(slots=True)
class RootConnection(RootPart):
    connection: Connection

    def parts(self) -> list[Part]:
        return self.connection.walk()

    async def value(self, run: Run) -> Any:
        (value,) = await self.connection.values(run, ROOT)  # type: ignore[arg-type]
        return value


Arguments = Callable[[Run], dict[str, Any]]


@dataclass(slots=True)
class Lookup(RootPart):
    """`node`, `nodes`, `user`, `post`, `article`, `comment`, `viewer`.

    `plans` holds the selection compiled for each type the field may return (one for a
    concrete type, one per entity for `Node`)."""

    field: str
    arguments: Arguments
    plans: dict[str, ObjectPlan]

    def parts(self) -> list[Part]:
        return [part for plan in self.plans.values() for part in plan.walk()]

    def prepare(self, run: Run) -> None:
        try:
            run.arguments[id(self)] = _keys(self.field, self.arguments(run))
        except Exception as error:
            raise Fallback from error

    async def value(self, run: Run) -> Any:
        keys: list[tuple[str, Any]] = run.arguments[id(self)]
        if self.field == "viewer":
            rows: list[Row[Any] | None] = [await run.context.viewer()]
        else:
            rows = list(await _gather([_load(run, name, key) for name, key in keys]))
        by_type: dict[str, list[Row[Any]]] = {}
        for (name, _), row in zip(keys, rows, strict=True):
            if row is not None:
                by_type.setdefault(name, []).append(row)
        done: dict[int, Any] = {}
        for name, typed in by_type.items():
            plan = self.plans.get(name)
            if plan is None:
                raise Fallback
            for row, obj in zip(typed, await plan.objects(run, typed), strict=True):
                done[id(row)] = obj
        values = [None if row is None else done[id(row)] for row in rows]
        return values if self.field == "nodes" else values[0]


def _keys(field: str, args: dict[str, Any]) -> list[tuple[str, Any]]:
    """(type name, key) of each object the field looks up, checked as query.py checks them."""
    if field == "viewer":
        return [("User", None)]
    if field == "node":
        return [_node_key(args["id"])]
    if field == "nodes":
        return [_node_key(global_id) for global_id in args["ids_"]]
    if field == "user":
        given_id: str | None = args.get("id")
        username: str | None = args.get("username")
        if (given_id is None) == (username is None):
            raise Fallback
        if given_id is not None:
            return [("User", ids.decode_as(given_id, "User"))]
        assert username is not None
        return [("User", ("username_key", username.lower()))]
    type_name = field.capitalize()
    return [(type_name, ids.decode_as(args["id"], type_name))]


def _node_key(global_id: str) -> tuple[str, Any]:
    type_name, pk = ids.decode(global_id)
    if type_name not in ENTITIES:
        raise Fallback
    return type_name, pk


async def _load(run: Run, type_name: str, key: Any) -> Row[Any] | None:
    loaders = run.loaders
    if isinstance(key, tuple):  # by username
        row: Row[Any] | None = await loaders.by_column(table_of(models.User), key[0]).load(key[1])
        return row
    row = await loaders.by_id(ENTITIES[type_name].table).load(key)
    return row


async def _gather(awaitables: Sequence[Any]) -> Sequence[Any]:
    if len(awaitables) == 1:
        return [await awaitables[0]]
    if not awaitables:
        return []
    return list(await gather_with_cancel(*awaitables))


LOOKUPS = ("node", "nodes", "user", "post", "article", "comment", "viewer")
