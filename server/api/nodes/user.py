"""`User`: an account; its posts and comments are connected by their own modules."""

from enum import Enum

import strawberry

from server.api.inputs import OrderDirection, StringFilter
from server.api.nodes.base import RowNode, register
from server.api.scalars import DateTime
from server.store import models


@strawberry.enum
class UserOrderField(Enum):
    ID = "id"
    USERNAME = "username"
    CREATED_AT = "created_at"


@strawberry.input(description="Ties are broken by id, in the same direction.")
class UserOrder:
    field: UserOrderField
    direction: OrderDirection | None = OrderDirection.ASC


@strawberry.input
class UserFilter:
    username: StringFilter | None = None


@strawberry.type
class User(RowNode):
    username: str
    created_at: DateTime
    is_editor: bool = strawberry.field(
        description="May manage articles; granted only by `inkgraph create-editor`."
    )


USER = register(User, models.User, order=UserOrder, filter=UserFilter, root="users")
