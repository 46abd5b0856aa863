"""Plain values that describe what to load: ordering, filters, keyset positions and pages.

They are frozen and hashable because a loader is keyed by them: two places in one query that
ask for the same relation with the same spec share one batch. They know nothing of GraphQL.
"""

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Row

Op = Literal["eq", "in", "contains", "starts_with", "gt", "gte", "lt", "lte"]


@dataclass(frozen=True, slots=True)
class Order:
    """Sort by `column` (ties broken by the primary key in the same direction)."""

    column: str = "id"
    descending: bool = False


@dataclass(frozen=True, slots=True)
class Condition:
    """One predicate on a column of the loaded table. For `in`, `value` is a tuple."""

    column: str
    op: Op
    value: Hashable


@dataclass(frozen=True, slots=True)
class Position:
    """A keyset position: the sort column's value and the primary key of one row."""

    sort_value: Any
    id: int


@dataclass(frozen=True, slots=True)
class PageSpec:
    """One page of a connection: exactly one of `first` / `last` is set."""

    order: Order = Order()
    filter: tuple[Condition, ...] = ()
    first: int | None = None
    last: int | None = None
    after: Position | None = None
    before: Position | None = None

    def __post_init__(self) -> None:
        if (self.first is None) == (self.last is None):
            raise ValueError("PageSpec needs exactly one of first / last")
        size = self.first if self.first is not None else self.last
        if size is None or size < 0:
            raise ValueError("page size must be >= 0")

    @property
    def size(self) -> int:
        return self.first if self.first is not None else self.last  # type: ignore[return-value] # checked in __post_init__

    @property
    def backwards(self) -> bool:
        return self.last is not None


@dataclass(frozen=True, slots=True)
class Page:
    """Rows of one page in display order, and the Relay flags that could be computed exactly."""

    rows: Sequence[Row[Any]]
    has_next: bool
    has_previous: bool


EMPTY_PAGE = Page(rows=(), has_next=False, has_previous=False)
