"""The inputs every connection shares: order direction, text and instant filters, and their
translation into what the loaders take (`Condition`, `Order`).

An entity's own `XOrder` / `XFilter` inputs live beside its type (server/api/nodes/); their
field names are column names, which is what lets `conditions_of` and `order_of` stay generic.
"""

import dataclasses
from enum import Enum
from typing import Any, get_args, get_type_hints

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


OPERATORS: frozenset[str] = frozenset(get_args(Op))


def operator(input_field: str) -> Op:
    """The loader operator of an operator input field (`StringFilter.starts_with`): its Python
    name, without the trailing underscore of a Python keyword (`in_`). A field with no such
    operator is a `ValueError`: `filter_operators` raises it at registration, not per request."""
    name = input_field.removesuffix("_")
    if name not in OPERATORS:
        raise ValueError(
            f"{input_field!r} is not a loader operator (loaders.specs.Op: "
            f"{', '.join(sorted(OPERATORS))}); add it there and in loaders.filters.predicate"
        )
    return name  # type: ignore[return-value] # checked against Op's values above


def filter_operators(filter_input: type, columns: set[str]) -> frozenset[Op]:
    """The loader operators an `XFilter` input can send. Raises ValueError unless every field
    names a column and every field of its column filters (StringFilter, DateTimeFilter…)
    names a loader operator; `register` calls it, so that is at start-up, not per request."""
    found: set[Op] = set()
    for column_field in dataclasses.fields(filter_input):
        if column_field.name not in columns:
            raise ValueError(f"{filter_input.__name__}.{column_field.name} names no column")
        column_filter = _column_filter(filter_input, column_field.name)
        found.update(op for _name, op in _operators_of(column_filter))
    return frozenset(found)


def _column_filter(filter_input: type, name: str) -> type:
    annotation = get_type_hints(filter_input)[name]
    candidates = [t for t in get_args(annotation) if isinstance(t, type)]
    candidates = [t for t in candidates if dataclasses.is_dataclass(t)]
    if len(candidates) != 1:
        raise ValueError(f"{filter_input.__name__}.{name} must be `SomeFilter | None`")
    return candidates[0]


_OPERATORS_OF: dict[type, tuple[tuple[str, Op], ...]] = {}


def _operators_of(column_filter: type) -> tuple[tuple[str, Op], ...]:
    """A column filter's fields with their loader operators (each checked at start-up)."""
    known = _OPERATORS_OF.get(column_filter)
    if known is None:
        fields = dataclasses.fields(column_filter)
        known = _OPERATORS_OF[column_filter] = tuple((f.name, operator(f.name)) for f in fields)
    return known


def conditions_of(filter_input: Any) -> tuple[Condition, ...]:
    """Flatten an `XFilter` input into loader conditions. Input field names are column names."""
    if filter_input is None:
        return ()
    conditions: list[Condition] = []
    for column_field in dataclasses.fields(filter_input):
        column_filter = getattr(filter_input, column_field.name)
        if column_filter is None:
            continue
        for name, op in _operators_of(type(column_filter)):
            value = getattr(column_filter, name)
            if value is not None:
                value = tuple(value) if isinstance(value, list) else value
                conditions.append(Condition(column_field.name, op, value))
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
