"""Opaque keyset cursors.

A cursor is base64url(JSON [version, field, order, sort value, id]). It carries the row's
position in the sort order — never an offset — plus the connection field and orderBy it came
from, so a cursor handed to another field or another orderBy is refused instead of silently
paging somewhere else.

Decoding checks every part against the column it will be compared with (a naive or
out-of-range timestamp, a text holding U+0000, an id outside the key's range…): a cursor we
could not have issued is BAD_USER_INPUT, never a database error.
"""

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import BigInteger, Column, Row, Table
from sqlalchemy.types import TypeDecorator

from loaders import Order, Position, primary_key
from server.api.errors import bad_user_input

_VERSION = 1
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


def order_key(order: Order) -> str:
    return f"{order.column}:{'desc' if order.descending else 'asc'}"


def encode(field: str, order: Order, row: Row[Any], table: Table) -> str:
    mapping = row._mapping
    pk = primary_key(table).name
    sort_value = None if order.column == pk else mapping[order.column]
    if isinstance(sort_value, datetime):
        sort_value = sort_value.isoformat()
    payload = orjson.dumps([_VERSION, field, order_key(order), sort_value, mapping[pk]])
    return base64.urlsafe_b64encode(payload).decode()


def decode(cursor: str, *, field: str, order: Order, table: Table) -> Position:
    """The position a cursor names; BAD_USER_INPUT unless it came from `field` and `order`."""
    invalid = bad_user_input(f"{cursor!r} is not a valid cursor.")
    try:
        raw = base64.b64decode(cursor.encode("ascii"), altchars=b"-_", validate=True)
        payload = orjson.loads(raw)
    except (ValueError, UnicodeError, binascii.Error, orjson.JSONDecodeError):
        raise invalid from None
    if not isinstance(payload, list) or len(payload) != 5:
        raise invalid
    version, cursor_field, cursor_order, sort_value, pk = payload
    if not _is_int(version) or version != _VERSION or not _is_int(pk):
        raise invalid
    if cursor_field != field or cursor_order != order_key(order):
        raise bad_user_input(
            f"This cursor belongs to another connection or orderBy; it is only valid for the "
            f"{cursor_field} connection ordered by {cursor_order}."
        )
    key = primary_key(table)
    low, high = _INT64 if isinstance(key.type, BigInteger) else _INT32
    if not low <= pk <= high:
        raise invalid
    if order.column == key.name:
        if sort_value is not None:
            raise invalid
        return Position(sort_value=None, id=pk)
    value = _sort_value(sort_value, table.c[order.column])
    if value is None:
        raise invalid
    return Position(sort_value=value, id=pk)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _python_type(column: Column[Any]) -> type:
    column_type = column.type
    if isinstance(column_type, TypeDecorator):  # e.g. UTCDateTime: its own python_type is object
        column_type = column_type.impl_instance
    python_type: type = column_type.python_type
    return python_type


def _sort_value(raw: Any, column: Column[Any]) -> Any:
    """The cursor's sort value as the column's Python type, or None if it cannot be one."""
    python_type = _python_type(column)
    if python_type is datetime:
        if not isinstance(raw, str):
            return None
        try:
            value = datetime.fromisoformat(raw)
            # An instant, in UTC (the form we encode): naive or unrepresentable values are junk.
            return None if value.utcoffset() is None else value.astimezone(UTC)
        except (ValueError, OverflowError):
            return None
    if python_type is str:
        # No stored text holds U+0000 (PostgreSQL cannot store it), so no cursor of ours does.
        return raw if isinstance(raw, str) and "\x00" not in raw else None
    if python_type is int:
        return raw if _is_int(raw) else None
    return raw if isinstance(raw, python_type) else None
