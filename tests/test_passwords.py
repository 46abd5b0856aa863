"""Password hashing stays off the event loop and within its worker budget (no database)."""

import asyncio
import threading
import time

from server.auth import Passwords, default_hash_workers


class RecordingHasher:
    """Stands in for pwdlib: records which thread hashes and how many hashes overlap."""

    def __init__(self) -> None:
        self.threads: set[int] = set()
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def _work(self) -> None:
        with self._lock:
            self.threads.add(threading.get_ident())
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        time.sleep(0.02)  # a blocking call, like argon2's C code
        with self._lock:
            self.running -= 1

    def hash(self, password: str) -> str:
        self._work()
        return f"hashed:{password}"

    def verify(self, password: str, password_hash: str) -> bool:
        self._work()
        return password_hash == f"hashed:{password}"


async def test_a_burst_of_logins_runs_in_threads_within_the_budget() -> None:
    passwords = Passwords(workers=2)
    hasher = RecordingHasher()
    passwords._hasher = hasher  # type: ignore[assignment]
    ticks = 0

    async def heartbeat() -> None:  # must keep running while 12 hashes block their threads
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    beat = asyncio.create_task(heartbeat())
    results = await asyncio.gather(
        *(passwords.verify("pw", "hashed:pw") for _ in range(6)),
        *(passwords.verify("pw", "hashed:other") for _ in range(6)),
    )
    beat.cancel()
    assert results == [True] * 6 + [False] * 6
    assert threading.get_ident() not in hasher.threads
    assert hasher.most_at_once == 2
    assert ticks >= 10  # 12 x 20 ms / 2 workers = 120 ms during which the loop kept ticking


async def test_unknown_user_costs_a_hash_too() -> None:
    passwords = Passwords(workers=1)
    hasher = RecordingHasher()
    passwords._hasher = hasher  # type: ignore[assignment]
    assert await passwords.verify("pw", None) is False
    assert hasher.threads  # the dummy hash was computed and verified, not skipped


def test_one_core_is_left_to_the_event_loop() -> None:
    assert default_hash_workers() >= 1
    assert Passwords().workers == default_hash_workers()
