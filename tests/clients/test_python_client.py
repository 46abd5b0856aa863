"""Python client proof: ariadne-codegen (its own locked environment, tests/clients/python)
generates a typed async client from schema.graphql and tests/clients/documents into a temporary
directory; tests/clients/python/proof.py, type-checked against it with `mypy --strict`, runs it
against a live inkgraph and must get the same answers as the TypeScript proof."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.clients.live import DOCUMENTS_DIR, ROOT
from tests.clients.scenario import assert_report

HERE = Path(__file__).resolve().parent / "python"
CODEGEN = HERE / ".venv" / "bin" / "ariadne-codegen"
PROOF = HERE / "proof.py"
NEW_TITLE = "Hello from the Python client"
RETITLE = "Retitled by the Python client"

CONFIG = """\
[tool.ariadne-codegen]
schema_path = {schema}
queries_path = {documents}
target_package_name = "inkgraph_client"
target_package_path = {target}
async_client = true
include_comments = "none"

# inkgraph's one custom scalar: ISO 8601 with an explicit offset, parsed by pydantic.
[tool.ariadne-codegen.scalars.DateTime]
type = "datetime.datetime"
"""


def _run(command: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory holding the freshly generated `inkgraph_client` package."""
    if not CODEGEN.is_file():
        pytest.fail(
            "ariadne-codegen is not installed: run `make install` "
            "(uv sync --frozen --project tests/clients/python)",
            pytrace=False,
        )
    target = tmp_path_factory.mktemp("ariadne")
    config = target / "codegen.toml"
    config.write_text(
        CONFIG.format(
            schema=json.dumps(str(ROOT / "schema.graphql")),
            documents=json.dumps(str(DOCUMENTS_DIR)),
            target=json.dumps(str(target)),
        ),
        encoding="utf-8",
    )
    _run([str(CODEGEN), "--config", str(config), "client"], cwd=target)
    return target


def _env(generated: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(generated), "MYPYPATH": str(generated)}


def test_generated_client_is_typed_and_maps_datetime(generated: Path) -> None:
    fragments = (generated / "inkgraph_client" / "fragments.py").read_text(encoding="utf-8")
    assert 'created_at: datetime = Field(alias="createdAt")' in fragments

    # The proof uses the client's models the way an application would; mypy --strict checks
    # those uses against the generated types (the generated package itself is not ours).
    _run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", str(PROOF)],
        cwd=generated,
        env=_env(generated),
    )


@pytest.fixture(scope="module")
def report(generated: Path, inkgraph_url: str) -> dict[str, Any]:
    output = _run(
        [sys.executable, str(PROOF), inkgraph_url, NEW_TITLE, RETITLE],
        cwd=generated,
        env=_env(generated),
    )
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def test_python_client_gets_the_expected_answers(report: dict[str, Any]) -> None:
    assert_report(report, NEW_TITLE, RETITLE)
