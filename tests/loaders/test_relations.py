"""Every relationship declared on the SQLModel tables yields a consistent `Relation`.

The cases are read from the mapper registry, so a relationship added to server/store/models.py is
covered here without writing a test.
"""

from typing import Any

import pytest
from sqlalchemy import Table
from sqlalchemy.orm import Mapper, RelationshipDirection, RelationshipProperty
from sqlmodel import SQLModel

import server.store.models  # also registers the tables on SQLModel's registry
from loaders import Relation, primary_key


def _relationships() -> list[Any]:
    cases = [
        pytest.param(mapper, prop, id=f"{mapper.class_.__name__}.{prop.key}")
        for mapper in SQLModel._sa_registry.mappers
        for prop in mapper.relationships
    ]
    return sorted(cases, key=lambda case: case.id)


RELATIONSHIPS = _relationships()


def model_of(mapper: Mapper[Any]) -> type:
    # `type`, not mapper.class_'s `type[Any]`: mypy does not see the latter as Hashable,
    # which Relation.of's cache needs.
    model: type = mapper.class_
    return model


def test_the_contract_relations_are_among_them() -> None:
    names = {case.id for case in RELATIONSHIPS}
    assert {
        "User.posts",
        "Post.user",
        "Article.comments",
        "Comment.article",
        "User.comments",
        "Comment.author",
    } <= names


@pytest.mark.parametrize(("mapper", "prop"), RELATIONSHIPS)
def test_relation_matches_the_mapper(mapper: Mapper[Any], prop: RelationshipProperty[Any]) -> None:
    relation = Relation.of(model_of(mapper), prop.key)
    assert relation.name == f"{mapper.class_.__name__}.{prop.key}"
    assert relation.parent is mapper.local_table
    assert relation.target is prop.mapper.local_table
    assert isinstance(relation.parent, Table)
    assert isinstance(relation.target, Table)
    assert relation.local_column.table is relation.parent
    assert relation.remote_column.table is relation.target
    assert relation.many is (prop.direction is RelationshipDirection.ONETOMANY)
    assert relation.many is prop.uselist
    # Whatever the direction, the join is one foreign key onto a primary key.
    if relation.many:
        key, foreign = relation.local_column, relation.remote_column
    else:
        foreign, key = relation.local_column, relation.remote_column
        assert relation.to_primary_key
    assert isinstance(key.table, Table)
    assert key is primary_key(key.table)
    assert {fk.column for fk in foreign.foreign_keys} == {key}
    assert foreign.index, f"{foreign} is joined on for every batch: it needs an index"


@pytest.mark.parametrize(("mapper", "prop"), RELATIONSHIPS)
def test_relation_and_its_back_populates_are_mirrors(
    mapper: Mapper[Any], prop: RelationshipProperty[Any]
) -> None:
    if not prop.back_populates:
        pytest.skip(f"{prop} declares no back_populates")
    relation = Relation.of(model_of(mapper), prop.key)
    mirror = Relation.of(model_of(prop.mapper), prop.back_populates)
    assert (mirror.parent, mirror.target) == (relation.target, relation.parent)
    assert mirror.local_column is relation.remote_column
    assert mirror.remote_column is relation.local_column
    assert mirror.many is not relation.many


@pytest.mark.parametrize(("mapper", "prop"), RELATIONSHIPS)
def test_relation_is_cached_and_hashable(
    mapper: Mapper[Any], prop: RelationshipProperty[Any]
) -> None:
    relation = Relation.of(model_of(mapper), prop.key)
    assert Relation.of(model_of(mapper), prop.key) is relation
    assert {relation: 1}[relation] == 1  # loaders are keyed by it


def test_misspelt_relation_lists_the_valid_names() -> None:
    with pytest.raises(KeyError) as error:
        Relation.of(server.store.models.User, "post")
    message = str(error.value)
    assert "'post'" in message
    valid = sorted(server.store.models.User.__mapper__.relationships.keys())  # type: ignore[attr-defined]
    assert ", ".join(valid) in message
