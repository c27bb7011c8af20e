"""The outbox relay: the sending half of the node's conversation with the transport.

The store is the outbox. The relay publishes every envelope this node sent, in store
order, one record per recipient to that recipient's inbox topic, and every forwarding it
made (R10) to its one recipient's, and only then records its position durably. A crash
in between republishes: at-least-once on the wire, made exactly-once in effect by each
receiver's tracking records and event-id check.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from contracts.envelope import Envelope
from contracts.kafka_binding import encode, encode_forwarding
from contracts.sealing import Forwarding
from referral_router import telemetry
from referral_router.store.case_store import SENT, CaseStore, Cursor, LoggedForwarding
from referral_router.transport.base import Message, Transport
from referral_router.transport.topics import inbox_topic

log = logging.getLogger("nrm.relay")

RELAY_TRACKING = "outbox-relay"

#: Fault injection for the kill -9 drill (tests/faults): when set to "1", the process
#: exits with status 9 right after the broker acknowledged a batch, before the relay
#: records its position, as a crash at the worst moment would.
CRASH_AFTER_PUBLISH_ENV = "NRM_FAULT_EXIT_AFTER_PUBLISH"


class Granting(Protocol):
    """Sealing's part in sending: a case-key grant for a recipient's first event."""

    def grant_for(self, envelope: Envelope, recipient: str) -> bytes | None: ...

    def grant_for_forwarding(self, forwarding: Forwarding) -> bytes | None: ...


@dataclass(eq=False)
class OutboxRelay:
    """Publishes this node's sent envelopes to their recipients' inboxes."""

    store: CaseStore
    transport: Transport
    country_of: Callable[[str], str]
    granting: Granting
    batch_size: int = 500
    on_published: Callable[[int], None] | None = None
    cursor: Cursor = field(init=False)
    #: Topics created already: no admin round trip per batch.
    _topics: set[str] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self.cursor = self.store.cursor(RELAY_TRACKING)

    def pending(self) -> int:
        """How far the relay lags behind the store (a metric: relay lag)."""
        return max(0, self.store.max_position() - self.cursor.position)

    async def publish_pending(self) -> int:
        """Publish one batch; returns how many envelopes it carried."""
        page = await asyncio.to_thread(
            self.store.outbox_page, self.cursor.position, self.batch_size
        )
        if page is None:
            return 0
        messages: list[Message] = []
        sent = 0
        spans = telemetry.PublishBatch()
        for entry in page.entries:
            if isinstance(entry, LoggedForwarding):
                fw = entry.forwarding
                grant = self.granting.grant_for_forwarding(fw)
                topic = inbox_topic(self.country_of(fw.recipient), fw.recipient)
                messages.append(Message(topic, *encode_forwarding(fw, grant)))
                sent += 1
                continue
            if entry.direction != SENT:
                continue
            sent += 1
            env = entry.envelope
            for r in env.recipients:
                topic = inbox_topic(self.country_of(r), r)
                trace = spans.start(env, r, topic)
                key, value, headers = encode(env, self.granting.grant_for(env, r), trace)
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
        await asyncio.to_thread(self.cursor.advance, page.end)
        if self.on_published:
            self.on_published(sent)
        return sent
