"""The transport alone: a produce-then-consume loop with the bus's own record bytes.

The records are the workload's real encoded envelopes (CloudEvents binary mode: headers
and JSON value, keyed by case), one per recipient topic, as the outbox relay publishes
them. Kafka is driven with plain aiokafka (idempotent producer, acks=all, linger 5 ms,
one consumer group per recipient committing after each fetch, like a node); the embedded
transport with its own `InProcessTransport`. An event counts as delivered when every
recipient's consumer has it, as in the end-to-end stage.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contracts.kafka_binding import encode

if TYPE_CHECKING:
    from nrm.broker import SecuredKafka
from nrm.bench.common import latency_summary
from nrm.bench.workload import RECIPIENTS, sealed_envelopes

Record3 = tuple[bytes, bytes, tuple[tuple[str, bytes], ...]]


def records(n_events: int, recipients: int) -> list[Record3]:
    """Encoded (key, value, headers) of `n_events` sealed envelopes (reused cyclically)."""
    sample = sealed_envelopes(min(n_events, 100), recipients)
    return [encode(sample[i % len(sample)]) for i in range(n_events)]


async def _drive(
    n_events: int,
    rate: float | None,
    recipients: int,
    publish: Callable[[int, list[int]], Awaitable[None]],
    arrivals: dict[tuple[int, int], float],
    batch: int,
) -> dict[str, Any]:
    """Offer events (at `rate`, or as fast as publish allows), wait for all arrivals."""
    due: dict[int, float] = {}
    t0 = time.monotonic()
    i = 0
    pending: set[asyncio.Task[None]] = set()
    while i < n_events:
        if rate:
            wait = t0 + i / rate - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            ids = [i]
        else:
            ids = list(range(i, min(n_events, i + batch)))
        for j in ids:
            due[j] = time.monotonic() if not rate else t0 + j / rate
        task = asyncio.create_task(publish(i, ids))
        pending.add(task)
        task.add_done_callback(pending.discard)
        while not rate and len(pending) >= 4:  # a few batches in flight, as a producer would
            await asyncio.wait(set(pending), return_when=asyncio.FIRST_COMPLETED)
        i += len(ids)
    if pending:
        await asyncio.gather(*list(pending))
    deadline = time.monotonic() + 60
    want = n_events * recipients
    while len(arrivals) < want and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    lat, last = [], {}
    for (j, _r), t in arrivals.items():
        lat.append(t - due[j])
        last[j] = max(last.get(j, 0.0), t)
    window = max(max(last.values(), default=t0) - t0, 1e-9)
    return {
        "recipients": recipients,
        "offered_events_per_s": rate or "saturation",
        "events": n_events,
        "delivered": len(lat),
        "events_per_s": round(len(last) / window, 1),
        "record_bytes_mean": 0,
        **latency_summary(lat),
    }


async def _topics_and_producer(
    kafka: SecuredKafka, what: str, recipients: int
) -> tuple[list[str], Any]:
    """Fresh topics, one per recipient (4 partitions), and a producer (not started) set as
    the baseline is: idempotent, acks=all, linger 5 ms, TLS with the operator's
    certificate."""
    from aiokafka import AIOKafkaProducer

    from nrm.pki import OPERATOR

    run_id = uuid.uuid4().hex[:8]
    topics = [f"bench-{what}-{run_id}-{r}" for r in RECIPIENTS[:recipients]]
    operator = kafka.transport(OPERATOR)
    try:
        await operator.ensure_topics(topics, partitions=4)
    finally:
        await operator.close()
    options = kafka.client_options(OPERATOR)
    return topics, AIOKafkaProducer(**options, enable_idempotence=True, acks="all", linger_ms=5)


async def kafka_loop(
    kafka: SecuredKafka, n_events: int, recipients: int, rate: float | None = None
) -> dict[str, Any]:
    """Raw aiokafka: one producer, one consumer group per recipient topic; TLS with the
    operator's certificate, as the bus itself never speaks plaintext."""
    from aiokafka import AIOKafkaConsumer

    from nrm.pki import OPERATOR

    topics, producer = await _topics_and_producer(kafka, "raw", recipients)
    connection = kafka.client_options(OPERATOR)
    recs = records(n_events, recipients)
    consumers = [
        AIOKafkaConsumer(
            t,
            **connection,
            group_id=f"{t}-g",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        for t in topics
    ]
    await producer.start()
    for c in consumers:
        await c.start()
    arrivals: dict[tuple[int, int], float] = {}
    stop = asyncio.Event()

    async def consume(k: int, consumer: Any) -> None:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=50, max_records=500)
            now = time.monotonic()
            for msgs in batches.values():
                for m in msgs:
                    arrivals[(int.from_bytes(dict(m.headers)["bench_seq"], "big"), k)] = now
            if batches:
                await consumer.commit()

    async def publish(_: int, ids: list[int]) -> None:
        futures = []
        for j in ids:
            key, value, headers = recs[j]
            h = [*headers, ("bench_seq", j.to_bytes(8, "big"))]
            for t in topics:
                futures.append(await producer.send(t, value, key=key, headers=h))
        await asyncio.gather(*futures)

    # Wait for partition assignment before timing (a rebalance is not transport cost).
    while any(not c.assignment() for c in consumers):
        await asyncio.gather(*(c.getmany(timeout_ms=50) for c in consumers))
    tasks = [asyncio.create_task(consume(k, c)) for k, c in enumerate(consumers)]
    cpu0 = time.process_time()  # the client's CPU: this process runs nothing else now
    try:
        row = await _drive(n_events, rate, recipients, publish, arrivals, batch=200)
        client_cpu = time.process_time() - cpu0
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for c in consumers:
            await c.stop()
        await producer.stop()
    row["transport"] = "kafka"
    row["client_cpu_us_per_event"] = round(client_cpu / n_events * 1e6, 1)
    row["record_bytes_mean"] = _mean_bytes(recs)
    return row


async def kafka_producer_us(kafka: SecuredKafka, n_events: int, recipients: int) -> float:
    """The producing side alone: CPU per event of publishing the same records (one per
    recipient topic, batches of 200, acks=all) with no consumer in the process."""
    topics, producer = await _topics_and_producer(kafka, "produce", recipients)
    recs = records(n_events, recipients)
    await producer.start()
    try:
        cpu0 = time.process_time()
        for start in range(0, n_events, 200):
            futures = [
                await producer.send(t, value, key=key, headers=list(headers))
                for key, value, headers in recs[start : start + 200]
                for t in topics
            ]
            await asyncio.gather(*futures)
        return (time.process_time() - cpu0) / n_events * 1e6
    finally:
        await producer.stop()


async def embedded_loop(
    n_events: int, recipients: int, rate: float | None = None
) -> dict[str, Any]:
    """The embedded SQLite transport: publish_many per batch, one group per recipient."""
    from referral_router.transport.base import Message
    from referral_router.transport.in_process import InProcessTransport

    recs = records(n_events, recipients)
    with tempfile.TemporaryDirectory(prefix="nrm-bench-bus-") as tmp:
        transport = InProcessTransport(Path(tmp) / "bus.db")
        topics = [f"bench-raw-{r}" for r in RECIPIENTS[:recipients]]
        await transport.ensure_topics(topics, partitions=4)
        consumers = [transport.consumer(f"{t}-g", [t]) for t in topics]
        for c in consumers:
            await c.start()
        arrivals: dict[tuple[int, int], float] = {}
        stop = asyncio.Event()

        async def consume(k: int, consumer: Any) -> None:
            while not stop.is_set():
                got = await consumer.poll(max_records=500, timeout_ms=50)
                now = time.monotonic()
                offsets = {}
                for rec in got:
                    arrivals[(int.from_bytes(dict(rec.headers)["bench_seq"], "big"), k)] = now
                    offsets[(rec.topic, rec.partition)] = rec.offset + 1
                await consumer.commit(offsets)

        async def publish(_: int, ids: list[int]) -> None:
            msgs = []
            for j in ids:
                key, value, headers = recs[j]
                h = (*headers, ("bench_seq", j.to_bytes(8, "big")))
                msgs += [Message(t, key, value, h) for t in topics]
            await transport.publish_many(msgs)

        tasks = [asyncio.create_task(consume(k, c)) for k, c in enumerate(consumers)]
        try:
            row = await _drive(n_events, rate, recipients, publish, arrivals, batch=200)
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            for c in consumers:
                await c.stop()
            await transport.close()
    row["transport"] = "embedded"
    row["record_bytes_mean"] = _mean_bytes(recs)
    return row


def _mean_bytes(recs: list[Record3]) -> int:
    sizes = [len(k) + len(v) + sum(len(a) + len(b) for a, b in h) for k, v, h in recs]
    return round(sum(sizes) / len(sizes))
