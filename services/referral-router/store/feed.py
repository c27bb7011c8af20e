"""The tail of the node's log in memory, and wake-ups when it grows.

Every transaction of the store tells the feed what it committed (`Committed`); the feed
keeps the most recent envelopes, in log order, for the readers that follow the log: the
outbox relay and the log API (`GET /v1/log`, which a notifier long-polls). They read
from memory what the store has just written, and sleep until the next commit instead of
polling. A reader further behind than the feed remembers reads the store, as it would
after a restart; so does every reader when a transaction the feed could not see (another
process on the same store) leaves a gap.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from referral_router.store.case_store import CaseStore, Committed, CommittedEnvelope


@dataclass(eq=False)
class LogFeed:
    """The last `keep` envelopes of the log (store positions `first`..`last`)."""

    store: CaseStore
    keep: int = 4096
    #: The envelopes held, in log order, and their positions (for bisection).
    _entries: list[CommittedEnvelope] = field(init=False, default_factory=list)
    _positions: list[int] = field(init=False, default_factory=list)
    #: Positions held completely: every envelope in (`_from`, `_to`] is in `_entries`.
    _from: int = field(init=False, default=0)
    _to: int = field(init=False, default=0)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    _waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = field(
        init=False, default_factory=set
    )
    _listeners: list[Callable[[], None]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self._from = self._to = self.store.max_position()
        self.store.on_commit(self._committed)

    @property
    def last(self) -> int:
        """The last position the feed knows is committed."""
        return self._to

    def _committed(self, c: Committed) -> None:
        """A store listener (runs on the committing thread)."""
        with self._lock:
            if c.last <= self._to:  # told late: the feed already starts after it
                return
            if c.first != self._to + 1:  # a gap: hold only what follows it
                self._entries.clear()
                self._positions.clear()
                self._from = c.first - 1
            self._entries.extend(c.envelopes)
            self._positions.extend(e.position for e in c.envelopes)
            if len(self._entries) > 2 * self.keep:  # trim now and then, not per commit
                drop = len(self._entries) - self.keep
                self._from = self._positions[drop - 1]
                del self._entries[:drop], self._positions[:drop]
            self._to = max(self._to, c.last)
            waiters = list(self._waiters)
            listeners = list(self._listeners)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed
                loop.call_soon_threadsafe(event.set)
        for listener in listeners:
            listener()

    def on_growth(self, listener: Callable[[], None]) -> None:
        """Call `listener` (on the committing thread) after every commit."""
        with self._lock:
            self._listeners.append(listener)

    def after(self, position: int, limit: int) -> tuple[list[CommittedEnvelope], int] | None:
        """Envelopes after `position` (at most `limit`) and the position a reader has
        then seen everything up to; None when `position` is older than the feed holds
        (read the store instead)."""
        with self._lock:
            if position < self._from:
                return None
            if position >= self._to:
                return [], position
            start = bisect.bisect_right(self._positions, position)
            out = self._entries[start : start + limit]
            if len(out) == limit:
                return out, out[-1].position
            return out, self._to

    async def wait_beyond(self, position: int, timeout: float) -> bool:
        """Wait (up to `timeout` s) until something after `position` is committed."""
        loop = asyncio.get_running_loop()
        waiter = (loop, asyncio.Event())
        with self._lock:
            self._waiters.add(waiter)
        try:
            deadline = loop.time() + timeout
            while self._to <= position and (left := deadline - loop.time()) > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter[1].wait(), left)
                waiter[1].clear()
            return self._to > position
        finally:
            with self._lock:
                self._waiters.discard(waiter)
