"""Batched, paginated loading of related rows, derived from SQLModel relationship metadata.

This package knows tables, relations, keys and SQL. It never imports `server`, strawberry or
starlette: GraphQL names, global IDs, cursor strings and error codes belong to `server/`.
"""

from loaders.database import Database, DatabaseUnavailable, StatementTimeout
from loaders.registry import Loaders
from loaders.relations import Relation, primary_key
from loaders.specs import EMPTY_PAGE, Condition, Op, Order, Page, PageSpec, Position

__all__ = [
    "EMPTY_PAGE",
    "Condition",
    "Database",
    "DatabaseUnavailable",
    "Loaders",
    "Op",
    "Order",
    "Page",
    "PageSpec",
    "Position",
    "Relation",
    "StatementTimeout",
    "primary_key",
]
