"""The GraphQL object types, their order and filter inputs, and the connection fields.

Every entity is a `Node` wrapping one database row (kept as a private field). Scalar fields are
plain attributes filled once per row — no resolver per scalar, which is what makes large pages
cheap — and each relation is one small resolver that asks `info.context.loaders`.

Connection fields come from `connection_field`, so the Relay arguments (first/after/last/before,
orderBy, filter) and their checks are written once for root and nested connections alike.
"""

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

import strawberry
from sqlalchemy import Row, Table

from loaders import Relation
from server.api import ids
from server.api.context import Info
from server.api.inputs import (
    UNSET,
    DateTimeFilter,
    OrderDirection,
    StringFilter,
    conditions_of,
    given,
    order_of,
)
from server.api.relay import (
    CONNECTION_FIELD,
    Connection,
    ConnectionField,
    PageSource,
    page_spec,
    shareable,
)
from server.api.scalars import DateTime
from server.store import models
from server.store.models import table_of

# Rows a page loaded for its objects' many-to-one fields: field name -> foreign key -> row.
Related = Mapping[str, Mapping[Any, Row[Any] | None]] | None

# ---------------------------------------------------------------------------- connections


def connection_field(
    target: str, *, field: str, relation: Relation | None = None, description: str | None = None
) -> Any:
    """A Relay connection field over `target` rows: root (`relation` None) or nested.

    `field` names the connection in its cursors ("Query.posts", "User.posts").
    The resolver's annotations are strings resolved in this module when the schema is built,
    so the four types can refer to each other in any order.
    """

    def resolve(
        root: Any,
        info: Info,
        first: Any = UNSET,
        after: Any = UNSET,
        last: Any = UNSET,
        before: Any = UNSET,
        order_by: Any = UNSET,
        filter: Any = UNSET,
    ) -> Any:
        entity = ENTITIES[target]
        order, conditions = order_of(given(order_by)), conditions_of(given(filter))
        spec = page_spec(
            field=field,
            table=entity.table,
            order=order,
            conditions=conditions,
            first=given(first),
            after=given(after),
            last=given(last),
            before=given(before),
        )
        loaders = info.context.loaders
        if relation is None:

            def page() -> Any:
                return shareable(loaders.root_page(entity.table, spec))

            def count() -> Any:
                return loaders.root_count(entity.table, conditions)
        else:

            def page() -> Any:
                return loaders.page(relation, root.row, spec)

            def count() -> Any:
                return loaders.count(relation, root.row, conditions)

        def objects(rows: Sequence[Row[Any]], selected: frozenset[str]) -> Any:
            return entity_objects(info, entity, rows, selected)

        return Connection(
            source=PageSource(
                field=field,
                table=entity.table,
                order=order,
                load_page=page,
                count=count,
                objects=objects,
            )
        )

    resolve.__annotations__ = {
        "root": Any,
        "info": Info,
        "first": "int | None",
        "after": "str | None",
        "last": "int | None",
        "before": "str | None",
        "order_by": f"{target}Order | None",
        "filter": f"{target}Filter | None",
        "return": f"Connection[{target}]",
    }
    return strawberry.field(
        resolver=resolve,
        description=description,
        metadata={CONNECTION_FIELD: ConnectionField(target, field, relation)},
    )


# ---------------------------------------------------------------------------- entities


@strawberry.interface(description="An object with a global ID, refetchable with `node(id:)`.")
class Node:
    id: strawberry.ID


@strawberry.type
class User(Node):
    database_id: int
    username: str
    created_at: DateTime
    is_editor: bool = strawberry.field(
        description="May manage articles; granted only by `inkgraph create-editor`."
    )
    row: strawberry.Private[Row[Any]]

    posts = connection_field("Post", field="User.posts", relation=Relation.of(models.User, "posts"))
    comments = connection_field(
        "Comment",
        field="User.comments",
        relation=Relation.of(models.User, "comments"),
        description="Comments this user wrote.",
    )

    @staticmethod
    def from_row(row: Row[Any]) -> "User":
        return User(
            id=strawberry.ID(ids.encode("User", row.id)),
            database_id=row.id,
            username=row.username,
            created_at=row.created_at,
            is_editor=bool(row.is_editor),
            row=row,
        )


@strawberry.type
class Post(Node):
    database_id: int
    title: str
    created_at: DateTime
    row: strawberry.Private[Row[Any]]

    related: strawberry.Private[Related] = None

    @strawberry.field(graphql_type=User)
    def user(self, info: Info) -> Any:
        return to_one(info, self, "user")

    @staticmethod
    def from_row(row: Row[Any]) -> "Post":
        return Post(
            id=strawberry.ID(ids.encode("Post", row.id)),
            database_id=row.id,
            title=row.title,
            created_at=row.created_at,
            row=row,
        )


@strawberry.type
class Article(Node):
    database_id: int
    title: str
    created_at: DateTime
    row: strawberry.Private[Row[Any]]

    comments = connection_field(
        "Comment", field="Article.comments", relation=Relation.of(models.Article, "comments")
    )

    @staticmethod
    def from_row(row: Row[Any]) -> "Article":
        return Article(
            id=strawberry.ID(ids.encode("Article", row.id)),
            database_id=row.id,
            title=row.title,
            created_at=row.created_at,
            row=row,
        )


@strawberry.type
class Comment(Node):
    database_id: int
    text: str
    created_at: DateTime
    row: strawberry.Private[Row[Any]]

    related: strawberry.Private[Related] = None

    @strawberry.field(graphql_type=Article)
    def article(self, info: Info) -> Any:
        return to_one(info, self, "article")

    @strawberry.field(
        graphql_type=User | None, description="Null when the author was deleted or never set."
    )
    def author(self, info: Info) -> Any:
        return to_one(info, self, "author")

    @staticmethod
    def from_row(row: Row[Any]) -> "Comment":
        return Comment(
            id=strawberry.ID(ids.encode("Comment", row.id)),
            database_id=row.id,
            text=row.text,
            created_at=row.created_at,
            row=row,
        )


# ---------------------------------------------------------------------------- many-to-one

# The many-to-one fields of each type: GraphQL field name -> relation (same name on the model).
TO_ONE: dict[str, dict[str, Relation]] = {
    "Post": {"user": Relation.of(models.Post, "user")},
    "Comment": {
        "article": Relation.of(models.Comment, "article"),
        "author": Relation.of(models.Comment, "author"),
    },
}


def to_one(info: Info, node: Any, name: str) -> Any:
    """The object a many-to-one field points at: at once when the page that produced `node`
    loaded it already (see `entity_objects`), else an awaitable batched by the loaders."""
    relation = TO_ONE[type(node).__name__][name]
    fk = node.row._mapping[relation.local_column.name]
    if fk is None:
        return None
    wrap = ENTITIES_BY_TABLE[relation.target].wrap
    if node.related is not None and name in node.related:
        row = node.related[name].get(fk)
        return None if row is None else wrap(row)
    return _load_one(info, relation, node.row, wrap)


async def _load_one(info: Info, relation: Relation, row: Row[Any], wrap: Any) -> Any:
    target = await info.context.loaders.one(relation, row)
    return None if target is None else wrap(target)


async def entity_objects(
    info: Info, entity: "Entity", rows: Sequence[Row[Any]], selected: frozenset[str]
) -> list[Any]:
    """A page's rows as objects of `entity`, with the many-to-one relations the query
    `selected` on them loaded for the whole page in one batch each (no awaitable per row)."""
    wanted = {name: r for name, r in TO_ONE.get(entity.name, {}).items() if name in selected}
    objects = [entity.wrap(row) for row in rows]
    if not wanted or not rows:
        return objects
    loaders = info.context.loaders
    found = await asyncio.gather(*(loaders.one_for_each(r, rows) for r in wanted.values()))
    related = dict(zip(wanted, found, strict=True))
    for node in objects:
        node.related = related
    return objects


# ---------------------------------------------------------------------------- order and filter


@strawberry.enum
class UserOrderField(Enum):
    ID = "id"
    USERNAME = "username"
    CREATED_AT = "created_at"


@strawberry.enum
class PostOrderField(Enum):
    ID = "id"
    TITLE = "title"
    CREATED_AT = "created_at"


@strawberry.enum
class ArticleOrderField(Enum):
    ID = "id"
    TITLE = "title"
    CREATED_AT = "created_at"


@strawberry.enum
class CommentOrderField(Enum):
    ID = "id"
    CREATED_AT = "created_at"


@strawberry.input(description="Ties are broken by id, in the same direction.")
class UserOrder:
    field: UserOrderField
    direction: OrderDirection | None = OrderDirection.ASC


@strawberry.input(description="Ties are broken by id, in the same direction.")
class PostOrder:
    field: PostOrderField
    direction: OrderDirection | None = OrderDirection.ASC


@strawberry.input(description="Ties are broken by id, in the same direction.")
class ArticleOrder:
    field: ArticleOrderField
    direction: OrderDirection | None = OrderDirection.ASC


@strawberry.input(description="Ties are broken by id, in the same direction.")
class CommentOrder:
    field: CommentOrderField
    direction: OrderDirection | None = OrderDirection.ASC


@strawberry.input
class UserFilter:
    username: StringFilter | None = None


@strawberry.input
class PostFilter:
    title: StringFilter | None = None
    created_at: DateTimeFilter | None = None


@strawberry.input
class ArticleFilter:
    title: StringFilter | None = None
    created_at: DateTimeFilter | None = None


@strawberry.input
class CommentFilter:
    text: StringFilter | None = None
    created_at: DateTimeFilter | None = None


# ---------------------------------------------------------------------------- registry


@dataclasses.dataclass(frozen=True, slots=True)
class Entity:
    name: str
    type: type
    table: Table
    wrap: Any  # Callable[[Row], <the type>]


ENTITIES: dict[str, Entity] = {
    cls.__name__: Entity(name=cls.__name__, type=cls, table=table_of(model), wrap=cls.from_row)
    for cls, model in (
        (User, models.User),
        (Post, models.Post),
        (Article, models.Article),
        (Comment, models.Comment),
    )
}
ENTITIES_BY_TABLE: dict[Table, Entity] = {entity.table: entity for entity in ENTITIES.values()}
