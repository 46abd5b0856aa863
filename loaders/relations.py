"""Relations read from the SQLModel/SQLAlchemy relationship metadata.

`Relation.of(models.User, "posts")` is all a resolver needs to name a relation: the columns that
join parent to child, the direction and the target table come from the mapper, so adding a
relation to the models adds it here without new loader code.
"""

from dataclasses import dataclass
from functools import cache

from sqlalchemy import Column, Table, inspect
from sqlalchemy.orm import Mapper, RelationshipDirection


@dataclass(frozen=True, slots=True)
class Relation:
    """A one-to-many or many-to-one link between two tables, joined on one column pair."""

    name: str
    parent: Table
    target: Table
    local_column: Column[object]  # on the parent row: its key (one-to-many) or its FK
    remote_column: Column[object]  # on the target table
    many: bool  # True for one-to-many (a page of rows), False for many-to-one (one row)

    @staticmethod
    @cache
    def of(model: type, name: str) -> "Relation":
        mapper: Mapper[object] = inspect(model)
        relationships = mapper.relationships
        if name not in relationships:
            valid = ", ".join(sorted(relationships.keys()))
            raise KeyError(f"{model.__name__} has no relationship {name!r}; valid: {valid}")
        prop = relationships[name]
        if len(prop.local_remote_pairs) != 1 or prop.secondary is not None:
            raise NotImplementedError(f"{model.__name__}.{name}: only single-column joins")
        ((local, remote),) = prop.local_remote_pairs
        if prop.direction not in (RelationshipDirection.ONETOMANY, RelationshipDirection.MANYTOONE):
            raise NotImplementedError(f"{model.__name__}.{name}: {prop.direction.name}")
        parent = mapper.local_table
        target = prop.mapper.local_table
        assert isinstance(parent, Table)
        assert isinstance(target, Table)
        return Relation(
            name=f"{model.__name__}.{name}",
            parent=parent,
            target=target,
            local_column=local,  # type: ignore[arg-type] # ColumnElement narrowed by the mapper
            remote_column=remote,  # type: ignore[arg-type]
            many=prop.direction is RelationshipDirection.ONETOMANY,
        )

    @property
    def to_primary_key(self) -> bool:
        """A many-to-one whose remote side is the target's primary key (shares `by_id`)."""
        return not self.many and self.remote_column is primary_key(self.target)


def primary_key(table: Table) -> Column[object]:
    (column,) = table.primary_key.columns
    return column
