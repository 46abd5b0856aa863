"""Keyset pagination: ORDER BY with a primary-key tie-break, and "after/before" predicates.

A position is (sort value, id). Because every ordering ends with the primary key in the same
direction, the order is total, so a position names one gap between two rows: the next page
starts exactly after it, whatever was inserted or deleted elsewhere, and costs an index range
scan rather than an OFFSET that reads and discards every earlier row.
"""

from sqlalchemy import ColumnElement, Table, and_, or_
from sqlalchemy.sql.elements import UnaryExpression

from loaders.relations import primary_key
from loaders.specs import Order, Position


def order_by(table: Table, order: Order, *, reverse: bool) -> list[UnaryExpression[object]]:
    """Sort expressions for `order`, flipped when a page is read from its end (`last`)."""
    descending = order.descending != reverse
    pk = primary_key(table)
    columns = [pk] if order.column == pk.name else [table.c[order.column], pk]
    return [c.desc() if descending else c.asc() for c in columns]


def beyond(table: Table, order: Order, position: Position, *, forward: bool) -> ColumnElement[bool]:
    """Rows strictly after `position` in `order` (forward) or strictly before it."""
    pk = primary_key(table)
    ascending_side = forward != order.descending  # compare with > rather than <
    if order.column == pk.name:
        return pk > position.id if ascending_side else pk < position.id
    column = table.c[order.column]
    if ascending_side:
        return or_(
            column > position.sort_value, and_(column == position.sort_value, pk > position.id)
        )
    return or_(column < position.sort_value, and_(column == position.sort_value, pk < position.id))
