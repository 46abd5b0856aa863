"""`schema.graphql` is the exact printed SDL of the running schema (`make schema` writes it)."""

import difflib
from pathlib import Path

import pytest
from strawberry.printer import print_schema

from server.api.schema import build_schema

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema.graphql"
HINT = "run `make schema` (inkgraph export-schema -o schema.graphql)"


def test_schema_file_is_current() -> None:
    expected = print_schema(build_schema()) + "\n"
    if not SCHEMA_FILE.is_file():
        pytest.fail(f"{SCHEMA_FILE.name} is missing: {HINT}", pytrace=False)
    # newline="" keeps "\r\n" visible: the file must be byte-for-byte what export-schema writes.
    with SCHEMA_FILE.open(encoding="utf-8", newline="") as file:
        actual = file.read()
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                actual.splitlines(keepends=True),
                expected.splitlines(keepends=True),
                fromfile=f"{SCHEMA_FILE.name} (checked in)",
                tofile=f"{SCHEMA_FILE.name} (from the code)",
            )
        )
        pytest.fail(f"{SCHEMA_FILE.name} is out of date: {HINT}\n{diff}", pytrace=False)
