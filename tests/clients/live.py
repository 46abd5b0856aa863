"""A real `inkgraph serve` on a free 127.0.0.1 port over freshly seeded demo data, and helpers
to run the client proofs (node programs, the README's examples) against it.

The proofs talk to the server as its users do: over TCP, through the CLI's own `migrate`,
`seed` and `serve`, never through the in-process app.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.backends import in_ci

ROOT = Path(__file__).resolve().parents[2]
JS_DIR = Path(__file__).resolve().parent / "js"
DOCUMENTS_DIR = Path(__file__).resolve().parent / "documents"
CHROMIUM = Path("/usr/bin/chromium")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _inkgraph(args: Sequence[str], env: dict[str, str], cwd: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "server", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"inkgraph {' '.join(args)}: {done.stdout}{done.stderr}"


def _env(database: Path) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}"}
    env.pop("HOST", None)
    env.pop("PORT", None)
    return env


def seeded_database(workdir: Path) -> Path:
    """A SQLite file in `workdir`, migrated and seeded by the CLI (`inkgraph migrate`, `seed`)."""
    database = workdir / "demo.db"
    _inkgraph(["migrate"], _env(database), workdir)
    _inkgraph(["seed"], _env(database), workdir)
    return database


@contextmanager
def live_inkgraph(workdir: Path, template: Path) -> Iterator[str]:
    """`inkgraph serve` on a copy of the seeded `template` database; yields the base URL.

    Each proof gets its own copy, so what one proof writes never changes another's answers.
    """
    database = workdir / "demo.db"
    shutil.copyfile(template, database)
    port = _free_port()
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "server", "serve", "--port", str(port)],
            env=_env(database),
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, process, log_path)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(base: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    log = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
    pytest.fail(f"inkgraph serve did not become ready at {base}:\n{log}", pytrace=False)


def require_js_deps() -> None:
    """Fail (never skip) when the proofs' npm packages are missing: `make install` puts them."""
    if not (JS_DIR / "node_modules" / ".package-lock.json").is_file():
        pytest.fail(
            "the client proofs' npm packages are missing: run `make install` "
            "(npm ci --prefix tests/clients/js)",
            pytrace=False,
        )


def require_chromium() -> None:
    """Debian's chromium drives the GraphiQL proof; `.ci/run` installs it when missing."""
    if not CHROMIUM.is_file():
        reason = f"{CHROMIUM} is missing: `apt-get install -y chromium`"
        if in_ci():
            pytest.fail(f"CI is set and {reason}", pytrace=False)
        pytest.skip(reason)


def run_node(args: Sequence[str], *, timeout: float = 180) -> dict[str, Any]:
    """Run `node ARGS` in tests/clients/js; its last stdout line is its JSON report, returned
    with the exit status added as `exitCode` (the caller asserts it, after the details)."""
    node = shutil.which("node")
    assert node, "node is not on PATH"
    done = subprocess.run(
        [node, *args],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    report: dict[str, Any] = {}
    if lines:
        try:
            report = json.loads(lines[-1])
        except json.JSONDecodeError:
            report = {}
    assert report, (
        f"node {' '.join(args)} exited {done.returncode} without a JSON report\n"
        f"stdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-4000:]}"
    )
    report["exitCode"] = done.returncode
    return report


def readme_graphql_blocks() -> list[str]:
    """The ```graphql blocks of README.md, in order."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```graphql\n(.*?)```", readme, re.DOTALL)


def one_line(document: str) -> str:
    """`document` without `#` comment lines, its whitespace collapsed to single spaces."""
    lines = [line for line in document.splitlines() if not line.lstrip().startswith("#")]
    return " ".join(" ".join(lines).split())
