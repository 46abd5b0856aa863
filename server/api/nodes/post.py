"""`Post`: a user's post, and the connection `User.posts`."""

from enum import Enum

import strawberry

from loaders import Relation
from server.api.inputs import DateTimeFilter, OrderDirection, StringFilter
from server.api.nodes.base import RowNode, connect, register, to_one
from server.api.nodes.user import User
from server.api.scalars import DateTime
from server.store import models


@strawberry.enum
class PostOrderField(Enum):
    ID = "id"
    TITLE = "title"
    CREATED_AT = "created_at"


@strawberry.input(description="Ties are broken by id, in the same direction.")
class PostOrder:
    field: PostOrderField
    direction: OrderDirection | None = OrderDirection.ASC


@strawberry.input
class PostFilter:
    title: StringFilter | None = None
    created_at: DateTimeFilter | None = None


@strawberry.type
class Post(RowNode):
    title: str
    created_at: DateTime
    user = to_one(Relation.of(models.Post, "user"), User)


POST = register(Post, models.Post, order=PostOrder, filter=PostFilter, root="posts")
connect(User, "posts", POST)
