"""The embedded default transport: Kafka's semantics in one process and one SQLite file.

``one command runs a whole bus on one machine``: no broker, yet the same contract as
Kafka (partitions by murmur2 key hash, offsets, consumer groups, at-least-once with
committed offsets), so code and tests move between the two unchanged. Durable: records
and commits are fsynced to the SQLite file before calls return. One process owns a file.

Usable from one asyncio loop plus worker threads (each may run its own loop): storage
calls run in threads behind locks, and wake-ups cross loops with call_soon_threadsafe.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence

from .base import CommitFailedError, Message, Position, Record, TopicPartition, Transport
from .groups import GroupCoordinator
from .sqlite_log import SqliteLog


class _Wakeups:
    """Wakes pollers waiting on any loop when records arrive or a group rebalances."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def register(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Event]:
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.add(waiter)
        return waiter

    def unregister(self, waiter: tuple[asyncio.AbstractEventLoop, asyncio.Event]) -> None:
        with self._lock:
            self._waiters.discard(waiter)

    def notify_all(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed
                loop.call_soon_threadsafe(event.set)


class InProcessTransport(Transport):
    """Transport over a ``SqliteLog``; ``path=":memory:"`` for throwaway use."""

    def __init__(self, path: str | os.PathLike[str] = ":memory:") -> None:
        self._log = SqliteLog(path)
        self._groups = GroupCoordinator(self._log.partitions)
        self._wakeups = _Wakeups()

    async def ensure_topics(self, names: Iterable[str], partitions: int) -> None:
        created = await asyncio.to_thread(self._log.create_topics, list(names), partitions)
        if created:
            self._groups.topics_changed(created)
            self._wakeups.notify_all()

    async def publish_many(self, messages: Sequence[Message]) -> list[Position]:
        if not messages:
            return []
        positions = await asyncio.to_thread(self._log.append, list(messages))
        self._wakeups.notify_all()
        return positions

    async def delete_before(self, offsets: Mapping[TopicPartition, int]) -> None:
        if offsets:
            await asyncio.to_thread(self._log.delete_before, dict(offsets))

    def consumer(self, group_id: str, topics: Sequence[str]) -> InProcessConsumer:
        return InProcessConsumer(self, group_id, tuple(topics))

    async def close(self) -> None:
        await asyncio.to_thread(self._log.close)


class InProcessConsumer:
    """One group member. Like Kafka's consumer: one task uses it at a time."""

    def __init__(self, transport: InProcessTransport, group_id: str, topics: tuple[str, ...]):
        self.group_id = group_id
        self._t = transport
        self._topics = topics
        self._member: str | None = None
        self._owned: frozenset[TopicPartition] = frozenset()
        self._positions: dict[TopicPartition, int] = {}
        self._turn = 0

    async def start(self) -> None:
        if self._member is None:
            self._member = self._t._groups.join(self.group_id, self._topics)
            await asyncio.to_thread(self._sync, self._member)
            self._t._wakeups.notify_all()  # other members pick up the rebalance

    async def poll(self, max_records: int = 500, timeout_ms: int = 1000) -> list[Record]:
        if self._member is None:
            raise RuntimeError("consumer not started")
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            waiter = self._t._wakeups.register()
            try:
                records, advanced = await asyncio.to_thread(self._fetch, max_records)
                for tp, position in advanced.items():
                    if tp in self._positions:  # still owned: no rebalance in between
                        self._positions[tp] = position
                remaining = deadline - time.monotonic()
                if records or remaining <= 0:
                    return records
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter[1].wait(), remaining)
            finally:
                self._t._wakeups.unregister(waiter)

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if self._member is None:
            raise CommitFailedError("consumer not started")
        if offsets:
            await asyncio.to_thread(
                self._t._groups.commit, self.group_id, self._member, dict(offsets),
                self._t._log.commit,
            )  # fmt: skip

    def assignment(self) -> frozenset[TopicPartition]:
        return self._owned

    async def lag(self) -> int:
        return await asyncio.to_thread(self._lag)

    def _lag(self) -> int:
        log, behind = self._t._log, 0
        for topic in self._topics:
            for partition in range(log.partitions(topic) or 0):
                tp = (topic, partition)
                behind += max(0, log.end_offset(tp) - (log.committed(self.group_id, tp) or 0))
        return behind

    async def stop(self) -> None:
        member, self._member = self._member, None
        if member is not None:
            self._t._groups.leave(self.group_id, member)
            self._owned, self._positions = frozenset(), {}
            self._t._wakeups.notify_all()

    def _sync(self, member: str) -> tuple[frozenset[TopicPartition], dict[TopicPartition, int]]:
        """Adopt the current assignment; moved partitions restart at the commit point."""
        owned, resets = self._t._groups.sync(self.group_id, member)
        log = self._t._log
        positions = {tp: o for tp, o in self._positions.items() if tp in owned}
        for tp in resets | (owned - positions.keys()):
            committed = log.committed(self.group_id, tp)
            positions[tp] = 0 if committed is None else committed  # "earliest"
        self._positions, self._owned = positions, owned
        return owned, positions

    def _fetch(self, max_records: int) -> tuple[list[Record], dict[TopicPartition, int]]:
        """Sync, then read round-robin across owned partitions (fair under backlog).

        Returns the records and the positions they advance to, without applying them:
        ``poll`` applies them once the records are handed over, so a poll cancelled
        mid-read (or finishing in its thread after ``stop()``) skips nothing.
        """
        member = self._member
        if member is None:
            return [], {}
        try:
            owned, positions = self._sync(member)
        except CommitFailedError:  # left the group meanwhile
            return [], {}
        order = sorted(owned)
        if not order:
            return [], {}
        self._turn = (self._turn + 1) % len(order)
        records: list[Record] = []
        advanced: dict[TopicPartition, int] = {}
        for tp in order[self._turn :] + order[: self._turn]:
            batch = self._t._log.read(tp, positions[tp], max_records - len(records))
            if batch:
                records.extend(batch)
                advanced[tp] = batch[-1].offset + 1
            if len(records) >= max_records:
                break
        return records, advanced
