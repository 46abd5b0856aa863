"""GraphiQL: inkgraph's own page, fully offline, opening on examples that run on the demo data.

What the page does in a real browser (typing, the docs explorer, login → Headers → createPost)
is proven by tests/clients/test_browser.py; this file checks the page and its assets as served.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from graphql import parse, validate
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from server.api.schema import build_schema
from server.app import create_app
from server.ide import (
    STATIC_PREFIX,
    asset_urls,
    assets_installed,
    check_offline,
    ide_html,
    ide_static_app,
)
from server.settings import Settings

INSTALL_HINT = (
    "GraphiQL assets are not installed in server/graphiql/node_modules: run `make install` "
    "(it runs `npm ci --prefix server/graphiql --ignore-scripts --no-audit --no-fund`)."
)

_TAG = re.compile(r"<(?:script|link)\b[^>]*>", re.IGNORECASE | re.DOTALL)
_ATTR = re.compile(r"""\b(src|href|integrity)\s*=\s*(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
# The example tabs' documents: `query: `...`` template literals of the page's script.
_EXAMPLE_QUERY = re.compile(r"\bquery: `(.*?)`", re.DOTALL)


async def _page(_request: Request) -> HTMLResponse:
    return HTMLResponse(ide_html())


@pytest.fixture(scope="module")
def app_client() -> Iterator[TestClient]:
    app = Starlette(routes=[Route("/graphql", _page), Mount(STATIC_PREFIX, app=ide_static_app())])
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def client(app_client: TestClient) -> TestClient:
    """The app's client, failing (not skipping) the test when the assets are not installed."""
    if not assets_installed():
        pytest.fail(INSTALL_HINT, pytrace=False)
    return app_client


@pytest_asyncio.fixture
async def inkgraph(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The real app; these tests never reach its (empty) database."""
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'unused.db'}"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://inkgraph") as http:
        yield http


def _assets_with_integrity(html: str) -> dict[str, str]:
    """``{url: integrity}`` for every <script src> / <link href> of the page (data: excluded)."""
    assets: dict[str, str] = {}
    for tag in _TAG.findall(html):
        attrs = {name.lower(): value.strip() for name, _, value in _ATTR.findall(tag)}
        url = attrs.get("src") or attrs.get("href")
        if url is None or url.startswith("data:"):
            continue
        assets[url] = attrs.get("integrity", "")
    return assets


def test_ide_page_loads_nothing_from_the_internet(client: TestClient) -> None:
    html = client.get("/graphql").text

    assert "unpkg" not in html
    assert "https://" not in html
    urls = asset_urls(html)
    assert urls, "the IDE page references no assets at all?"
    assert all(url.startswith(f"{STATIC_PREFIX}/") for url in urls), urls


def test_every_ide_asset_is_served_with_matching_integrity(client: TestClient) -> None:
    assets = _assets_with_integrity(client.get("/graphql").text)

    # react, react-dom, graphiql (js + css), explorer plugin (js + css)
    assert len(assets) == 6, assets
    for url, integrity in assets.items():
        response = client.get(url)
        assert response.status_code == 200, url
        assert len(response.content) > 500, url
        content_type = response.headers["content-type"]
        expected_type = "css" if url.endswith(".css") else "javascript"
        assert expected_type in content_type, (url, content_type)

        algorithm, _, expected = integrity.partition("-")
        assert algorithm == "sha384", (url, integrity)
        actual = base64.b64encode(hashlib.sha384(response.content).digest()).decode()
        assert actual == expected, f"{url}: served file does not match the page's SRI hash"


def _inline_script(html: str) -> str:
    scripts = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    assert len(scripts) == 1, scripts
    return str(scripts[0])


def test_the_page_is_inkgraphs_and_keeps_queries_out_of_the_url() -> None:
    html = ide_html()
    script = _inline_script(html)

    assert "<title>inkgraph</title>" in html
    assert "Strawberry GraphiQL" not in html
    assert "Welcome to GraphiQL" not in html
    # No query, variables or headers are copied into the address bar (a password, a token).
    assert "replaceState" not in script
    assert "pushState" not in script
    assert "location.search" not in script
    # The editor is uncontrolled: a controlled `query` fed back from onEditQuery drops keys.
    assert "onEditQuery" not in script
    assert "defaultTabs: EXAMPLE_TABS" in script


def test_the_example_tabs_are_valid_against_the_schema() -> None:
    schema = build_schema()._schema
    examples = _EXAMPLE_QUERY.findall(_inline_script(ide_html()))

    assert len(examples) == 3
    assert "users(first: 10, orderBy: {field: USERNAME})" in examples[0]
    for document in examples:
        assert validate(schema, parse(document)) == [], document


async def test_the_real_app_serves_the_page_to_browsers(inkgraph: httpx.AsyncClient) -> None:
    response = await inkgraph.get("/graphql", headers={"Accept": "text/html"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.text == ide_html()


async def test_the_root_url_redirects_to_graphiql(inkgraph: httpx.AsyncClient) -> None:
    response = await inkgraph.get("/", headers={"Accept": "text/html"})

    assert response.status_code == 307
    assert response.headers["location"] == "/graphql"


@pytest.mark.parametrize(
    "tag",
    [
        '<script src="https://cdn.jsdelivr.net/npm/graphiql@4/graphiql.min.js"></script>',
        '<link rel="stylesheet" href="//fonts.example.com/font.css">',
        '<script src="http://example.com/x.js"></script>',
    ],
)
def test_a_page_with_remote_assets_fails_loudly(tag: str) -> None:
    with pytest.raises(RuntimeError, match="loads assets from the internet"):
        check_offline(f"<html><head>{tag}</head></html>")


def test_missing_assets_answer_404_instead_of_crashing(tmp_path: Path) -> None:
    app = Starlette(routes=[Mount(STATIC_PREFIX, app=ide_static_app(tmp_path / "missing"))])

    with TestClient(app) as test_client:
        response = test_client.get(f"{STATIC_PREFIX}/react/umd/react.production.min.js")

    assert response.status_code == 404
