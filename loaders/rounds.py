"""Rounds: every batch a request asks for while it waits goes to the database together.

aiodataloader dispatches a loader's batch one event-loop tick after its first key arrives. That
is enough for siblings resolved in the same tick, but two places of a query that need the same
rows (`Post.user` and `Comment.author` are both users by id) get their keys at moments that
depend on when their own parents' statements came back, so whether they share a statement
would depend on I/O timing.

A `Rounds` makes the moment of dispatch a function of the query alone. Loaders do not
dispatch themselves; they tell the round that they have keys. The round dispatches everything
pending once the request has gone quiet: no statement of this request is running or queued,
and `QUIET_TICKS` consecutive event-loop ticks passed without a new key. Resolvers between two
statements only compute (they build objects and call `load`), and the number of ticks that
takes depends on the code path, never on the number of rows or on other requests, so each
place of a query falls into the same round every time. `Loaders` starts fresh loaders for each
round, so a statement's keys never depend on what an earlier round happened to cache.

Private API used here (aiodataloader is pinned to 0.4.3 exactly in pyproject.toml;
tests/test_private_api.py fails when any of this moves):

- `DataLoader.do_resolve_reject(key, future)`: overridden. `DataLoader.load` calls it for
  every key it does not have cached; aiodataloader's own version schedules the dispatch for the
  next tick, ours hands the loader to the round instead.
- `DataLoader._queue`, the list of pending `Loader(key, future)` tuples (`Loader` is the
  module's namedtuple): appended to, as aiodataloader's own `do_resolve_reject` does.
- `aiodataloader.dispatch_queue(loader)`, the module function that takes the queue and runs
  the batch function: called when the round starts.

graphql/dataloader (the JavaScript original) has a public seam for exactly this job, the
`batchScheduleFn` option; aiodataloader has none, so this module emulates it through the
three internals above. If `load` stopped calling `do_resolve_reject`, keys would silently
fall back to next-tick dispatch and only statement counts would notice.
"""

import asyncio
from collections.abc import Callable
from typing import Any

from aiodataloader import DataLoader, Loader, dispatch_queue

# Ticks without new keys that count as "quiet". graphql-core needs two between a
# page's rows arriving and the resolvers of their fields calling `load`; the margin is cheap
# (one tick is one pass of the event loop) and a too-small value would only split a round.
QUIET_TICKS = 8


class Rounds:
    """Dispatches a request's pending loaders together when the request is quiet.

    `busy()` says whether a statement of the request is running or waiting for the
    connection, `idle()` waits until none is (see `Database`), and `on_dispatch()` is called
    as each round starts.
    """

    def __init__(
        self, busy: Callable[[], bool], idle: Callable[[], Any], on_dispatch: Callable[[], None]
    ) -> None:
        self._busy = busy
        self._idle = idle
        self._on_dispatch = on_dispatch
        self._pending: list[DataLoader[Any, Any]] = []
        self._keys_seen = 0
        self._task: asyncio.Task[None] | None = None

    def add(self, loader: DataLoader[Any, Any], *, first: bool) -> None:
        """`loader` got a key (its `first` since its last dispatch): it goes with the next round."""
        self._keys_seen += 1
        if first:
            self._pending.append(loader)
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        try:
            while self._pending:
                await self._quiet()
                pending, self._pending = self._pending, []
                self._on_dispatch()
                for loader in pending:
                    dispatch_queue(loader)
        finally:
            self._task = None

    async def _quiet(self) -> None:
        quiet, seen = 0, self._keys_seen
        while quiet < QUIET_TICKS:
            if self._busy():
                await self._idle()
                quiet = 0
            else:
                await asyncio.sleep(0)
                quiet = quiet + 1 if seen == self._keys_seen else 0
            seen = self._keys_seen


class RoundLoader(DataLoader[Any, Any]):
    """A DataLoader whose batches are dispatched by a `Rounds` instead of the next tick."""

    def __init__(self, batch_load_fn: Callable[..., Any], rounds: Rounds) -> None:
        super().__init__(batch_load_fn=batch_load_fn)
        self._rounds = rounds

    def do_resolve_reject(self, key: Any, future: "asyncio.Future[Any]") -> None:
        self._queue.append(Loader(key=key, future=future))
        self._rounds.add(self, first=len(self._queue) == 1)
