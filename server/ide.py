"""Serve the GraphiQL IDE without any CDN.

Strawberry's built-in GraphiQL page loads React, ReactDOM, js-cookie, GraphiQL and the
GraphiQL explorer plugin from ``https://unpkg.com/``. On an offline (air-gapped) machine, or
behind a proxy that blocks the CDN, that page never gets past "Loading...". So inkgraph serves
those exact files itself:

* ``server/graphiql/package.json`` + ``package-lock.json`` pin the npm packages whose tarballs
  contain files byte-identical to the CDN ones; ``make install`` runs
  ``npm ci --prefix server/graphiql --ignore-scripts --no-audit --no-fund``, which puts them in
  ``server/graphiql/node_modules`` (git-ignored).
* :func:`ide_static_app` serves that directory; the app mounts it at :data:`STATIC_PREFIX`.
* :func:`offline_ide_html` rewrites strawberry's page so every
  ``https://unpkg.com/<pkg>@<version>/<path>`` becomes ``/graphiql-static/<pkg>/<path>``.

The page's Subresource Integrity (``integrity="sha384-..."``) attributes are kept: the files
are byte-identical, so the hashes still match, and the browser refuses an asset that drifted
(e.g. a strawberry upgrade that bumps a CDN version without the lockfile following). If a
strawberry upgrade adds an asset from another CDN, :func:`offline_ide_html` raises instead of
silently shipping a page that needs the internet.
"""

from __future__ import annotations

import os
import pathlib
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import anyio.to_thread
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp
from strawberry.http.ides import get_graphql_ide_html

__all__ = [
    "STATIC_PREFIX",
    "asset_urls",
    "assets_dir",
    "assets_installed",
    "ide_static_app",
    "offline_ide_html",
]

STATIC_PREFIX = "/graphiql-static"

# https://unpkg.com/<pkg>@<version>/<path>, where <pkg> may be scoped (@scope/name).
_UNPKG_URL = re.compile(
    r"https://unpkg\.com/"
    r"(?P<package>(?:@[A-Za-z0-9._~-]+/)?[A-Za-z0-9._~-]+)"
    r"@(?P<version>[^/\s\"'<>]+)"
    r"/(?P<path>[^\s\"'<>?#]+)"
)

_URL_ATTRIBUTES = frozenset({"src", "href"})


def assets_dir() -> pathlib.Path:
    """The directory holding the npm-installed IDE assets (``server/graphiql/node_modules``)."""
    return pathlib.Path(__file__).resolve().parent / "graphiql" / "node_modules"


class _UrlCollector(HTMLParser):
    """Collects ``(tag, url)`` for every ``src``/``href`` attribute of a page, in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.extend(
            (tag, value.strip()) for name, value in attrs if name in _URL_ATTRIBUTES and value
        )

    handle_startendtag = handle_starttag


def _tagged_urls(html: str) -> list[tuple[str, str]]:
    collector = _UrlCollector()
    collector.feed(html)
    collector.close()
    return [(tag, url) for tag, url in collector.found if not url.lower().startswith("data:")]


def asset_urls(html: str) -> list[str]:
    """Every ``src``/``href`` URL of ``html`` (``data:`` URLs excluded), in document order."""
    return [url for _, url in _tagged_urls(html)]


def _is_remote(url: str) -> bool:
    parts = urlsplit(url)
    return bool(parts.netloc) or parts.scheme.lower() in {"http", "https"}


def offline_ide_html(html: str) -> str:
    """Rewrite strawberry's IDE page to load its assets from :data:`STATIC_PREFIX`.

    Raises ``RuntimeError`` if any script/stylesheet/link URL still points off-site after the
    rewrite (e.g. a strawberry upgrade started loading a file from another CDN): that page
    would render blank on an offline machine, so it must fail loudly (in the tests) instead.
    """
    rewritten = _UNPKG_URL.sub(
        lambda match: f"{STATIC_PREFIX}/{match['package']}/{match['path']}", html
    )
    remote = [f"<{tag}> {url}" for tag, url in _tagged_urls(rewritten) if _is_remote(url)]
    if remote or "https://unpkg.com/" in rewritten:
        leftovers = remote or ["a https://unpkg.com/ URL"]
        raise RuntimeError(
            "The GraphQL IDE page still loads assets from the internet after rewriting it for "
            f"offline use: {', '.join(leftovers)}. The installed strawberry-graphql probably "
            "changed its GraphiQL page: update server/graphiql/package.json (and the lockfile) "
            "and server/ide.py so that every asset is served from "
            f"{STATIC_PREFIX}."
        )
    return rewritten


def _local_asset_paths(html: str) -> list[str]:
    """Paths, relative to :func:`assets_dir`, of the assets an offline page references."""
    prefix = STATIC_PREFIX + "/"
    return [
        urlsplit(url).path.removeprefix(prefix)
        for url in asset_urls(html)
        if urlsplit(url).path.startswith(prefix)
    ]


def assets_installed() -> bool:
    """Whether every asset strawberry's GraphiQL page needs is present under :func:`assets_dir`.

    ``False`` means ``make install`` (``npm ci --prefix server/graphiql ...``) has not been run.
    """
    root = assets_dir()
    paths = _local_asset_paths(offline_ide_html(get_graphql_ide_html("graphiql")))
    return bool(paths) and all((root / path).is_file() for path in paths)


class _AssetFiles(StaticFiles):
    """``StaticFiles`` that answers 404, not 500, while its directory does not exist.

    ``check_dir=False`` only skips Starlette's check at construction time: the first request
    would still raise "StaticFiles directory ... does not exist". Skipping that check when the
    directory is missing lets the lookup fail normally, i.e. with a 404.
    """

    async def check_config(self) -> None:
        if self.directory is None or await anyio.to_thread.run_sync(os.path.isdir, self.directory):
            await super().check_config()


def ide_static_app(directory: pathlib.Path | None = None) -> ASGIApp:
    """An ASGI app serving the IDE assets; mount it with ``Mount(STATIC_PREFIX, app=...)``.

    ``directory`` defaults to :func:`assets_dir`. The server starts even when the assets are
    not installed: requests for them then answer 404 (and the IDE page stays on "Loading...")
    until ``make install`` is run.
    """
    return _AssetFiles(directory=directory or assets_dir(), check_dir=False)
