"""The inputs every connection shares: order direction, text and instant filters, and their
translation into what the loaders take (`Condition`, `Order`).

An entity's own `XOrder` / `XFilter` inputs live beside its type (server/api/nodes/); their
field names are column names, which is what lets `conditions_of` and `order_of` stay generic.
"""

import dataclasses
from enum import Enum
from typing import Any

import strawberry

from loaders import Condition, Op, Order
from server.api.scalars import DateTime

UNSET: Any = strawberry.UNSET

# ---------------------------------------------------------------------------- shared inputs


@strawberry.enum
class OrderDirection(Enum):
    ASC = "asc"
    DESC = "desc"


@strawberry.input(description="Text conditions; all given parts must hold.")
class StringFilter:
    eq: str | None = strawberry.field(default=None, description="Exact, case-sensitive.")
    in_: list[str] | None = strawberry.field(
        default=None, name="in", description="Exact, case-sensitive; [] matches nothing."
    )
    contains: str | None = strawberry.field(
        default=None, description="Case-insensitive substring; % _ \\ match themselves."
    )
    starts_with: str | None = strawberry.field(
        default=None, description="Case-insensitive prefix; % _ \\ match themselves."
    )


@strawberry.input(description="Instant comparisons; all given parts must hold.")
class DateTimeFilter:
    gt: DateTime | None = None
    gte: DateTime | None = None
    lt: DateTime | None = None
    lte: DateTime | None = None


_OPS: dict[str, Op] = {
    "eq": "eq",
    "in_": "in",
    "contains": "contains",
    "starts_with": "starts_with",
    "gt": "gt",
    "gte": "gte",
    "lt": "lt",
    "lte": "lte",
}


def conditions_of(filter_input: Any) -> tuple[Condition, ...]:
    """Flatten an `XFilter` input into loader conditions. Input field names are column names."""
    if filter_input is None:
        return ()
    conditions: list[Condition] = []
    for column_field in dataclasses.fields(filter_input):
        column_filter = getattr(filter_input, column_field.name)
        if column_filter is None:
            continue
        for op_field in dataclasses.fields(column_filter):
            value = getattr(column_filter, op_field.name)
            if value is not None:
                value = tuple(value) if isinstance(value, list) else value
                conditions.append(Condition(column_field.name, _OPS[op_field.name], value))
    return tuple(conditions)


def order_of(order_input: Any) -> Order:
    """An `XOrder` input (enum values are column names) as a loader `Order`."""
    if order_input is None:
        return Order()
    # `direction: null` means the default, ASC.
    return Order(order_input.field.value, order_input.direction is OrderDirection.DESC)


def given(value: Any) -> Any:
    """An argument left out (UNSET) and one sent as explicit null mean the same."""
    return None if value is UNSET else value
