"""`DatabaseHealth`: whether the database answers, as requests find out, logged per transition.

An outage costs the log two lines, not one per failed request:

    database unreachable client=… operation=… request=… reason=the connection broke
    database reachable again client=… operation=… request=… failed=812 after=14.2s

`failed` counts the requests answered SERVICE_UNAVAILABLE in between. Requests report what they
saw when they end (`observe`), `/readyz` reports its probe too (`failure(count=False)` /
`success`), so an idle server still notices both transitions. A statement timeout is no
outage: it gets its own WARNING line (`statement timed out … timeout=8s`), folded per client.
"""

import logging
import time
from collections.abc import Callable

from loaders import Database
from server.events import EventLog, Network, Who, events


class DatabaseHealth:
    def __init__(
        self,
        statement_timeout: float = 0,
        trusted: tuple[Network, ...] = (),
        log: EventLog = events,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.statement_timeout = statement_timeout
        self.trusted = trusted  # proxies whose X-Forwarded-For names the client (TRUSTED_PROXIES)
        self.log = log
        self.clock = clock
        self.down_since: float | None = None
        self.failed = 0

    @property
    def up(self) -> bool:
        return self.down_since is None

    def has_news(self, db: Database) -> bool:
        """Whether `observe` would count or log anything for a request that used `db` (when
        not, the caller need not work out whom a line would name)."""
        return db.outage is not None or db.timed_out or (db.reached and self.down_since is not None)

    def observe(self, db: Database, who: Who) -> None:
        """A request ended: count it as failed if it met an outage, or note that the database
        answered it."""
        if db.outage is not None:
            self.failure(db.outage.reason, who)
        elif db.reached:
            self.success(who)
        if db.timed_out:
            self.log.emit_for(
                who,
                logging.WARNING,
                "statement timed out",
                timeout=f"{self.statement_timeout:g}s",
            )

    def failure(self, reason: str, who: Who, *, count: bool = True) -> None:
        """The database did not answer `who` (`count=False`: a probe, not a failed request)."""
        if self.down_since is None:
            self.down_since = self.clock()
            self.failed = 0
            self.log.emit_for(
                who,
                logging.ERROR,
                "database unreachable",
                fold=False,
                reason=reason,
            )
        if count:
            self.failed += 1

    def success(self, who: Who) -> None:
        if self.down_since is None:
            return
        after = self.clock() - self.down_since
        self.down_since = None
        self.log.emit_for(
            who,
            logging.INFO,
            "database reachable again",
            fold=False,
            failed=self.failed,
            after=f"{after:.1f}s",
        )
