"""`inkgraph schema-diff BASE`: breaking changes fail (exit 1), dangerous ones are reported,
unreadable sides exit 2 — graphql-core's own change finders, on planted changes."""

import subprocess
from pathlib import Path

import pytest

from server.cli import main

ROOT = Path(__file__).resolve().parents[1]
SDL = (ROOT / "schema.graphql").read_text(encoding="utf-8")


def _planted(tmp_path: Path, name: str, old: str, new: str) -> Path:
    assert old in SDL, f"the planted change no longer applies: {old!r}"
    path = tmp_path / name
    path.write_text(SDL.replace(old, new, 1), encoding="utf-8")
    return path


def _diff(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["schema-diff", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_the_served_schema_matches_the_checked_in_file(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _diff(capsys, str(ROOT / "schema.graphql"))

    assert status == 0
    assert "none that affect clients" in out
    assert out.strip().endswith("0 breaking, 0 dangerous")


def test_removed_fields_and_a_new_required_input_field_are_breaking(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # What a careless refactor does: two Post fields dropped, a required input field added.
    planted = _planted(
        tmp_path,
        "new.graphql",
        "type Post implements Node {\n  id: ID!\n  databaseId: Int!\n  title: String!\n",
        "type Post implements Node {\n  id: ID!\n",
    )
    planted.write_text(
        planted.read_text(encoding="utf-8").replace(
            "input CreatePostInput {\n  title: String!\n}",
            "input CreatePostInput {\n  title: String!\n  tags: [String!]!\n}",
        ),
        encoding="utf-8",
    )

    status, out, _ = _diff(capsys, str(ROOT / "schema.graphql"), "--against", str(planted))

    assert status == 1
    assert "BREAKING   FIELD_REMOVED: Field Post.databaseId was removed." in out
    assert "BREAKING   FIELD_REMOVED: Field Post.title was removed." in out
    assert (
        "BREAKING   REQUIRED_INPUT_FIELD_ADDED: A required field CreatePostInput.tags was added."
        in out
    )
    assert "3 breaking, 0 dangerous — existing clients may fail" in out


def test_a_new_enum_value_is_dangerous_not_breaking(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    planted = _planted(
        tmp_path, "new.graphql", "enum UserErrorCode {\n", "enum UserErrorCode {\n  RATE_LIMITED\n"
    )

    status, out, _ = _diff(capsys, str(ROOT / "schema.graphql"), "--against", str(planted))

    assert status == 0
    assert "DANGEROUS  VALUE_ADDED_TO_ENUM: Enum value UserErrorCode.RATE_LIMITED was added." in out
    assert "0 breaking, 1 dangerous" in out


def test_a_git_revision_is_compared_with_the_served_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A repository whose last commit had a root field the code no longer serves.
    _planted(tmp_path, "schema.graphql", "type Query {\n", "type Query {\n  legacy: String\n")
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for command in (["init", "-q"], ["add", "schema.graphql"], ["commit", "-qm", "base"]):
        subprocess.run([*git, *command], check=True, capture_output=True)
    monkeypatch.chdir(tmp_path)

    status, out, _ = _diff(capsys, "HEAD")

    assert status == 1
    assert out.startswith("schema changes from HEAD to the schema served now:")
    assert "BREAKING   FIELD_REMOVED: Field Query.legacy was removed." in out


def test_an_unknown_revision_exits_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # not a repository, no such file

    status, out, err = _diff(capsys, "no-such-ref")

    assert status == 2
    assert out == ""
    assert err.startswith("inkgraph: error: schema-diff: 'no-such-ref' is neither a file nor")
    assert len(err.strip().splitlines()) == 1


def test_invalid_sdl_exits_2_naming_the_side(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.graphql"
    broken.write_text("type Query { oops: NoSuchType }\n", encoding="utf-8")

    status, _, err = _diff(capsys, str(broken))

    assert status == 2
    assert f"{broken} is not a valid GraphQL schema: Unknown type 'NoSuchType'." in err
