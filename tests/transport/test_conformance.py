"""One contract, two transports: each test runs on the embedded transport and on Kafka.

What the router relies on (see referral_router.transport.base): murmur2 partitioning,
order per key, every record delivered, headers byte-exact, committed offsets respected
across consumer restarts and group rebalances (duplicates only for uncommitted records).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict

from referral_router.transport.base import (
    CommitFailedError,
    Consumer,
    Message,
    Record,
    Transport,
)
from referral_router.transport.partitioning import partition_for

from .conftest import Names
from .helpers import drain, next_offsets, settle_assignment


def _case_messages(topic: str, cases: int, per_case: int) -> list[Message]:
    """Events of several cases interleaved, as a busy node would publish them."""
    return [
        Message(topic, f"case-{c}".encode(), f"case-{c}:{seq}".encode())
        for seq in range(per_case)
        for c in range(cases)
    ]


async def test_partition_is_murmur2_of_key(transport: Transport, names: Names) -> None:
    topic = names.topic("partitioning")
    await transport.ensure_topics([topic], partitions=5)
    keys = [f"case-{i}".encode() for i in range(40)] + [b"", b"\x00\xff"]
    positions = await transport.publish_many([Message(topic, k, b"v") for k in keys])
    assert [p.partition for p in positions] == [partition_for(k, 5) for k in keys]
    single = await transport.publish(topic, b"case-7", b"again")
    assert single.partition == partition_for(b"case-7", 5)


async def test_ensure_topics_is_idempotent(transport: Transport, names: Names) -> None:
    topic = names.topic("idempotent")
    await transport.ensure_topics([topic, topic], partitions=2)
    await transport.ensure_topics([topic], partitions=2)
    position = await transport.publish(topic, b"k", b"v")
    assert position.offset == 0


async def test_every_record_delivered_in_order_per_key(
    transport: Transport, names: Names, members: list[Consumer]
) -> None:
    topic = names.topic("order")
    await transport.ensure_topics([topic], partitions=4)
    messages = _case_messages(topic, cases=12, per_case=25)
    acks = []
    for start in range(0, len(messages), 60):  # batches, plus single publishes
        acks += await transport.publish_many(messages[start : start + 50])
        for m in messages[start + 50 : start + 60]:
            acks.append(await transport.publish(m.topic, m.key, m.value))
    assert len(acks) == len(messages)
    by_partition = defaultdict(list)
    for ack in acks:
        by_partition[ack.partition].append(ack.offset)
    assert all(offs == list(range(len(offs))) for offs in by_partition.values())

    consumer = transport.consumer(names.group("order"), [topic])
    members.append(consumer)
    await consumer.start()
    received = await drain(consumer, lambda got: len(got) >= len(messages))

    assert sorted(r.value for r in received) == sorted(m.value for m in messages)
    seqs: dict[bytes, list[int]] = defaultdict(list)
    offsets: dict[int, list[int]] = defaultdict(list)
    for r in received:
        seqs[r.key].append(int(r.value.split(b":")[1]))
        offsets[r.partition].append(r.offset)
        assert r.partition == partition_for(r.key, 4)
    assert all(s == list(range(25)) for s in seqs.values())
    assert all(o == sorted(o) for o in offsets.values())


async def test_headers_and_bytes_preserved_exactly(
    transport: Transport, names: Names, members: list[Consumer]
) -> None:
    topic = names.topic("headers")
    await transport.ensure_topics([topic], partitions=1)
    headers = (
        ("ce_id", b"0b1e7c1a-6f0e-4e55-9c43-1f6d2c9e2a11"),
        ("ce_type", b"nrm.referral.requested.v1"),
        ("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ("binary", bytes(range(256))),
        ("empty", b""),
        ("dup", b"first"),
        ("dup", b"second"),
        ("ünïcode-näme", "wert ✓".encode()),
    )
    value = bytes(range(256)) * 40
    await transport.publish(topic, b"\x00key\xff", value, headers)
    await transport.publish(topic, b"k2", b"", ())

    consumer = transport.consumer(names.group("headers"), [topic])
    members.append(consumer)
    await consumer.start()
    first, second = await drain(consumer, lambda got: len(got) >= 2)
    assert (first.key, first.value, first.headers) == (b"\x00key\xff", value, headers)
    assert (second.key, second.value, second.headers) == (b"k2", b"", ())


async def test_timestamp_is_the_transports_append_time(
    transport: Transport, names: Names, members: list[Consumer]
) -> None:
    """Receivers judge signing keys by when a record reached the bus: the timestamp is
    the transport's append time, whatever the producer's clock says."""
    topic = names.topic("append-time")
    await transport.ensure_topics([topic], partitions=1)
    before = time.time_ns() // 1_000_000
    await transport.publish(topic, b"k", b"v")
    after = time.time_ns() // 1_000_000
    consumer = transport.consumer(names.group("append-time"), [topic])
    members.append(consumer)
    await consumer.start()
    (record,) = await drain(consumer, lambda got: len(got) >= 1)
    assert record.appended_at
    assert before - 1_000 <= record.timestamp_ms <= after + 1_000


async def test_restarted_consumer_resumes_at_committed_offset(
    transport: Transport, names: Names, members: list[Consumer]
) -> None:
    topic = names.topic("resume")
    await transport.ensure_topics([topic], partitions=1)
    await transport.publish_many([Message(topic, b"case-1", b"%d" % i) for i in range(40)])
    group = names.group("resume")

    first = transport.consumer(group, [topic])
    members.append(first)
    await first.start()
    got = await drain(first, lambda got: len(got) >= 40)
    await first.commit({(topic, 0): got[24].next_offset})  # processed 0..24
    await first.stop()  # "crash": 25..39 were read but never committed

    second = transport.consumer(group, [topic])
    members.append(second)
    await second.start()
    again = await drain(second, lambda got: len(got) >= 15)
    assert [r.offset for r in again] == list(range(25, 40))
    assert await second.poll(timeout_ms=300) == []
    await second.commit(next_offsets(again))
    await second.stop()

    other_group = transport.consumer(names.group("other"), [topic])
    members.append(other_group)
    await other_group.start()
    everything = await drain(other_group, lambda got: len(got) >= 40)
    assert [r.offset for r in everything] == list(range(40))  # groups are independent


async def test_stop_without_commit_redelivers_everything(
    transport: Transport, names: Names, members: list[Consumer]
) -> None:
    topic = names.topic("redeliver")
    await transport.ensure_topics([topic], partitions=3)
    await transport.publish_many(_case_messages(topic, cases=6, per_case=5))
    group = names.group("redeliver")
    first = transport.consumer(group, [topic])
    members.append(first)
    await first.start()
    seen = await drain(first, lambda got: len(got) >= 30)
    await first.stop()

    second = transport.consumer(group, [topic])
    members.append(second)
    await second.start()
    again = await drain(second, lambda got: len(got) >= 30)
    assert sorted((r.partition, r.offset) for r in again) == sorted(
        (r.partition, r.offset) for r in seen
    )


async def test_rebalance_when_member_leaves_loses_nothing(
    transport: Transport, names: Names, members: list[Consumer]
) -> None:
    """Two members share four partitions; B leaves mid-stream with a batch uncommitted.
    A takes over: every record arrives, the uncommitted batch comes again, and no record
    whose delivery was committed is delivered a second time.

    "Committed" means the commit completed with the member's assignment unchanged since
    the poll. A commit racing the rebalance can land after Kafka's consumer re-read the
    committed offsets for its new assignment (aiokafka resets every partition on
    rebalance), so those records legitimately come again: duplicates, never loss.
    """
    topic = names.topic("rebalance")
    partitions = 4
    await transport.ensure_topics([topic], partitions=partitions)
    group = names.group("rebalance")
    a, b = transport.consumer(group, [topic]), transport.consumer(group, [topic])
    members.extend([a, b])
    await a.start()
    await b.start()
    await settle_assignment([a, b], {(topic, p) for p in range(partitions)})

    batch_ids = itertools.count()
    deliveries: list[tuple[int, int, Record]] = []  # (sequence, batch id, record)
    committed: set[int] = set()
    seq = itertools.count()
    first_half = _case_messages(topic, cases=16, per_case=8)
    second_half = [Message(topic, m.key, m.value + b"-late") for m in first_half]
    total = len(first_half) + len(second_half)
    b_done = asyncio.Event()
    b_last_batch: list[Record] = []

    async def consume(member: Consumer, name: str) -> None:
        committed_batches = 0
        while True:
            owned_at_poll = member.assignment()
            batch = await member.poll(max_records=6, timeout_ms=200)
            if name == "b" and b_done.is_set():
                return
            batch_id = next(batch_ids)
            deliveries.extend((next(seq), batch_id, r) for r in batch)
            if name == "a" and len({(r.partition, r.offset) for _, _, r in deliveries}) >= total:
                return
            if not batch:
                continue
            await asyncio.sleep(0.02)  # "processing"
            if name == "b" and committed_batches >= 3:
                b_last_batch.extend(batch)
                await member.stop()  # leaves without committing this batch
                b_done.set()
                return
            try:
                await member.commit(next_offsets(batch))
            except CommitFailedError:
                continue  # rebalanced meanwhile: this batch will come again
            if member.assignment() == owned_at_poll:
                committed.add(batch_id)
            committed_batches += 1

    await transport.publish_many(first_half)
    a_task = asyncio.create_task(consume(a, "a"))
    b_task = asyncio.create_task(consume(b, "b"))
    await asyncio.wait_for(b_task, 60)
    await transport.publish_many(second_half)  # mid-stream: after B left
    await asyncio.wait_for(a_task, 60)

    assert b_last_batch, "B left before receiving an uncommitted batch"
    got = {(r.partition, r.offset): r.value for _, _, r in deliveries}
    assert sorted(got.values()) == sorted(m.value for m in first_half + second_half)
    by_record: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for s, batch_id, r in deliveries:
        by_record[(r.partition, r.offset)].append((s, batch_id))
    for key, seen in by_record.items():
        earlier = sorted(seen)[:-1]
        assert all(bid not in committed for _, bid in earlier), f"committed {key} came again"
    redelivered = {k for k, seen in by_record.items() if len(seen) > 1}
    assert {(r.partition, r.offset) for r in b_last_batch} <= redelivered


async def test_delete_before_removes_delivered_records(
    transport: Transport, names: Names, members: list[Consumer]
) -> None:
    """What a node has stored and committed can be deleted from the bus; later records
    and the end offsets are untouched, and a new group reads only what remains."""
    topic = names.topic("delete")
    await transport.ensure_topics([topic], partitions=1)
    acks = await transport.publish_many(
        [Message(topic, b"case-1", f"v{i}".encode(), (("grant", b"secret"),)) for i in range(6)]
    )
    await transport.delete_before({(topic, 0): acks[4].offset})
    later = await transport.publish(topic, b"case-1", b"v6")
    assert later.offset == acks[-1].offset + 1  # offsets never reused
    consumer = transport.consumer(names.group("delete"), [topic])
    members.append(consumer)
    await consumer.start()
    received = await drain(consumer, lambda got: len(got) >= 3)
    assert [r.value for r in received] == [b"v4", b"v5", b"v6"]


async def test_lag_counts_what_the_group_has_not_committed(
    transport: Transport, names: Names, members: list[Consumer]
) -> None:
    """The backlog a status page shows: every uncommitted record on every partition, read
    or not; committing brings it down, new records raise it."""
    topic = names.topic("lag")
    await transport.ensure_topics([topic], partitions=3)
    await transport.publish_many(_case_messages(topic, cases=5, per_case=2))
    consumer = transport.consumer(names.group("lag"), [topic])
    members.append(consumer)
    await consumer.start()
    assert await consumer.lag() == 10
    received = await drain(consumer, lambda got: len(got) >= 10)
    assert await consumer.lag() == 10  # read is not done: nothing committed yet
    first = next_offsets(received[:4])
    await consumer.commit(first)
    assert await consumer.lag() == 10 - sum(
        o - min(r.offset for r in received if (r.topic, r.partition) == tp)
        for tp, o in first.items()
    )
    await consumer.commit(next_offsets(received))
    assert await consumer.lag() == 0
    await transport.publish_many(_case_messages(topic, cases=1, per_case=3))
    assert await consumer.lag() == 3
