"""The tail of the node's log in memory, and wake-ups when it grows.

Every transaction of the store tells the feed what it committed (`Committed`); the feed
keeps the most recent entries, in log order, for the readers that follow the log: the
outbox relay and the log API (`GET /v1/log` and `/v1/log/stream`, which a notifier
follows). They read from memory what the store has just written, and sleep until the
next commit instead of polling. A reader further behind than the feed remembers reads
the store, as it would after a restart; so does every reader when a transaction the feed
could not see (another process on the same store) leaves a gap.

An entry is kept as its readers need it, encoded once when it is committed: the log
API's item as JSON, and for an envelope this node sent, the record the relay publishes
(`Encoded`). Bytes, not nested dictionaries: thousands of entries held cost the garbage
collector almost nothing to walk. A forwarding this node made (R10) is an entry too, for
the relay only: the log API lists envelopes.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from contracts.kafka_binding import Encoded
from contracts.sealing import Forwarding
from referral_router.store.case_store import (
    SENT,
    CaseStore,
    Committed,
    CommittedEnvelope,
)

#: The direction of a forwarding's entry: neither sent nor received, but passed on.
FORWARDED = "forwarded"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An envelope this node sent, ready for the relay: its record (shared by every
    recipient's copy) and, per recipient with a wrap, the case key id it is wrapped to."""

    encoded: Encoded
    event_id: str
    sender: str
    event_type: str
    case: str
    recipients: tuple[str, ...]
    kids: tuple[tuple[str, str], ...]

    def kid(self, recipient: str) -> str | None:
        return next((k for r, k in self.kids if r == recipient), None)


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One entry of the log, as its readers take it."""

    position: int
    direction: str
    event_id: str
    #: The log API's item, JSON without its closing brace (the item's trace context,
    #: known only later, is added when it is served); empty for a forwarding, which the
    #: log API does not list.
    item: bytes
    outgoing: Outgoing | None = None
    #: A forwarding this node made (R10): the relay publishes it to its one recipient.
    forwarding: Forwarding | None = None

    @classmethod
    def of(cls, e: CommittedEnvelope) -> FeedEntry:
        d = e.data
        item = {
            "position": e.position,
            "direction": e.direction,
            "event_id": d["id"],
            "type": d["type"],
            "case": d["subject"],
            "time": d["time"],
            "sender": d["sender"],
            "recipients": d["recipients"],
            "operational": d["operational"],
            "deadlines": d["deadlines"],
        }
        text = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
        outgoing = None
        if e.direction == SENT:
            wraps = d["sealed"].get("wraps", {})
            outgoing = Outgoing(
                Encoded.of(d),
                str(d["id"]),
                str(d["sender"]),
                str(d["type"]),
                str(d["subject"]),
                tuple(d["recipients"]),
                tuple((r, str(w.get("kid"))) for r, w in wraps.items()),
            )
        return cls(e.position, e.direction, str(d["id"]), text[:-1].encode(), outgoing)

    @classmethod
    def forwarded(cls, position: int, fw: Forwarding) -> FeedEntry:
        return cls(position, FORWARDED, str(fw.id), b"", forwarding=fw)


@dataclass(eq=False)
class LogFeed:
    """The last `keep` envelopes of the log (store positions `first`..`last`)."""

    store: CaseStore
    keep: int = 2048
    #: The entries held, in log order, and their positions (for bisection).
    _entries: list[FeedEntry] = field(init=False, default_factory=list)
    _positions: list[int] = field(init=False, default_factory=list)
    #: Positions held completely: every envelope in (`_from`, `_to`] is in `_entries`.
    _from: int = field(init=False, default=0)
    _to: int = field(init=False, default=0)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    _waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = field(
        init=False, default_factory=set
    )
    _listeners: list[Callable[[], None]] = field(init=False, default_factory=list)
    #: Set when the node stops: waiting readers are answered at once (a long poll must
    #: not hold a stopping server for the rest of its wait).
    closed: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self._from = self._to = self.store.max_position()
        self.store.on_commit(self._committed)

    @property
    def last(self) -> int:
        """The last position the feed knows is committed."""
        return self._to

    def _committed(self, c: Committed) -> None:
        """A store listener (runs on the committing thread)."""
        entries = [FeedEntry.of(e) for e in c.envelopes]
        if c.forwardings:
            entries += [
                FeedEntry.forwarded(f.position, Forwarding.model_validate(f.data))
                for f in c.forwardings
            ]
            entries.sort(key=lambda e: e.position)
        with self._lock:
            if c.last <= self._to:  # told late: the feed already starts after it
                return
            if c.first != self._to + 1:  # a gap: hold only what follows it
                self._entries.clear()
                self._positions.clear()
                self._from = c.first - 1
            self._entries.extend(entries)
            self._positions.extend(e.position for e in entries)
            if len(self._entries) > 2 * self.keep:  # trim now and then, not per commit
                drop = len(self._entries) - self.keep
                self._from = self._positions[drop - 1]
                del self._entries[:drop], self._positions[:drop]
            self._to = max(self._to, c.last)
            waiters = list(self._waiters)
            listeners = list(self._listeners)
        _wake(waiters)
        for listener in listeners:
            listener()

    def close(self) -> None:
        """Answer every waiting reader now, and every later one at once."""
        with self._lock:
            self.closed = True
            waiters = list(self._waiters)
        _wake(waiters)

    def on_growth(self, listener: Callable[[], None]) -> None:
        """Call `listener` (on the committing thread) after every commit."""
        with self._lock:
            self._listeners.append(listener)

    def after(self, position: int, limit: int) -> tuple[list[FeedEntry], int] | None:
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
            while not self.closed and self._to <= position and (left := deadline - loop.time()) > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter[1].wait(), left)
                waiter[1].clear()
            return self._to > position
        finally:
            with self._lock:
                self._waiters.discard(waiter)


def _wake(waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]) -> None:
    for loop, event in waiters:
        with contextlib.suppress(RuntimeError):  # that loop is closed
            loop.call_soon_threadsafe(event.set)
