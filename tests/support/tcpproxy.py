"""A loopback TCP proxy that can fake a database outage without touching the shared server.

    proxy = TCPProxy("127.0.0.1", 5432)
    await proxy.start()                 # listens on 127.0.0.1:<proxy.port>
    proxy.refuse()                      # stop listening: new connections get ECONNREFUSED
    proxy.drop()                        # reset every open connection (a crash, a restart)
    proxy.blackhole()                   # accept, then forward nothing (a dead host, a partition)
    proxy.cut_at(b"COMMIT", "before")   # reset the connection that sends COMMIT, before it
                                        # reaches the server ("reply": after the server got it,
                                        # before its answer; "after_reply": once answered)
    await proxy.restore()               # back to a plain pass-through

Everything the clients send is kept per connection in `proxy.sent` (a list of bytearrays, one
per connection, in order), so a test can read what went over the wire (`pg_messages`,
`mysql_commands` below) — statements the SQLAlchemy event hooks never see, such as a driver's
own BEGIN, ROLLBACK or ping.
"""

import asyncio
import contextlib
import socket
import struct
from collections.abc import Iterator


class TCPProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.sent: list[bytearray] = []
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._cut: tuple[bytes, str, bytes] | None = None
        self.cuts = 0  # connections reset by `cut_at`

    def cut_at(self, pattern: bytes, when: str, reply: bytes = b"") -> None:
        """Reset the next connection whose client sends `pattern` (once), at `when`; for
        "reply" and "after_reply", at the first answer that contains `reply` (PostgreSQL
        answers a statement's Parse before its Execute: b"COMMIT\0" is the Execute's answer)."""
        assert when in ("before", "reply", "after_reply")
        self._cut = (pattern, when, reply)

    async def start(self) -> None:
        """Listen on a free loopback port (kept across `refuse()`/`restore()`)."""
        await self._listen()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def refuse(self) -> None:
        """Close the listening socket and every connection: the server is down."""
        if self._server is not None:
            self._server.close()
            self._server = None
        self.drop()

    def drop(self) -> None:
        """Reset every open connection, both sides; new connections still get through."""
        for writer in list(self._writers):
            _reset(writer)
        self._writers.clear()

    def blackhole(self) -> None:
        """Keep every connection open but forward nothing, either way, until `restore()`."""
        self._flowing.clear()

    def forget(self) -> None:
        """Empty `sent` in place: what open connections send from now on is recorded anew."""
        for record in self.sent:
            record.clear()

    async def restore(self) -> None:
        self._flowing.set()
        if self._server is None:
            await self._listen()

    async def close(self) -> None:
        self.refuse()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self._flowing.wait()
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except (OSError, asyncio.CancelledError):
            _reset(writer)
            return
        self._writers.add(up_writer)
        record = bytearray()
        self.sent.append(record)
        link = _Link(writer, up_writer)
        for task in (
            asyncio.create_task(self._pump(reader, up_writer, link, record)),
            asyncio.create_task(self._pump(up_reader, writer, link, None)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        link: "_Link",
        record: bytearray | None,
    ) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()
                if writer not in self._writers:
                    break
                answer = record is None and link.pending is not None and link.reply in data
                if record is not None:  # client → server
                    if self._cut is not None and self._cut[0] in data:
                        link.pending, link.reply = self._cut[1], self._cut[2]
                        self._cut = None
                        if link.pending == "before":
                            break
                    record += data
                elif answer and link.pending == "reply":
                    break
                writer.write(data)
                await writer.drain()
                if answer and link.pending == "after_reply":
                    break
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            if link.pending is not None and not link.closed:
                self.cuts += 1
                link.closed = True
                _reset(link.client)
                _reset(link.server)
            _reset(writer)
            self._writers.discard(writer)


class _Link:
    """One proxied connection: both ends, and a cut waiting to happen."""

    def __init__(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> None:
        self.client = client
        self.server = server
        self.pending: str | None = None
        self.reply = b""
        self.closed = False


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST, as a crashed server's kernel would, not a polite FIN."""
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError):
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# ----------------------------------------------------------------------- reading the wire


def pg_messages(data: bytes) -> Iterator[tuple[str, bytes]]:
    """The frontend messages of one PostgreSQL connection as (type, payload): "Q" simple query,
    "P" parse, "E" execute, … (the start-up packet and an SSL request are skipped)."""
    at = 0
    while at + 8 <= len(data):  # untyped prelude: SSL/GSS requests, then the start-up message
        length, code = struct.unpack_from("!ii", data, at)
        at += length
        if code not in (80877103, 80877104):
            break
    while at + 5 <= len(data):
        kind = chr(data[at])
        (length,) = struct.unpack_from("!i", data, at + 1)
        yield kind, bytes(data[at + 5 : at + 1 + length])
        at += 1 + length


def pg_statements(data: bytes) -> list[str]:
    """What one PostgreSQL connection asked the server to run: each simple query ("Q") and
    each execution ("E") of a parsed statement, as SQL text, in order."""
    names: dict[bytes, str] = {}
    portals: dict[bytes, str] = {}
    run: list[str] = []
    for kind, payload in pg_messages(data):
        if kind == "Q":
            run.append(payload.rstrip(b"\0").decode())
        elif kind == "P":
            name, _, rest = payload.partition(b"\0")
            names[name] = rest.partition(b"\0")[0].decode()
        elif kind == "B":
            portal, _, rest = payload.partition(b"\0")
            portals[portal] = names.get(rest.partition(b"\0")[0], "?")
        elif kind == "E":
            run.append(portals.get(payload.partition(b"\0")[0], "?"))
    return run


def mysql_commands(data: bytes) -> list[str]:
    """What one MySQL/MariaDB connection asked the server to run: each COM_QUERY's text, and
    "<ping>" for COM_PING (the handshake and authentication packets are skipped)."""
    run: list[str] = []
    at = 0
    while at + 4 <= len(data):
        length = int.from_bytes(data[at : at + 3], "little")
        sequence = data[at + 3]
        payload = bytes(data[at + 4 : at + 4 + length])
        at += 4 + length
        if sequence != 0 or not payload:
            continue  # handshake response, auth switch: not commands
        if payload[0] == 0x03:
            run.append(payload[1:].decode(errors="replace"))
        elif payload[0] == 0x0E:
            run.append("<ping>")
    return run
