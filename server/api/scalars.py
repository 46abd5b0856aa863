"""The `DateTime` scalar: ISO 8601 out in UTC with an explicit offset; in, any offset, required."""

from datetime import UTC, datetime
from typing import Any, NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

from server.api.errors import UserInputError


def serialize(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def parse(value: Any) -> datetime:
    if not isinstance(value, str):
        raise UserInputError("DateTime must be an ISO 8601 string with an offset")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UserInputError(f"{value!r} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise UserInputError(f"{value!r} has no UTC offset; add one, e.g. Z or +02:00")
    try:
        # The same instant in UTC: what every backend stores and compares.
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+05:00 is before year 1 in UTC
        raise UserInputError(f"{value!r} is out of range in UTC") from None


DateTime = NewType("DateTime", datetime)

DATETIME_SCALAR = strawberry.scalar(
    name="DateTime",
    description="An instant, ISO 8601. Output is UTC with an explicit offset; input must carry "
    "an offset (any offset) and is compared as an instant.",
    serialize=serialize,
    parse_value=parse,
)

SCALAR_MAP: dict[object, ScalarDefinition] = {DateTime: DATETIME_SCALAR}
