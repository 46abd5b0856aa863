"""Every GraphQL example in README.md runs, without errors, against a freshly seeded server.

The ```graphql blocks are split into their operations (a block may hold several) and run in
README order, on every backend, over the demo data `inkgraph seed` writes. A `login` in one
block signs in the blocks after it, as the README tells a reader to do in GraphiQL. Variables
an example uses come from VARIABLES; an example that returns `userErrors` counts as broken.
"""

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from graphql import DocumentNode, FragmentDefinitionNode, OperationDefinitionNode, parse, print_ast

from server.app import auth_config, create_app
from server.settings import Settings
from server.store.seed import seed
from tests.support.backends import fresh_database
from tests.support.gql import GraphQLClient

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_operations() -> list[str]:
    """Each operation of each ```graphql block, with the block's fragments, in README order."""
    operations: list[str] = []
    for block in re.findall(r"^```graphql\n(.*?)^```", README.read_text(), re.M | re.S):
        document = parse(block)
        fragments = [d for d in document.definitions if isinstance(d, FragmentDefinitionNode)]
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode):
                single = DocumentNode(definitions=(definition, *fragments))
                operations.append(print_ast(single))
    return operations


OPERATIONS = readme_operations()


async def _first_article(client: GraphQLClient) -> str:
    article: str = (await client.data("{ articles(first: 1) { nodes { id } } }"))["articles"][
        "nodes"
    ][0]["id"]
    return article


async def _second_page(client: GraphQLClient) -> str:
    data = await client.data("{ posts(first: 20) { pageInfo { endCursor } } }")
    cursor: str = data["posts"]["pageInfo"]["endCursor"]
    return cursor


# The values a reader would paste in GraphiQL's Variables pane, by variable name.
VARIABLES: dict[str, Callable[[GraphQLClient], Awaitable[str]]] = {
    "a": _first_article,
    "after": _second_page,
}


@pytest_asyncio.fixture(scope="module")
async def seeded(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[GraphQLClient]:
    async with fresh_database(backend, tmp_path_factory.mktemp(f"readme-{backend}")) as engine:
        settings = Settings(argon2_time_cost=1, argon2_memory_kib=1024, argon2_parallelism=1)
        assert await seed(engine, auth_config(settings).passwords)
        app = create_app(settings, engine=engine)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://inkgraph") as http:
            yield GraphQLClient(http)


def test_the_readme_has_examples() -> None:
    assert len(OPERATIONS) >= 8
    assert any(op.startswith("mutation") for op in OPERATIONS)


async def test_every_readme_example_runs(seeded: GraphQLClient) -> None:
    client = seeded
    for operation in OPERATIONS:
        names = sorted(set(re.findall(r"\$(\w+)", operation)))
        missing = [name for name in names if name not in VARIABLES]
        assert not missing, f"add a value for ${missing} to VARIABLES: {operation}"
        variables = {name: await VARIABLES[name](client) for name in names}
        body = await client.execute(operation, **variables)
        assert "errors" not in body, (operation, body["errors"])
        assert not list(_user_errors(body["data"])), (operation, body["data"])
        token = (body["data"].get("login") or {}).get("token")
        if token:
            client = client.as_user(token)


def _user_errors(value: Any) -> Any:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "userErrors":
                yield from item
            else:
                yield from _user_errors(item)
    elif isinstance(value, list):
        for item in value:
            yield from _user_errors(item)


def test_every_setting_is_in_a_readme_table_with_its_default() -> None:
    """An operator reads the README's tables for what can be set: a setting missing there (or
    with a stale default) is one nobody can find."""
    rows = [line for line in README.read_text().splitlines() if line.startswith("|")]
    for name, field in Settings.model_fields.items():
        env = name.upper()
        documented = [row for row in rows if f"`{env}`" in row]
        assert documented, f"{env} is in no README table"
        default = field.default
        if isinstance(default, bool):
            shown = str(default).lower()
        elif isinstance(default, timedelta):
            shown = str(int(default.total_seconds()))
        elif isinstance(default, float):
            shown = f"{default:g}"
        else:
            shown = str(default)
        assert any(shown in row for row in documented), f"{env}: default {shown} not shown"
