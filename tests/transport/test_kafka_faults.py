"""Kafka only: the broker goes away for 10 s while a node keeps publishing and consuming.

This is the autonomy promise of the architecture (a node keeps working when the bus is
down; nothing is lost, nothing is applied twice): publishes issued during the outage
complete once the broker is back, the idempotent producer writes each record exactly
once, and a consumer that lived through the outage still receives everything.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from referral_router.transport.base import Consumer, Position
from referral_router.transport.kafka import KafkaTransport

from .conftest import KAFKA_TEST_SETTINGS, Names
from .helpers import drain, next_offsets

PAUSE_SECONDS = 10.0


@pytest.mark.kafka
async def test_broker_pause_loses_nothing(
    kafka_broker: object, names: Names, members: list[Consumer]
) -> None:
    transport = KafkaTransport(kafka_broker.bootstrap, **KAFKA_TEST_SETTINGS)  # type: ignore[attr-defined]
    try:
        await _pause_while_publishing(transport, kafka_broker, names, members)
    finally:
        await transport.close()


async def _pause_while_publishing(
    transport: KafkaTransport, broker: object, names: Names, members: list[Consumer]
) -> None:
    topic = names.topic("pause")
    await transport.ensure_topics([topic], partitions=3)
    live = transport.consumer(names.group("live"), [topic])
    members.append(live)
    await live.start()

    pending: list[asyncio.Task[Position]] = []
    published: list[bytes] = []
    stop_publishing = asyncio.Event()

    async def keep_publishing() -> None:
        i = 0
        while not stop_publishing.is_set():
            value = b"event-%d" % i
            published.append(value)
            key = b"case-%d" % (i % 7)
            pending.append(asyncio.create_task(transport.publish(topic, key, value)))
            i += 1
            await asyncio.sleep(0.05)

    live_seen: list[bytes] = []

    async def keep_consuming() -> None:
        while True:
            batch = await live.poll(max_records=50, timeout_ms=200)
            live_seen.extend(r.value for r in batch)
            if batch:
                await live.commit(next_offsets(batch))

    producer = asyncio.create_task(keep_publishing())
    consumer = asyncio.create_task(keep_consuming())
    try:
        await asyncio.sleep(1.0)
        t0 = time.monotonic()
        await asyncio.to_thread(broker.restart, PAUSE_SECONDS)  # type: ignore[attr-defined]
        assert time.monotonic() - t0 >= PAUSE_SECONDS
        await asyncio.sleep(1.0)
        stop_publishing.set()
        await producer
        positions = await asyncio.wait_for(asyncio.gather(*pending), 60)
        assert len(positions) == len(published) > 150  # ~100 issued while the broker was down

        deadline = time.monotonic() + 60
        while set(live_seen) < set(published) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert set(live_seen) >= set(published), "the live consumer missed records"
    finally:
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)

    audit = transport.consumer(names.group("audit"), [topic])
    members.append(audit)
    await audit.start()
    log = await drain(audit, lambda got: len(got) >= len(published), max_records=500)
    assert await audit.poll(timeout_ms=500) == []
    assert sorted(r.value for r in log) == sorted(published)  # each exactly once
