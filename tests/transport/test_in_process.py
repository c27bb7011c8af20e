"""What only the embedded transport must prove: crash durability of its SQLite file,
use from worker threads with their own loops, and its group coordinator's rules."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from referral_router.transport.base import (
    CommitFailedError,
    Message,
    UnknownTopicError,
)
from referral_router.transport.in_process import InProcessTransport
from referral_router.transport.partitioning import partition_for

from .helpers import drain, next_offsets

CRASHING_NODE = textwrap.dedent(
    """
    import asyncio, os, sys
    from referral_router.transport.base import Message
    from referral_router.transport.in_process import InProcessTransport

    async def main() -> None:
        bus = InProcessTransport(sys.argv[1])
        await bus.ensure_topics(["t"], partitions=2)
        await bus.publish_many([Message("t", b"case-%d" % (i % 5), b"%d" % i) for i in range(100)])
        member = bus.consumer("g", ["t"])
        await member.start()
        got = []
        while len(got) < 100:
            got += await member.poll(max_records=100)
        done = [r for r in got if int(r.value) < 60]
        offsets = {}
        for r in done:
            tp = (r.topic, r.partition)
            offsets[tp] = max(offsets.get(tp, 0), r.offset + 1)
        await member.commit(offsets)
        print(sorted(offsets.items()), flush=True)
        os._exit(9)  # crash: no close, no leave, no checkpoint

    asyncio.run(main())
    """
)


async def test_a_crashed_process_loses_nothing_it_acknowledged(tmp_path: Path) -> None:
    db = tmp_path / "bus.db"
    proc = subprocess.run(
        [sys.executable, "-c", CRASHING_NODE, str(db)], capture_output=True, text=True
    )
    assert proc.returncode == 9, proc.stderr

    bus = InProcessTransport(db)
    member = bus.consumer("g", ["t"])
    await member.start()
    rest = await drain(member, lambda got: len(got) >= 40)
    assert sorted(int(r.value) for r in rest) == list(range(60, 100))
    assert await member.poll(timeout_ms=100) == []
    partition = partition_for(b"case-0", 2)
    stored = sum(1 for i in range(100) if partition_for(b"case-%d" % (i % 5), 2) == partition)
    assert (await bus.publish("t", b"case-0", b"next")).offset == stored  # offsets continue
    await member.stop()
    await bus.close()


async def test_publish_from_worker_threads_with_their_own_loops(tmp_path: Path) -> None:
    bus = InProcessTransport(tmp_path / "bus.db")
    await bus.ensure_topics(["t"], partitions=3)
    member = bus.consumer("g", ["t"])
    await member.start()

    def worker(n: int) -> None:
        async def publish() -> None:
            for i in range(0, 100, 10):
                batch = [Message("t", b"case-%d" % n, b"%d:%d" % (n, i + j)) for j in range(10)]
                await bus.publish_many(batch)

        asyncio.run(publish())

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    got = await drain(member, lambda got: len(got) >= 400, timeout=20)
    for t in threads:
        t.join()
    per_case: dict[bytes, list[int]] = {}
    for r in got:
        per_case.setdefault(r.key, []).append(int(r.value.split(b":")[1]))
    assert all(seq == list(range(100)) for seq in per_case.values())
    await member.stop()
    await bus.close()


async def test_joining_member_takes_partitions_from_their_commit_point() -> None:
    bus = InProcessTransport()
    await bus.ensure_topics(["t"], partitions=4)
    await bus.publish_many([Message("t", b"case-%d" % i, b"%d" % i) for i in range(40)])
    a = bus.consumer("g", ["t"])
    await a.start()
    assert len(a.assignment()) == 4
    first = await drain(a, lambda got: len(got) >= 40)
    await a.commit(next_offsets(first[:20]))

    b = bus.consumer("g", ["t"])
    await b.start()
    await a.poll(timeout_ms=0)  # A learns of the rebalance on its next poll
    assert len(a.assignment()) == len(b.assignment()) == 2
    assert not a.assignment() & b.assignment()
    committed = next_offsets(first[:20])
    to_b = [r for r in first if (r.topic, r.partition) in b.assignment()]
    expected = [r for r in to_b if r.offset >= committed.get((r.topic, r.partition), 0)]
    got_b = await drain(b, lambda got: len(got) >= len(expected))
    assert sorted((r.partition, r.offset) for r in got_b) == sorted(
        (r.partition, r.offset) for r in expected
    )
    with pytest.raises(CommitFailedError):  # A no longer owns B's partitions
        await a.commit({next(iter(b.assignment())): 1})
    await a.stop()
    await b.stop()
    await bus.close()


async def test_publishing_to_an_unknown_topic_fails_and_stores_nothing() -> None:
    bus = InProcessTransport()
    await bus.ensure_topics(["known"], partitions=1)
    with pytest.raises(UnknownTopicError):
        await bus.publish_many([Message("known", b"k", b"v"), Message("unknown", b"k", b"v")])
    assert (await bus.publish("known", b"k", b"v")).offset == 0
    await bus.close()


async def test_a_cancelled_poll_skips_no_record() -> None:
    bus = InProcessTransport()
    await bus.ensure_topics(["t"], partitions=1)
    await bus.publish_many([Message("t", b"k", b"%d" % i) for i in range(30)])
    member = bus.consumer("g", ["t"])
    await member.start()
    got: list[int] = []
    for _ in range(200):  # many polls cut short while their read runs in a thread
        with contextlib.suppress(TimeoutError):
            batch = await asyncio.wait_for(member.poll(max_records=1), timeout=0.0002)
            got += [int(r.value) for r in batch]
    got += [int(r.value) for r in await drain(member, lambda g: len(got) + len(g) >= 30)]
    assert got == list(range(30))
    await member.stop()
    await bus.close()
