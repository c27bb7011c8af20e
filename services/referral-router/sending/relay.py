"""The outbox relay: the sending half of the node's conversation with the transport.

The store is the outbox. The relay publishes every envelope this node sent, in store
order, one record per recipient to that recipient's inbox topic, and every forwarding it
made (R10) to its one recipient's, and only then records its position durably. A crash
in between republishes: at-least-once on the wire, made exactly-once in effect by each
receiver's tracking records and event-id check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from asyncio import FIRST_COMPLETED
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from contracts.kafka_binding import encode_forwarding
from contracts.sealing import Forwarding
from referral_router import telemetry
from referral_router.store.case_store import (
    SENT,
    CaseStore,
    CommittedEnvelope,
    Cursor,
    LoggedForwarding,
)
from referral_router.store.feed import FeedEntry, LogFeed
from referral_router.store.thread import StoreThread
from referral_router.transport.base import Message, Transport
from referral_router.transport.topics import inbox_topic

log = logging.getLogger("nrm.relay")

RELAY_TRACKING = "outbox-relay"

T = TypeVar("T")

#: Positions passed over without publishing after which the relay writes its position
#: anyway, so a restart does not re-read a long stretch of received envelopes.
_KEEP_EVERY = 2000

#: Fault injection for the kill -9 drill (tests/faults): when set to "1", the process
#: exits with status 9 right after the broker acknowledged a batch, before the relay
#: records its position, as a crash at the worst moment would.
CRASH_AFTER_PUBLISH_ENV = "NRM_FAULT_EXIT_AFTER_PUBLISH"


class Granting(Protocol):
    """Sealing's part in sending: a case-key grant for a recipient's first event."""

    def grant_of(self, case: str, recipient: str, kid: str | None) -> bytes | None: ...

    def grant_for_forwarding(self, forwarding: Forwarding) -> bytes | None: ...


@dataclass(eq=False)
class OutboxRelay:
    """Publishes this node's sent envelopes to their recipients' inboxes, and its
    forwardings (R10) to each one's recipient.

    New envelopes come from the log feed (memory) when it holds them and from the store
    otherwise (after a restart, or when it fell far behind); store reads and the position
    write run on the store thread. Each envelope is encoded once, whatever its number of
    recipients: only the grant and the trace header differ between its records. A
    forwarding comes the same two ways, so each is published once, in log order."""

    store: CaseStore
    transport: Transport
    country_of: Callable[[str], str]
    granting: Granting
    batch_size: int = 500
    on_published: Callable[[int], None] | None = None
    feed: LogFeed | None = None
    thread: StoreThread | None = None
    cursor: Cursor = field(init=False)
    #: The last log position published (or passed over: nothing to send).
    position: int = field(init=False)
    #: Least time between two writes of the position while publishing.
    keep_interval: float = 0.5
    #: The position last written to the store, and when.
    _kept: int = field(init=False)
    _kept_at: float = field(init=False, default=0.0)
    #: Published since the position was last written.
    _unkept: bool = field(init=False, default=False)
    #: Topics created already: no admin round trip per batch.
    _topics: set[str] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self.cursor = self.store.cursor(RELAY_TRACKING)
        self.position = self._kept = self.cursor.position

    def pending(self) -> int:
        """How far the relay lags behind the store (a metric: relay lag)."""
        last = self.feed.last if self.feed is not None else self.store.max_position()
        return max(0, last - self.position)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self.thread is not None:
            return await self.thread.run(fn, *args)
        return await asyncio.to_thread(fn, *args)

    async def publish_pending(self) -> int:
        """Publish one batch; returns how many envelopes it carried."""
        page = self.feed.after(self.position, self.batch_size) if self.feed else None
        if page is None:
            page = await self._run(self._from_store)
        entries, end = page
        if end <= self.position:
            return 0
        messages: list[Message] = []
        sent = 0
        spans = telemetry.PublishBatch()
        for entry in entries:
            if entry.forwarding is not None:
                fw = entry.forwarding
                grant = self.granting.grant_for_forwarding(fw)
                topic = inbox_topic(self.country_of(fw.recipient), fw.recipient)
                messages.append(Message(topic, *encode_forwarding(fw, grant)))
                sent += 1
                continue
            out = entry.outgoing
            if out is None:
                continue
            sent += 1
            for r in out.recipients:
                topic = inbox_topic(self.country_of(r), r)
                trace = spans.start_for(out.event_id, out.sender, out.event_type, r, topic)
                grant = self.granting.grant_of(out.case, r, out.kid(r))
                key, value, headers = out.encoded.record(grant, trace)
                messages.append(Message(topic, key, value, headers))
        if messages:
            with spans:
                new = {m.topic for m in messages} - self._topics
                if new:
                    await self.transport.ensure_topics(new, partitions=4)
                    self._topics |= new
                await self.transport.publish_many(messages)
            if os.environ.get(CRASH_AFTER_PUBLISH_ENV) == "1":
                os._exit(9)
            self._unkept = True
        self.position = end
        now = asyncio.get_running_loop().time()
        if (messages and now - self._kept_at >= self.keep_interval) or (
            end - self._kept >= _KEEP_EVERY
        ):
            await self.keep_position()
        return self._published(sent)

    async def keep_position(self) -> None:
        """Write the position published so far (at most every `keep_interval` while
        busy, and when the relay falls idle). Published but not yet kept means
        published again after a crash: receivers recognise each envelope's id and
        apply it once, so this trades a few republished records for a transaction."""
        end = self.position
        if end != self._kept:
            await self._run(self.cursor.advance, end)
            self._kept = end
        self._unkept = False
        self._kept_at = asyncio.get_running_loop().time()

    def _published(self, sent: int) -> int:
        if self.on_published:
            self.on_published(sent)
        return sent

    def _from_store(self) -> tuple[list[FeedEntry], int]:
        page = self.store.outbox_page(self.position, self.batch_size)
        if page is None:
            return [], self.position
        entries = []
        for e in page.entries:
            if isinstance(e, LoggedForwarding):
                entries.append(FeedEntry.forwarded(e.position, e.forwarding))
            elif e.direction == SENT:
                data = e.envelope.model_dump(mode="json")
                entries.append(FeedEntry.of(CommittedEnvelope(e.position, e.direction, data)))
        return entries, page.end

    async def run(self, stop: asyncio.Event) -> None:
        """Publish as the log grows (woken by each commit), until `stop`; a failure is
        logged and retried after a pause, never fatal.

        The position is written once the log has been quiet for `keep_interval` after a
        publication, not after each one: at a light load that is one transaction per lull
        instead of one per event. Passing over what this node received is never a reason
        to write (a receiving node would otherwise commit twice per delivery), except
        every `_KEEP_EVERY` positions."""
        grown = asyncio.Event()
        loop = asyncio.get_running_loop()
        if self.feed is not None:
            self.feed.on_growth(lambda: loop.call_soon_threadsafe(grown.set))
        while not stop.is_set():
            try:
                while await self.publish_pending():
                    pass
            except Exception:
                log.exception("relay failed; retrying")
                await _pause(stop, 0.5)
                continue
            grown.clear()
            if self.pending():
                continue
            lull = self._unkept
            waits = [asyncio.ensure_future(grown.wait()), asyncio.ensure_future(stop.wait())]
            # Without a feed, or for commits it could not see, look again now and then.
            done, _ = await asyncio.wait(
                waits, timeout=self.keep_interval if lull else 1.0, return_when=FIRST_COMPLETED
            )
            for w in waits:
                w.cancel()
            if lull and not done:  # quiet since the last publication: write the position
                with contextlib.suppress(Exception):
                    await self.keep_position()
        with contextlib.suppress(Exception):  # stopping: what was published is kept
            await self.keep_position()


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
