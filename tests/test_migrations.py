"""Migrations: an existing database upgrades in place, and plain SQL inserts keep working."""

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from server.store.migrate import downgrade, upgrade
from tests.support.backends import fresh_database


async def test_a_0001_database_with_data_upgrades_to_accounts(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    async with fresh_database(backend, tmp_path_factory.mktemp("upgrade")) as engine:
        await downgrade(engine, "0001")
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO users (username) VALUES ('Veteran')"))
        await upgrade(engine)
        async with engine.begin() as connection:
            row = (
                await connection.execute(
                    text(
                        "SELECT username, username_key, password_hash, is_editor, created_at "
                        "FROM users"
                    )
                )
            ).one()
            # A plain insert after the upgrade still needs only the contract's columns.
            await connection.execute(text("INSERT INTO users (username) VALUES ('Newbie')"))
        assert row.username == "Veteran"
        assert row.username_key == "veteran"
        assert row.password_hash is None
        assert not row.is_editor
        assert row.created_at is not None
        await upgrade(engine)  # idempotent


def test_create_editor_grants_the_right_from_the_command_line(tmp_path: Path) -> None:
    def inkgraph(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "server", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert inkgraph("migrate").returncode == 0
    assert inkgraph("seed").returncode == 0
    granted = inkgraph("create-editor", "GRACE")
    assert granted.returncode == 0, granted.stderr
    missing = inkgraph("create-editor", "nobody")
    assert missing.returncode == 1
    assert "no user is named 'nobody'" in missing.stderr
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sqlite3; c = sqlite3.connect('inkgraph.db'); "
            "print(sorted(c.execute('SELECT username FROM users WHERE is_editor').fetchall()))",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert check.stdout.strip() == "[('ada',), ('grace',)]"
