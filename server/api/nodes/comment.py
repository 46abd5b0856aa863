"""`Comment`: a comment on an article, and the connections `User.comments` and
`Article.comments`."""

from enum import Enum

import strawberry

from loaders import Relation
from server.api.inputs import DateTimeFilter, OrderDirection, StringFilter
from server.api.nodes.article import Article
from server.api.nodes.base import RowNode, connect, register, to_one
from server.api.nodes.user import User
from server.api.scalars import DateTime
from server.store import models


@strawberry.enum
class CommentOrderField(Enum):
    ID = "id"
    CREATED_AT = "created_at"


@strawberry.input(description="Ties are broken by id, in the same direction.")
class CommentOrder:
    field: CommentOrderField
    direction: OrderDirection | None = OrderDirection.ASC


@strawberry.input
class CommentFilter:
    text: StringFilter | None = None
    created_at: DateTimeFilter | None = None


@strawberry.type
class Comment(RowNode):
    text: str
    created_at: DateTime
    article = to_one(Relation.of(models.Comment, "article"), Article)
    author = to_one(
        Relation.of(models.Comment, "author"),
        User,
        description="Null when the author was deleted or never set.",
    )


COMMENT = register(
    Comment, models.Comment, order=CommentOrder, filter=CommentFilter, root="comments"
)
connect(User, "comments", COMMENT, description="Comments this user wrote.")
connect(Article, "comments", COMMENT)
