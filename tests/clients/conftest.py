"""Fixtures for the client proofs: one seeded demo database per session, one live server per
test module (each on its own copy of that database)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clients.live import live_inkgraph, seeded_database


@pytest.fixture(scope="session")
def demo_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return seeded_database(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def inkgraph_url(demo_database: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL (http://127.0.0.1:PORT) of a real `inkgraph serve` over the demo data."""
    with live_inkgraph(tmp_path_factory.mktemp("live"), demo_database) as url:
        yield url
