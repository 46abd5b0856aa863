"""HTTP limits (API.md "HTTP limits", "Browsers and CSRF"), against a real `inkgraph serve` on
a free loopback port: what a hostile or careless client sees on the wire.

The limits are measured on a SQLite server started once for the module with short deadlines
(the defaults are 10 s, 30 s and 5 s; the code paths are the same), so the slowloris cases take
seconds, not minutes. The limits sit in front of the database and do not depend on the backend.
"""

import contextlib
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn

from server.app import create_app
from server.cli import main
from server.httplimits import raise_open_files_limit
from server.settings import Settings
from tests.test_cli import INKGRAPH, environment, free_port, ok

HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 3.0
KEEPALIVE_TIMEOUT = 1.0
MAX_CONNECTIONS = 20
MAX_BODY = 1_048_576
MAX_HEADER = 16_384
# How late a cut-off may come on this shared 2-core machine.
SLACK = 2.0

TYPENAME = {"query": "{ __typename }"}
JSON = {"content-type": "application/json", "accept": "application/json"}


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        return sock

    def rss_mib(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        kib = re.search(r"VmRSS:\s+(\d+) kB", status)
        assert kib is not None
        return int(kib.group(1)) / 1024


@contextlib.contextmanager
def serving(cwd: Path, *args: str, startup: float = 90, **env: str) -> Iterator[Server]:
    ok(cwd, "migrate")
    port = free_port()
    log = cwd / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*INKGRAPH, "serve", "--port", str(port), *args],
            cwd=cwd,
            env=environment(**env),
            stdout=out,
            stderr=out,
        )
        try:
            server = Server(process, port, log)
            wait_until_up(server, startup)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def wait_until_up(server: Server, seconds: float = 90) -> None:
    # Generous: start-up imports take seconds when other sessions load the machine.
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"inkgraph serve exited:\n{server.log.read_text()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{server.base}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    pytest.fail(f"inkgraph serve did not answer within {seconds:g} s:\n{server.log.read_text()}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serving(
        tmp_path_factory.mktemp("http_limits"),
        HTTP_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
        HTTP_BODY_TIMEOUT=str(BODY_TIMEOUT),
        HTTP_KEEPALIVE_TIMEOUT=str(KEEPALIVE_TIMEOUT),
        HTTP_MAX_CONNECTIONS=str(MAX_CONNECTIONS),
        TOKEN_TTL="60",  # plain seconds, as the README documents
    ) as running:
        yield running
        # Nothing a client did above is an application error: no traceback in the log.
        log = running.log.read_text()
        assert "Traceback" not in log, log
        assert "Exception in ASGI application" not in log, log


def read_until_closed(sock: socket.socket, timeout: float = 15.0) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(timeout)
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def seconds_until_closed(sock: socket.socket, drip: bytes = b"", every: float = 0.5) -> float:
    """Send `drip` one byte at a time every `every` seconds until the server closes; the time
    from now until it did."""
    start = time.monotonic()
    sock.settimeout(every)
    for byte in [drip[i : i + 1] for i in range(len(drip))] or [b""] * 60:
        with contextlib.suppress(TimeoutError):
            if sock.recv(65536) == b"":
                return time.monotonic() - start
        try:
            if byte:
                sock.sendall(byte)
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - start
        if time.monotonic() - start > 30:
            break
    pytest.fail("the server kept the connection open for 30 s")


def status_line(raw: bytes) -> bytes:
    return raw.split(b"\r\n", 1)[0]


# ---------------------------------------------------------------------------- request body


def test_a_60_mb_body_is_refused_quickly_with_flat_memory(server: Server) -> None:
    with httpx.Client(base_url=server.base, timeout=30) as client:
        assert client.post("/graphql", json=TYPENAME).status_code == 200  # warm
        before = server.rss_mib()

        def chunks() -> Iterator[bytes]:
            for _ in range(60):
                yield b" " * (1 << 20)

        for content in (b" " * (60 << 20), chunks()):  # Content-Length, then chunked
            start = time.monotonic()
            response = client.post("/graphql", content=content, headers=JSON)
            assert response.status_code == 413, response.text
            assert response.headers["connection"] == "close"
            assert time.monotonic() - start < 5
        grown = server.rss_mib() - before
    assert grown < 10, f"the server grew by {grown:.1f} MiB"


def test_a_large_content_length_is_answered_before_the_body_is_sent(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(
            b"POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n" % (MAX_BODY + 1)
        )
        raw = read_until_closed(sock, timeout=5)
    assert status_line(raw) == b"HTTP/1.1 413 Request Entity Too Large"


def test_a_body_at_the_limit_is_read(server: Server) -> None:
    document = b'{"query": "{ __typename }"}'
    body = document + b" " * (MAX_BODY - len(document))
    response = httpx.post(f"{server.base}/graphql", content=body, headers=JSON, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"__typename": "Query"}}


# ---------------------------------------------------------------------------- header block


def test_64_kib_of_headers_get_431(server: Server) -> None:
    response = httpx.get(f"{server.base}/healthz", headers={"x-big": "a" * 65536}, timeout=10)
    assert response.status_code == 431
    assert response.headers["connection"] == "close"


def test_a_header_block_growing_past_the_limit_in_pieces_gets_431(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        for i in range(MAX_HEADER // 1024 + 4):  # never ends the head
            try:
                sock.sendall(b"x-h%d: %s\r\n" % (i, b"a" * 1024))
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.01)
        raw = read_until_closed(sock, timeout=5)
    assert status_line(raw) == b"HTTP/1.1 431 Request Header Fields Too Large"


def test_headers_under_the_limit_are_served(server: Server) -> None:
    response = httpx.get(f"{server.base}/healthz", headers={"x-big": "a" * 8000}, timeout=10)
    assert response.status_code == 200


# ---------------------------------------------------------------------------- deadlines


def test_a_header_trickler_is_cut_off_at_the_head_deadline(server: Server) -> None:
    with server.connect() as sock:
        elapsed = seconds_until_closed(sock, b"GET /healthz HTTP/1.1\r\nhost: x\r\n" * 4)
    assert HEADER_TIMEOUT - 0.3 <= elapsed <= HEADER_TIMEOUT + SLACK


def test_a_silent_connection_is_closed_at_the_head_deadline(server: Server) -> None:
    with server.connect() as sock:
        elapsed = seconds_until_closed(sock)
    assert HEADER_TIMEOUT - 0.3 <= elapsed <= HEADER_TIMEOUT + SLACK


def test_a_body_trickler_is_cut_off_at_the_body_deadline(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(
            b"POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: 1000\r\n\r\n"
        )
        elapsed = seconds_until_closed(sock, b'{"query": "{ __typename }"' + b" " * 100)
    assert BODY_TIMEOUT - 0.3 <= elapsed <= BODY_TIMEOUT + SLACK


def test_tricklers_do_not_slow_other_clients(server: Server) -> None:
    tricklers = [server.connect() for _ in range(10)]
    try:
        for sock in tricklers:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        start = time.monotonic()
        response = httpx.post(f"{server.base}/graphql", json=TYPENAME, timeout=10)
        assert response.json() == {"data": {"__typename": "Query"}}
        assert time.monotonic() - start < 1
    finally:
        for sock in tricklers:
            sock.close()


def test_an_idle_keep_alive_connection_is_closed(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        sock.settimeout(5)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
        elapsed = seconds_until_closed(sock)
    assert KEEPALIVE_TIMEOUT - 0.3 <= elapsed <= KEEPALIVE_TIMEOUT + SLACK


def test_a_kept_alive_connection_serves_the_next_request(server: Server) -> None:
    with httpx.Client(base_url=server.base, timeout=10) as client:
        first = client.post("/graphql", json=TYPENAME)
        second = client.post("/graphql", json=TYPENAME)
    assert first.status_code == second.status_code == 200
    assert first.extensions["network_stream"] is second.extensions["network_stream"]


# ---------------------------------------------------------------------------- connections


def test_connections_beyond_the_cap_get_503_with_retry_after(server: Server) -> None:
    silent = [server.connect() for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.3)  # let the server accept them all
        with server.connect() as extra:
            raw = read_until_closed(extra, timeout=5)
        assert status_line(raw) == b"HTTP/1.1 503 Service Unavailable"
        assert b"\r\nretry-after: 5\r\n" in raw.lower()
        refused = httpx.get(f"{server.base}/healthz", timeout=5)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "5"
    finally:
        for sock in silent:
            sock.close()
    time.sleep(0.3)
    assert httpx.get(f"{server.base}/healthz", timeout=5).status_code == 200


# ---------------------------------------------------------------------------- methods, settings


def test_a_mutation_over_get_is_405_with_allow(server: Server) -> None:
    response = httpx.get(
        f"{server.base}/graphql",
        params={"query": "mutation { logout }"},
        headers={"accept": "application/json"},
        timeout=10,
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


def test_other_methods_are_405_with_allow(server: Server) -> None:
    response = httpx.put(f"{server.base}/graphql", json=TYPENAME, timeout=10)
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) >= {"GET", "POST"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("60", timedelta(seconds=60)),
        ("2592000", timedelta(days=30)),
        (" 90.5 ", timedelta(seconds=90.5)),
        ("P7D", timedelta(days=7)),
        ("PT15M", timedelta(minutes=15)),
    ],
)
def test_token_ttl_takes_seconds_or_iso_8601(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: timedelta
) -> None:
    monkeypatch.setenv("TOKEN_TTL", raw)
    assert Settings().token_ttl == expected


@pytest.mark.parametrize("raw", ["soon", "thirty days", "P-1D"])
def test_a_bad_token_ttl_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], raw: str
) -> None:
    monkeypatch.setenv("TOKEN_TTL", raw)

    def served(*args: object, **kwargs: object) -> None:
        # An accepted value would otherwise serve forever inside the test process.
        pytest.fail(f"TOKEN_TTL={raw!r} was accepted and the server started")

    monkeypatch.setattr(uvicorn, "run", served)
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--port", str(free_port())])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("inkgraph: error: invalid setting: TOKEN_TTL: ")
    assert err.count("\n") == 1


def test_the_limits_have_the_contract_defaults() -> None:
    settings = Settings()
    assert settings.http_max_body_bytes == 1_048_576
    assert settings.http_max_header_bytes == 16_384
    assert settings.http_header_timeout == 10
    assert settings.http_body_timeout == 30
    assert settings.http_keepalive_timeout == 5
    assert settings.http_max_connections == 1000
    assert settings.cors_origins() == []


# ---------------------------------------------------------------------------- CORS


async def cors_client(tmp_path: Path, origins: str = "") -> httpx.AsyncClient:
    database = f"sqlite:///{tmp_path / 'cors.db'}"
    settings = Settings(database_url=database, cors_allow_origins=origins)
    app = create_app(settings)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://inkgraph")


PREFLIGHT = {
    "origin": "https://app.example",
    "access-control-request-method": "POST",
    "access-control-request-headers": "authorization, content-type",
}


async def test_no_cors_headers_by_default(tmp_path: Path) -> None:
    async with await cors_client(tmp_path) as client:
        response = await client.post(
            "/graphql", json=TYPENAME, headers={"origin": "https://app.example"}
        )
        preflight = await client.options("/graphql", headers=PREFLIGHT)
    assert response.status_code == 200
    for answer in (response, preflight):
        assert not [h for h in answer.headers if h.startswith("access-control-")], answer.headers


async def test_cors_for_the_listed_origins_only(tmp_path: Path) -> None:
    origins = "https://app.example, https://admin.example"
    async with await cors_client(tmp_path, origins) as client:
        preflight = await client.options("/graphql", headers=PREFLIGHT)
        allowed = await client.post(
            "/graphql", json=TYPENAME, headers={"origin": "https://admin.example"}
        )
        other = await client.post(
            "/graphql", json=TYPENAME, headers={"origin": "https://evil.example"}
        )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert allowed.headers["access-control-allow-origin"] == "https://admin.example"
    assert "access-control-allow-origin" not in other.headers
    for answer in (preflight, allowed):
        assert "access-control-allow-credentials" not in answer.headers


# ---------------------------------------------------------------------------- workers


def test_several_workers_share_the_port_and_the_limits(tmp_path: Path) -> None:
    # Two children import the whole app at once: slow when other work loads the machine.
    with serving(tmp_path, "--workers", "2", startup=240) as server:
        with httpx.Client(base_url=server.base, timeout=10) as client:
            for _ in range(4):
                response = client.post("/graphql", json={"query": "{ users { totalCount } }"})
                assert response.json() == {"data": {"users": {"totalCount": 0}}}
            big = client.get("/healthz", headers={"x-big": "a" * (MAX_HEADER + 1)})
            assert big.status_code == 431  # the children got the protocol and its limits
        deadline = time.monotonic() + 30
        while len(set(re.findall(r"Started server process \[(\d+)\]", server.log.read_text()))) < 2:
            assert time.monotonic() < deadline, server.log.read_text()
            time.sleep(0.2)


def test_workers_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--workers", "0"])
    assert exited.value.code == 2
    assert "--workers: must be at least 1" in capsys.readouterr().err


def test_the_open_files_limit_is_raised_for_the_connection_cap() -> None:
    import resource  # Unix, like the server this test starts

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        now, _ = raise_open_files_limit(300)
        assert now == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        assert now == (300 if hard == resource.RLIM_INFINITY else min(300, hard))
        assert raise_open_files_limit(100)[0] == now  # never lowered
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
