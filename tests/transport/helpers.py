"""Small async helpers shared by the conformance tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from referral_router.transport.base import Consumer, Record, TopicPartition


async def drain(
    consumer: Consumer,
    until: Callable[[list[Record]], bool],
    *,
    timeout: float = 30.0,
    max_records: int = 100,
    commit: bool = False,
) -> list[Record]:
    """Poll until ``until(received)`` holds; fails the test after ``timeout`` seconds."""
    received: list[Record] = []
    deadline = time.monotonic() + timeout
    while not until(received):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s with {len(received)} records")
        batch = await consumer.poll(max_records=max_records, timeout_ms=200)
        received.extend(batch)
        if commit and batch:
            await consumer.commit(next_offsets(batch))
    return received


def next_offsets(records: Sequence[Record]) -> dict[TopicPartition, int]:
    """What to commit after processing ``records``: per partition, last offset + 1."""
    offsets: dict[TopicPartition, int] = {}
    for r in records:
        tp = (r.topic, r.partition)
        offsets[tp] = max(offsets.get(tp, 0), r.next_offset)
    return offsets


async def settle_assignment(
    consumers: Sequence[Consumer], partitions: set[TopicPartition], timeout: float = 30.0
) -> None:
    """Poll every member (topics empty) until they own disjoint shares of ``partitions``
    and each owns at least one: a finished rebalance, before any record is produced."""
    deadline = time.monotonic() + timeout
    while True:
        await asyncio.gather(*(c.poll(max_records=1, timeout_ms=100) for c in consumers))
        owned = [c.assignment() for c in consumers]
        union = set().union(*owned)
        disjoint = sum(len(o) for o in owned) == len(union)
        if union == partitions and disjoint and all(owned):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"group did not settle: {owned}")
