"""`inkgraph schema-diff BASE`: what a schema change does to existing clients.

BASE is an SDL file or a git revision (whose `schema.graphql` is read with `git show`). It is
compared with the schema inkgraph serves now (or with `--against FILE`) by graphql-core's own
`find_breaking_changes` (a query that worked may now fail: a removed field, a narrowed type, a
new required argument) and `find_dangerous_changes` (queries still validate but answers may
differ: a new enum value a client's `switch` does not know, a changed default).

Exit status: 0 when nothing is breaking (dangerous changes are printed, not fatal), 1 when
something is, 2 when a side cannot be read (no such file or revision, invalid SDL).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from graphql import (
    GraphQLError,
    GraphQLSchema,
    build_schema,
    find_breaking_changes,
    find_dangerous_changes,
)

__all__ = ["SchemaDiff", "SchemaSourceError", "diff_schemas", "load_sdl", "served_sdl"]


class SchemaSourceError(Exception):
    """A side of the comparison cannot be read or is not a valid schema (exit status 2)."""


@dataclass(frozen=True)
class SchemaDiff:
    """The changes from the base schema to the new one, as `(kind, description)` pairs."""

    breaking: list[tuple[str, str]]
    dangerous: list[tuple[str, str]]

    def report(self, base: str, new: str) -> str:
        lines = [f"schema changes from {base} to {new}:"]
        lines += [f"  BREAKING   {kind}: {text}" for kind, text in self.breaking]
        lines += [f"  DANGEROUS  {kind}: {text}" for kind, text in self.dangerous]
        if not self.breaking and not self.dangerous:
            lines.append("  none that affect clients")
        lines.append(
            f"{len(self.breaking)} breaking, {len(self.dangerous)} dangerous"
            + (" — existing clients may fail" if self.breaking else "")
        )
        return "\n".join(lines)


def served_sdl() -> str:
    """The SDL of the schema this code serves (what `inkgraph export-schema` prints)."""
    from strawberry.printer import print_schema

    from server.api.schema import build_schema as build_inkgraph_schema

    return print_schema(build_inkgraph_schema()) + "\n"


def load_sdl(source: str, *, path_in_revision: str = "schema.graphql") -> str:
    """The SDL of `source`: an existing file, else a git revision's `path_in_revision`
    (relative to the working directory, as `git show REV:./PATH` reads it)."""
    file = Path(source)
    if file.is_file():
        return file.read_text(encoding="utf-8")
    try:
        shown = subprocess.run(
            ["git", "show", f"{source}:./{path_in_revision}"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except OSError as error:  # no git on PATH
        raise SchemaSourceError(f"{source!r} is not a file and git cannot run: {error}") from error
    if shown.returncode != 0:
        reason = (shown.stderr.strip().splitlines() or ["unknown revision"])[0]
        raise SchemaSourceError(f"{source!r} is neither a file nor a git revision ({reason})")
    return shown.stdout


def _schema(sdl: str, name: str) -> GraphQLSchema:
    try:
        return build_schema(sdl)
    except (GraphQLError, TypeError) as error:
        first_line = (str(error).strip().splitlines() or ["invalid SDL"])[0]
        raise SchemaSourceError(f"{name} is not a valid GraphQL schema: {first_line}") from error


def diff_schemas(
    base_sdl: str, new_sdl: str, *, base: str = "base", new: str = "new"
) -> SchemaDiff:
    """Compare two SDL documents with graphql-core's change finders (`base`/`new` name the
    sides in error messages)."""
    old, current = _schema(base_sdl, base), _schema(new_sdl, new)
    return SchemaDiff(
        breaking=[(c.type.name, c.description) for c in find_breaking_changes(old, current)],
        dangerous=[(c.type.name, c.description) for c in find_dangerous_changes(old, current)],
    )
