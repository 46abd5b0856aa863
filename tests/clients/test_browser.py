"""GraphiQL as a person uses it: Debian's chromium, driven by playwright-core, against a live
inkgraph with the demo data; every request off 127.0.0.1 blocked and recorded.

The README's long example is typed key by key (several rounds, since the keystroke-dropping
defect of a controlled editor showed up in about one try in three) and must reach the server
exactly as typed; the README's login → Headers → createPost flow must work as written.
"""

import json
from typing import Any

import pytest

from tests.clients.live import (
    one_line,
    readme_graphql_blocks,
    require_chromium,
    require_js_deps,
    run_node,
)

ROUNDS = 6


def _readme_examples() -> dict[str, str]:
    blocks = readme_graphql_blocks()
    first_example = blocks[0].split("\n\n")[0]  # "Users with their three latest posts"
    login = next(block for block in blocks if "login(input:" in block)
    mutations = next(block for block in blocks if "createPost(input:" in block)
    create_post = mutations.split("\nmutation")[0]
    return {
        "typed": one_line(first_example),
        "login": one_line(login),
        "createPost": one_line(create_post),
    }


@pytest.fixture(scope="module")
def browser_ready() -> None:
    require_js_deps()
    require_chromium()


@pytest.fixture(scope="module")
def report(browser_ready: None, inkgraph_url: str) -> dict[str, Any]:
    options = {"url": inkgraph_url, "rounds": ROUNDS, **_readme_examples()}
    return run_node(["browser.mjs", json.dumps(options)], timeout=300)


def test_readme_examples_are_what_the_browser_types() -> None:
    examples = _readme_examples()

    assert len(examples["typed"]) > 200, examples["typed"]  # the long one
    assert examples["typed"].startswith("{ users(first: 10")
    assert examples["login"].startswith("mutation { login(")
    assert examples["createPost"].startswith("mutation { createPost(")


def test_page_loads_offline_without_console_errors(report: dict[str, Any]) -> None:
    assert report["outsideRequests"] == []
    assert report["consoleErrors"] == []
    assert report["title"] == "inkgraph"
    assert str(report["landedOn"]).endswith("/graphql")  # GET / redirected
    assert "users(first: 10, orderBy: {field: USERNAME})" in str(report["defaultTab"])
    assert "Welcome to GraphiQL" not in str(report["defaultTab"])


def test_docs_explorer_shows_query(report: dict[str, Any]) -> None:
    assert "query: Query" in str(report["docsRootTypes"])
    assert {"node", "users", "posts", "articles", "viewer"} <= set(report["docsQueryFields"])


def test_typed_query_arrives_intact_and_shows_data(report: dict[str, Any]) -> None:
    rounds = report["typing"]
    assert isinstance(rounds, list)
    assert len(rounds) == ROUNDS
    for typed in rounds:
        assert typed["editorIntact"], typed
        assert typed["sentIntact"], typed
        assert typed["errors"] is None, typed
        assert typed["users"][:3] == ["ada", "barbara", "dennis"], typed


def test_login_headers_create_post_flow(report: dict[str, Any]) -> None:
    login = report["login"]["data"]["login"]
    assert login["userErrors"] == []
    assert login["user"]["isEditor"] is True
    token = login["token"]
    assert token.startswith("ink_")
    assert json.loads(str(report["headersEditor"])) == {"Authorization": f"Bearer {token}"}

    assert report["createPostAuthorization"] is True
    created = report["createPost"]["data"]["createPost"]
    assert created["userErrors"] == []
    assert created["post"]["title"] == "Hello from GraphiQL"
    assert created["post"]["user"] == {"username": "ada"}


def test_nothing_is_written_into_the_address_bar(report: dict[str, Any]) -> None:
    urls = report["urlsSeen"]
    assert isinstance(urls, list)
    assert urls
    assert all("?" not in url and "#" not in url for url in urls), urls


def test_browser_proof_passed_as_a_whole(report: dict[str, Any]) -> None:
    assert report["failures"] == []
    assert report["exitCode"] == 0
