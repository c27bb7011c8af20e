"""Three KRaft voters on 127.0.0.1 (deploy/kafka.py's cluster), secured like one broker.

Topics the operator provisions get three replicas and min.insync.replicas 2; an agency's
node (its own certificate, idempotent producer, acks=all) publishes into another's inbox
and that agency reads it in its own group. The broker-loss drill itself runs with the
process topology; here the cluster is formed, secured and carrying records.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from nrm.broker import SecuredKafka
from nrm.pki import OPERATOR, agency
from referral_router.transport.kafka_access import provision
from referral_router.transport.topics import consumer_group, inbox_topic
from tests.plugins.kafka_broker import secured_kafka

from . import directories

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredKafka]:
    with secured_kafka(tmp_path_factory.mktemp("kafka-cluster"), brokers=3) as kafka:
        yield kafka


async def test_three_voters_replicate_three_times_and_require_two_in_sync(
    cluster: SecuredKafka,
) -> None:
    tag = secrets.token_hex(3)
    police, authority = f"police-{tag}", f"authority-{tag}"
    operator = cluster.transport(OPERATOR)
    try:
        await provision(
            operator,
            directories.directory([directories.agency(police), directories.agency(authority)]),
        )
    finally:
        await operator.close()

    admin = AIOKafkaAdminClient(**cluster.client_options())
    await admin.start()
    try:
        assert len((await admin.describe_cluster())["brokers"]) == 3
        (described,) = await admin.describe_topics([inbox_topic("XA", authority)])
        for partition in described["partitions"]:
            assert len(partition["replicas"]) == 3 and len(partition["isr"]) == 3
        configs = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, inbox_topic("XA", authority))]
        )
        entries = {e[0]: e[1] for e in configs[0].resources[0][4]}
        assert entries["min.insync.replicas"] == "2"
        assert entries["message.timestamp.type"] == "LogAppendTime"
    finally:
        await admin.close()

    sender = cluster.transport(agency(police, "XA"), delivery_timeout_s=60.0, linger_ms=0)
    receiver = cluster.transport(agency(authority, "XA"))
    consumer = receiver.consumer(consumer_group(authority), [inbox_topic("XA", authority)])
    try:
        await sender.ensure_topics([inbox_topic("XA", authority)], partitions=4)  # no CREATE
        sent = [
            await sender.publish(inbox_topic("XA", authority), b"case-%d" % i, b"event-%d" % i)
            for i in range(20)
        ]
        assert len({(p.partition, p.offset) for p in sent}) == 20
        await consumer.start()
        got: list[bytes] = []
        for _ in range(60):
            got += [r.value for r in await consumer.poll(timeout_ms=500)]
            if len(got) >= 20:
                break
        assert sorted(got) == sorted(b"event-%d" % i for i in range(20))
    finally:
        await consumer.stop()
        await sender.close()
        await receiver.close()
