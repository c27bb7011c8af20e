"""Two replicas of one receiving node, one consumer group, one PostgreSQL store; one is
killed mid-stream and the group rebalances: no event is lost or applied twice.

Kafka splits the agency's inbox partitions between the replicas; each receipt is stored
with its (partition, offset) tracking record in one transaction of the shared store. The
killed replica leaves applied-but-uncommitted records behind, which the survivor gets
again after the rebalance and recognises. At the end, the store holds every event once
and the tracking records cover every record each partition ever held.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from typing import Any

import pytest

from referral_router.store.case_store import RECEIVED, CaseStore
from referral_router.transport.topics import consumer_group, inbox_topic
from tests.router.test_case_store import postgres_env

from .conftest import Country, screen, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def _group_members(kafka: Any, group: str) -> int:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        (described,) = await admin.describe_consumer_groups([group])
        groups = described.to_object()["groups"]
        return len(groups[0]["members"]) if groups else 0
    finally:
        await admin.close()


async def _end_offsets(kafka: Any, topic: str) -> dict[int, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(**kafka.client_options())
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        parts = consumer._client.cluster.partitions_for_topic(topic) or set()
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in parts])
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await consumer.stop()


def _received(store: CaseStore) -> list[str]:
    out: list[str] = []
    after = 0
    while page := store.log(after, 500):
        out.extend(str(e.envelope.id) for e in page if e.direction == RECEIVED)
        after = page[-1].position
    return out


def test_two_replicas_rebalance_without_loss_or_double_apply(
    kafka_country: tuple[Country, Any, Any], kafka_broker: Any, postgres_server: Any
) -> None:
    country, sender_spec, receiver_spec = kafka_country
    pg = postgres_env(postgres_server, f"replicas_{secrets.token_hex(4)}")
    pg_settings = {
        "NRM_STORE": "postgres",
        **{k: v for k, v in pg.items() if k.startswith("POSTGRES_")},
    }
    first = country.node(receiver_spec.id, "replica-1", store=pg_settings).start()
    second = country.node(receiver_spec.id, "replica-2", store=pg_settings).start()
    sender = country.node(sender_spec.id).start()
    group = consumer_group(receiver_spec.id)
    wait_for(
        lambda: asyncio.run(_group_members(kafka_broker, group)) == 2,
        30,
        "both replicas in the group",
    )

    sent: list[str] = []
    with country.client(sender) as sc:
        for _ in range(30):  # many cases: spread over the inbox's partitions
            sent.append(screen(sc, receiver_spec.id)["event_id"])
        time.sleep(0.5)  # both replicas are applying when one dies
        code = first.kill()
        assert code == -9
        for _ in range(30):
            sent.append(screen(sc, receiver_spec.id)["event_id"])

    store = CaseStore(env=pg)
    try:
        wait_for(lambda: set(_received(store)) >= set(sent), 90, "every event at the survivor")
        got = _received(store)
        assert sorted(got) == sorted(sent), "an event was lost or applied twice"
        topic = inbox_topic("XA", receiver_spec.id)
        ends = asyncio.run(_end_offsets(kafka_broker, topic))
        assert sum(ends.values()) >= len(sent)
        for partition, end in ends.items():  # every record of every partition tracked
            if end:
                assert store.cursor(f"{topic}:{partition}").position == end
    finally:
        store.close()
    assert asyncio.run(_group_members(kafka_broker, group)) == 1
    assert second.proc is not None and second.proc.poll() is None
