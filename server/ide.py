"""Serve inkgraph's GraphiQL page and its assets without any CDN.

Strawberry's stock page loads React, ReactDOM, GraphiQL and the explorer plugin from
``https://unpkg.com/``, says "Strawberry GraphiQL", opens on a generic welcome comment, copies
the query into the address bar and, with its controlled editor, drops keystrokes while typing.
inkgraph serves its own page, ``server/graphiql/index.html``, instead:

* ``server/graphiql/package.json`` + ``package-lock.json`` pin the npm packages whose files the
  page loads; ``make install`` runs ``npm ci --prefix server/graphiql --ignore-scripts
  --no-audit --no-fund``, which puts them in ``server/graphiql/node_modules`` (git-ignored).
* :func:`ide_static_app` serves that directory; the app mounts it at :data:`STATIC_PREFIX`.
* :func:`ide_html` returns the page, checked once: a page whose ``src``/``href`` points
  off-site would render blank on an offline machine, so it raises instead of being served.

The page's Subresource Integrity (``integrity="sha384-..."``) attributes pin the exact files of
the lockfile: the browser refuses an asset that drifted (tests/test_ide.py checks the hashes
against the installed files).
"""

from __future__ import annotations

import functools
import os
import pathlib
from html.parser import HTMLParser
from urllib.parse import urlsplit

import anyio.to_thread
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

__all__ = [
    "STATIC_PREFIX",
    "asset_urls",
    "assets_dir",
    "assets_installed",
    "check_offline",
    "ide_html",
    "ide_static_app",
]

STATIC_PREFIX = "/graphiql-static"

_URL_ATTRIBUTES = frozenset({"src", "href"})
_PAGE = pathlib.Path(__file__).resolve().parent / "graphiql" / "index.html"


def assets_dir() -> pathlib.Path:
    """The directory holding the npm-installed IDE assets (``server/graphiql/node_modules``)."""
    return _PAGE.parent / "node_modules"


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


def check_offline(html: str) -> str:
    """Return ``html`` unchanged if every ``src``/``href`` of it is served by this server.

    Raises ``RuntimeError`` naming the off-site URLs otherwise: such a page renders blank on an
    offline machine, so it must fail loudly (in the tests) instead of being shipped.
    """
    remote = [f"<{tag}> {url}" for tag, url in _tagged_urls(html) if _is_remote(url)]
    if remote:
        raise RuntimeError(
            "The GraphQL IDE page loads assets from the internet: "
            f"{', '.join(remote)}. Serve them from {STATIC_PREFIX} instead "
            "(pin them in server/graphiql/package.json and its lockfile)."
        )
    return html


@functools.cache
def ide_html() -> str:
    """The GraphiQL page (``server/graphiql/index.html``), checked by :func:`check_offline`."""
    return check_offline(_PAGE.read_text(encoding="utf-8"))


def _local_asset_paths(html: str) -> list[str]:
    """Paths, relative to :func:`assets_dir`, of the assets an offline page references."""
    prefix = STATIC_PREFIX + "/"
    return [
        urlsplit(url).path.removeprefix(prefix)
        for url in asset_urls(html)
        if urlsplit(url).path.startswith(prefix)
    ]


def assets_installed() -> bool:
    """Whether every asset the GraphiQL page needs is present under :func:`assets_dir`.

    ``False`` means ``make install`` (``npm ci --prefix server/graphiql ...``) has not been run.
    """
    root = assets_dir()
    paths = _local_asset_paths(ide_html())
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
