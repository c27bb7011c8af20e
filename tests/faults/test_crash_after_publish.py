"""kill -9 a sending node between publish and position record; each event still arrives
exactly once.

The sender runs with NRM_FAULT_EXIT_AFTER_PUBLISH=1: its relay dies right after the broker
acknowledged a batch and before it recorded how far it got. Restarted on the same store,
it publishes that batch again (the topic holds it twice); the receiver recognises every
repeat by event id and its store holds each event once.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from referral_router.transport.topics import inbox_topic

from .conftest import Country, received_ids, screen, wait_for

pytestmark = pytest.mark.kafka


async def _records_on(kafka: Any, topic: str) -> int:
    """How many records were ever appended to `topic` (end offsets; deletions aside)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(**kafka.client_options())
    await consumer.start()
    try:
        parts = consumer._client.cluster.partitions_for_topic(topic)
        if not parts:
            await consumer._client.force_metadata_update()
            parts = consumer._client.cluster.partitions_for_topic(topic) or set()
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in parts])
        return sum(ends.values())
    finally:
        with contextlib.suppress(asyncio.CancelledError):  # aiokafka's group-less stop
            await consumer.stop()


def test_kill_between_publish_and_position_record_delivers_exactly_once(
    kafka_country: tuple[Country, Any, Any], kafka_broker: Any
) -> None:
    country, sender_spec, receiver_spec = kafka_country
    receiver = country.node(receiver_spec.id).start()
    sender = country.node(sender_spec.id)
    sender.start(NRM_FAULT_EXIT_AFTER_PUBLISH="1")

    accepted: list[str] = []

    def submit(_: int) -> str | None:
        try:
            with country.client(sender) as c:
                return str(screen(c, receiver_spec.id)["event_id"])
        except (httpx.HTTPError, AssertionError):
            return None  # the sender died under us: not accepted, not promised

    with ThreadPoolExecutor(8) as pool:  # a burst, so the fatal batch holds several
        answers = list(pool.map(submit, range(16)))
    accepted += [e for e in answers if e]
    unanswered = answers.count(None)
    code = sender.wait_exit(30)
    assert code == 9, sender.tail()
    assert accepted, "no event was accepted before the crash"

    sender.start()  # same store, no fault: republishes the unrecorded batch
    with country.client(sender) as c:
        accepted += [str(screen(c, receiver_spec.id)["event_id"]) for _ in range(3)]

    with country.client(receiver) as rc:
        wait_for(lambda: set(received_ids(rc)) >= set(accepted), 60, "every accepted event")
        got = received_ids(rc)
    assert len(got) == len(set(got)), "an event was applied twice"
    assert set(accepted) <= set(got), "an accepted event was lost"
    # A request whose answer the crash swallowed may have been stored and published just
    # before it: it may arrive (once), never promised; nothing else may.
    assert len(set(got) - set(accepted)) <= unanswered

    topic = inbox_topic("XA", receiver_spec.id)
    on_topic = asyncio.run(_records_on(kafka_broker, topic))
    assert on_topic > len(accepted), "the crash should have made the relay publish again"
