"""GraphiQL must work offline: every asset of the IDE page is served by our own app."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import strawberry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.testclient import TestClient
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http.ides import get_graphql_ide_html
from typing_extensions import override

from server.ide import (
    STATIC_PREFIX,
    asset_urls,
    assets_dir,
    assets_installed,
    ide_static_app,
    offline_ide_html,
)

INSTALL_HINT = (
    "GraphiQL assets are not installed in server/graphiql/node_modules: run `make install` "
    "(it runs `npm ci --prefix server/graphiql --ignore-scripts --no-audit --no-fund`)."
)

_TAG = re.compile(r"<(?:script|link)\b[^>]*>", re.IGNORECASE | re.DOTALL)
_ATTR = re.compile(r"""\b(src|href|integrity)\s*=\s*(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)


@strawberry.type
class Query:
    hello: str = "hi"


class OfflineGraphQL(GraphQL[None, Query]):
    @override
    async def get_root_value(self, request: Request | WebSocket) -> Query:
        return Query()

    @override
    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(offline_ide_html(self.graphql_ide_html))


def _app() -> Starlette:
    graphql = OfflineGraphQL(strawberry.Schema(query=Query))
    return Starlette(
        routes=[
            Route("/graphql", graphql),
            Mount(STATIC_PREFIX, app=ide_static_app()),
        ]
    )


@pytest.fixture(scope="module")
def app_client() -> Iterator[TestClient]:
    with TestClient(_app()) as test_client:
        yield test_client


@pytest.fixture
def client(app_client: TestClient) -> TestClient:
    """The app's client, failing (not skipping) the test when the assets are not installed."""
    if not assets_installed():
        pytest.fail(INSTALL_HINT, pytrace=False)
    return app_client


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


def _ide_page(client: TestClient) -> str:
    response = client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def test_ide_page_loads_nothing_from_the_internet(client: TestClient) -> None:
    html = _ide_page(client)

    assert "GraphiQL" in html
    assert "unpkg" not in html
    assert "https://" not in html
    urls = asset_urls(html)
    assert urls, "the IDE page references no assets at all?"
    assert all(url.startswith(f"{STATIC_PREFIX}/") for url in urls), urls


def test_every_ide_asset_is_served_with_matching_integrity(client: TestClient) -> None:
    assets = _assets_with_integrity(_ide_page(client))

    # react, react-dom, js-cookie, graphiql (js + css), explorer plugin (js + css)
    assert len(assets) >= 7, assets
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


def test_graphql_endpoint_still_answers_queries(app_client: TestClient) -> None:
    response = app_client.post("/graphql", json={"query": "{ hello }"})

    assert response.status_code == 200
    assert response.json() == {"data": {"hello": "hi"}}


def test_pinned_npm_versions_match_strawberrys_cdn_versions() -> None:
    """A strawberry upgrade that bumps a CDN version must bump server/graphiql too."""
    package_json = assets_dir().parent / "package.json"
    pinned = json.loads(package_json.read_text(encoding="utf-8"))["dependencies"]
    cdn = dict(
        re.findall(
            r"https://unpkg\.com/((?:@[^/\"']+/)?[^/@\"']+)@([^/\"']+)/",
            get_graphql_ide_html("graphiql"),
        )
    )

    assert cdn, "strawberry's GraphiQL page no longer loads anything from unpkg"
    assert {name: pinned.get(name) for name in cdn} == cdn


def test_rewrite_maps_unpkg_urls_to_the_static_prefix() -> None:
    html = (
        '<script src="https://unpkg.com/react@18.2.0/umd/react.production.min.js" '
        'integrity="sha384-abc"></script>'
        '<link rel="stylesheet" href="https://unpkg.com/@graphiql/plugin-explorer@1.0.2/dist/'
        'style.css" />'
    )

    rewritten = offline_ide_html(html)

    assert asset_urls(rewritten) == [
        f"{STATIC_PREFIX}/react/umd/react.production.min.js",
        f"{STATIC_PREFIX}/@graphiql/plugin-explorer/dist/style.css",
    ]
    assert 'integrity="sha384-abc"' in rewritten


@pytest.mark.parametrize(
    "tag",
    [
        '<script src="https://cdn.jsdelivr.net/npm/graphiql@4/graphiql.min.js"></script>',
        '<link rel="stylesheet" href="//fonts.example.com/font.css">',
        '<script src="http://example.com/x.js"></script>',
    ],
)
def test_rewrite_fails_loudly_on_remaining_remote_assets(tag: str) -> None:
    with pytest.raises(RuntimeError, match="still loads assets from the internet"):
        offline_ide_html(f"<html><head>{tag}</head></html>")


def test_missing_assets_answer_404_instead_of_crashing(tmp_path: Path) -> None:
    app = Starlette(routes=[Mount(STATIC_PREFIX, app=ide_static_app(tmp_path / "missing"))])

    with TestClient(app) as test_client:
        response = test_client.get(f"{STATIC_PREFIX}/react/umd/react.production.min.js")

    assert response.status_code == 404
