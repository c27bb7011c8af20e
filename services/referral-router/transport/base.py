"""The transport contract: Kafka's semantics, whatever carries the records.

The router is written against these types only. Two implementations honour them and are
held to it by one conformance suite (tests/transport): the embedded SQLite transport
(``in_process``) and Apache Kafka (``kafka``). What callers may rely on:

- A record's partition is ``partition_for(key, partitions)`` (Kafka's murmur2), and
  records with the same key keep their publish order.
- ``publish``/``publish_many`` return only once the records are durably stored (acks=all,
  or an fsynced SQLite commit) and give each record's (topic, partition, offset).
- Delivery is at least once. A consumer group divides a topic's partitions among its live
  members; after a member leaves (or crashes) its partitions restart at the group's last
  committed offset, so uncommitted records may be delivered again, committed ones never.
- Headers are an ordered tuple of (name, bytes) pairs, duplicates allowed, byte-exact.
- A record's timestamp is when it reached the transport (Kafka's LogAppendTime, set on
  every topic ``ensure_topics`` creates; the embedded log's append time), never a time
  the producer chose: ``appended_at`` says so. Receivers judge signing keys by it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = [
    "CommitFailedError",
    "Consumer",
    "DeliveryTimeoutError",
    "Headers",
    "Message",
    "Position",
    "Record",
    "TopicPartition",
    "Transport",
    "TransportError",
    "UnknownTopicError",
]

Headers = tuple[tuple[str, bytes], ...]
TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Record:
    """One stored record as a consumer sees it."""

    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: Headers = ()
    timestamp_ms: int = 0
    #: True when `timestamp_ms` is the transport's own append time (not the producer's).
    appended_at: bool = False

    @property
    def next_offset(self) -> int:
        """What to commit once this record is processed (Kafka commits the *next* offset)."""
        return self.offset + 1


@dataclass(frozen=True, slots=True)
class Message:
    """One record to publish; the key decides the partition."""

    topic: str
    key: bytes
    value: bytes
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class Position:
    """Where a published record was stored: the acknowledgement."""

    topic: str
    partition: int
    offset: int


class TransportError(Exception):
    """Base of the errors a transport raises."""


class UnknownTopicError(TransportError):
    """Publishing to a topic that was never created (create topics explicitly)."""


class DeliveryTimeoutError(TransportError):
    """Not acknowledged within the delivery timeout; the record may still arrive later.

    Publishing again is safe for the bus: receivers deduplicate by event id.
    """


class CommitFailedError(TransportError):
    """The group rebalanced and this member no longer owns a partition it tried to commit.

    Nothing was committed; the records will be delivered again to the partition's new
    owner. Drop work in flight for those partitions and poll again.
    """


@runtime_checkable
class Consumer(Protocol):
    """A member of one consumer group, subscribed to fixed topics."""

    group_id: str

    async def start(self) -> None:
        """Join the group; partitions are assigned now or during the first polls."""
        ...

    async def poll(self, max_records: int = 500, timeout_ms: int = 1000) -> list[Record]:
        """Up to ``max_records`` records from assigned partitions, in offset order per
        partition; waits up to ``timeout_ms`` for any, else returns an empty list."""
        ...

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Store the group's next offset per partition; raises ``CommitFailedError``."""
        ...

    def assignment(self) -> frozenset[TopicPartition]:
        """Partitions this member owns as of its last poll (or start)."""
        ...

    async def lag(self) -> int:
        """Records on the subscribed topics beyond the group's committed offsets, over
        every partition (owned by this member or not): the group's backlog."""
        ...

    async def stop(self) -> None:
        """Leave the group without committing: uncommitted records go to the next owner."""
        ...


@runtime_checkable
class Transport(Protocol):
    """Publishes records and hands out consumer group members. An implementation that
    subclasses it inherits `publish` (one record, as a batch of one)."""

    async def ensure_topics(self, names: Iterable[str], partitions: int) -> None:
        """Create missing topics with ``partitions`` partitions, timestamped on append;
        existing ones are kept as they are."""
        ...

    async def publish(
        self, topic: str, key: bytes, value: bytes, headers: Headers = ()
    ) -> Position:
        """Store one record; returns once it is durably acknowledged."""
        (position,) = await self.publish_many([Message(topic, key, value, tuple(headers))])
        return position

    async def publish_many(self, messages: Sequence[Message]) -> list[Position]:
        """Store a batch (in order per key); returns once all are durably acknowledged."""
        ...

    def consumer(self, group_id: str, topics: Sequence[str]) -> Consumer:
        """A new, not yet started member of ``group_id`` subscribed to ``topics``."""
        ...

    async def delete_before(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Delete each partition's records before the given offset (Kafka DeleteRecords).

        A node calls it for its inbox once it has stored and committed records: the bus
        keeps nothing it has delivered, so case-key grants that rode beside envelopes
        do not outlive their delivery (erasure by key destruction depends on it)."""
        ...

    async def close(self) -> None:
        """Release connections; consumers should be stopped first."""
        ...
