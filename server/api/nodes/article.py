"""`Article`: an editors' article; its comments are connected by server/api/nodes/comment.py."""

from enum import Enum

import strawberry

from server.api.inputs import DateTimeFilter, OrderDirection, StringFilter
from server.api.nodes.base import RowNode, register
from server.api.scalars import DateTime
from server.store import models


@strawberry.enum
class ArticleOrderField(Enum):
    ID = "id"
    TITLE = "title"
    CREATED_AT = "created_at"


@strawberry.input(description="Ties are broken by id, in the same direction.")
class ArticleOrder:
    field: ArticleOrderField
    direction: OrderDirection | None = OrderDirection.ASC


@strawberry.input
class ArticleFilter:
    title: StringFilter | None = None
    created_at: DateTimeFilter | None = None


@strawberry.type
class Article(RowNode):
    title: str
    created_at: DateTime


ARTICLE = register(
    Article, models.Article, order=ArticleOrder, filter=ArticleFilter, root="articles"
)
