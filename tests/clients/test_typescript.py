"""TypeScript client proof: graphql-codegen's client preset (strictScalars, DateTime mapped)
over schema.graphql and tests/clients/documents, compiled with `tsc --strict`, run with Apollo
Client core + InMemoryCache against a live inkgraph (tests/clients/js/src/proof.ts)."""

import shutil
import subprocess
from typing import Any

import pytest

from tests.clients.live import JS_DIR, require_js_deps, run_node
from tests.clients.scenario import assert_report

NEW_TITLE = "Hello from the TypeScript client"
RETITLE = "Retitled by the TypeScript client"


def _npx(tool: str, *args: str) -> None:
    done = subprocess.run(
        [str(JS_DIR / "node_modules" / ".bin" / tool), *args],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{tool} {' '.join(args)}:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def compiled() -> None:
    """Generate the typed documents afresh and compile the proof; fails on any type error."""
    require_js_deps()
    for generated in ("src/gql", "dist"):
        shutil.rmtree(JS_DIR / generated, ignore_errors=True)
    _npx("graphql-codegen", "--config", "codegen.ts")
    _npx("tsc", "-p", "tsconfig.json", "--strict")


@pytest.fixture(scope="module")
def report(compiled: None, inkgraph_url: str) -> dict[str, Any]:
    return run_node(["dist/proof.js", inkgraph_url, NEW_TITLE, RETITLE])


def test_codegen_types_map_datetime_to_string(compiled: None) -> None:
    generated = (JS_DIR / "src" / "gql" / "graphql.ts").read_text(encoding="utf-8")

    # strictScalars: an unmapped DateTime stops codegen ("Unknown scalar type DateTime");
    # mapped, every createdAt is a string (ISO 8601 with an offset), never `any`.
    assert "createdAt: string" in generated
    assert "any" not in generated.split()
    assert "export const UsersWithPostsDocument" in generated


def test_apollo_client_gets_the_expected_answers(report: dict[str, Any]) -> None:
    assert report["exitCode"] == 0
    assert_report(report, NEW_TITLE, RETITLE)


def test_update_post_result_updates_the_cached_list_by_id(report: dict[str, Any]) -> None:
    cache = report["cache"]

    assert cache["id"].startswith("Post:")
    assert cache["normalised"] is True
    assert cache["listTitleAfterUpdate"] == RETITLE
    assert cache["cacheOnlyTitle"] == RETITLE
    assert cache["requestsForCachedReads"] == 0
