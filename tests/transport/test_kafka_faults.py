"""Kafka only: the broker goes away for 10 s while a node keeps publishing and consuming.

This is the autonomy promise of the architecture (a node keeps working when the bus is
down; nothing is lost, nothing is applied twice): publishes issued during the outage
complete once the broker is back, the idempotent producer writes each record exactly
once, and a consumer that lived through the outage still receives everything.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from referral_router.transport.base import Consumer, DeliveryTimeoutError, Position
from referral_router.transport.kafka import KafkaTransport

from .conftest import KAFKA_TEST_SETTINGS, BrokerControl, Names
from .helpers import drain, next_offsets

PAUSE_SECONDS = 10.0


async def _until_port_closed(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return
        writer.close()
        await asyncio.sleep(0.05)
    raise AssertionError(f"broker still listening on {port}")


@pytest.mark.kafka
async def test_publish_without_a_reachable_broker_times_out(kafka_broker: BrokerControl) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tls = kafka_broker.operator_tls  # real certificates; only the broker is missing
    transport = KafkaTransport(f"127.0.0.1:{port}", tls=tls, delivery_timeout_s=1.5)
    t0 = time.monotonic()
    with pytest.raises(DeliveryTimeoutError):
        await transport.publish("nrm.XA.inbox.nobody", b"case-1", b"v")
    assert time.monotonic() - t0 < 5
    await transport.close()


@pytest.mark.kafka
async def test_broker_pause_loses_nothing(
    kafka_broker: BrokerControl, names: Names, members: list[Consumer]
) -> None:
    transport = KafkaTransport(
        kafka_broker.bootstrap, tls=kafka_broker.operator_tls, **KAFKA_TEST_SETTINGS
    )
    try:
        await _pause_while_publishing(transport, kafka_broker, names, members)
    finally:
        await transport.close()


async def _pause_while_publishing(
    transport: KafkaTransport, broker: BrokerControl, names: Names, members: list[Consumer]
) -> None:
    topic, other_topic = names.topic("pause"), names.topic("impatient")
    await transport.ensure_topics([topic, other_topic], partitions=3)
    impatient = KafkaTransport(transport.settings, delivery_timeout_s=2.0)
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
        await impatient.publish(other_topic, b"case-1", b"before")
        await asyncio.sleep(1.0)
        t0 = time.monotonic()
        restart = asyncio.create_task(asyncio.to_thread(broker.restart, PAUSE_SECONDS))
        await _until_port_closed(broker.port)
        t1 = time.monotonic()
        with pytest.raises(DeliveryTimeoutError):  # bounded: the caller is told, not hung
            await impatient.publish(other_topic, b"case-1", b"during")
        assert 1.5 < time.monotonic() - t1 < 5
        await restart
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
        await impatient.close()

    audit = transport.consumer(names.group("audit"), [topic])
    members.append(audit)
    await audit.start()
    log = await drain(audit, lambda got: len(got) >= len(published), max_records=500)
    assert await audit.poll(timeout_ms=500) == []
    assert sorted(r.value for r in log) == sorted(published)  # each exactly once
