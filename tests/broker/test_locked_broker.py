"""The secured broker, attacked by a registered but hostile agency and by strangers.

Real Apache Kafka (the session's broker: TLS, client certificates, StandardAuthorizer),
provisioned by the operator from a directory with three fresh agencies. Agency A holds a
valid certificate and its own ACLs, and uses plain aiokafka (an attacker does not use our
transport) against B's inbox, B's consumer group, B's records and B's dead letters; a
client without a certificate, one with a certificate from another CA, and a plaintext
client try the door. Each test asserts the broker's answer (error class and code).
"""

from __future__ import annotations

import asyncio
import secrets
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)

from contracts.directory import AgencyStatus
from nrm.pki import LocalCA, agency
from referral_router.transport.access import plan
from referral_router.transport.base import TransportError
from referral_router.transport.kafka import KafkaTls, KafkaTransport
from referral_router.transport.kafka_access import broker_acls, provision
from referral_router.transport.topics import consumer_group, dead_letter_topic, inbox_topic

from . import directories

pytestmark = pytest.mark.kafka


@dataclass
class Bus:
    broker: Any
    a: str
    b: str
    c: str

    def tls(self, who: str) -> KafkaTls:
        return self.broker.tls_for(who)  # type: ignore[no-any-return]

    def options(self, who: str) -> dict[str, Any]:
        return {
            "bootstrap_servers": self.broker.bootstrap,
            "security_protocol": "SSL",
            "ssl_context": self.tls(who).context(),
            "request_timeout_ms": 10_000,
        }

    def operator(self) -> KafkaTransport:
        return KafkaTransport(self.broker.bootstrap, tls=self.broker.operator_tls)


@pytest.fixture
async def bus(kafka_broker: Any) -> AsyncIterator[Bus]:
    tag = secrets.token_hex(3)
    bus = Bus(kafka_broker, f"a-{tag}", f"b-{tag}", f"c-{tag}")
    operator = bus.operator()
    try:
        await provision(
            operator, directories.directory([directories.agency(x) for x in (bus.a, bus.b, bus.c)])
        )
    finally:
        await operator.close()
    yield bus


async def _produce(bus: Bus, who: str, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(**bus.options(who), enable_idempotence=True, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=b"case-1")
    finally:
        await producer.stop()


async def _consume(bus: Bus, who: str, topic: str, group: str, expect: int = 1) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        **bus.options(who),
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        await consumer.start()
        got: list[bytes] = []
        async with asyncio.timeout(30):
            while len(got) < expect:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    got += [r.value for r in records]
        return got
    finally:
        await consumer.stop()


async def test_an_agency_writes_to_whom_it_may_address_and_reads_its_own_inbox(bus: Bus) -> None:
    """The positive case: idempotent produce with acks=all needs WRITE only (no
    IDEMPOTENT_WRITE on the cluster), and the owner reads its inbox in its own group."""
    await _produce(bus, bus.a, inbox_topic("XA", bus.b), b"for-b")
    got = await _consume(bus, bus.b, inbox_topic("XA", bus.b), consumer_group(bus.b))
    assert got == [b"for-b"]


async def test_a_cannot_consume_bs_inbox(bus: Bus) -> None:
    await _produce(bus, bus.c, inbox_topic("XA", bus.b), b"secret-for-b")
    for group in (consumer_group(bus.a), consumer_group(bus.b)):
        with pytest.raises((TopicAuthorizationFailedError, GroupAuthorizationFailedError)) as e:
            await _consume(bus, bus.a, inbox_topic("XA", bus.b), group)
        assert e.value.errno in (29, 30)  # TOPIC_ / GROUP_AUTHORIZATION_FAILED
    # without a group (manual assignment) the fetch itself is refused
    consumer = AIOKafkaConsumer(**bus.options(bus.a), auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([TopicPartition(inbox_topic("XA", bus.b), 0)])
        with pytest.raises(TopicAuthorizationFailedError) as e2:
            async with asyncio.timeout(20):
                while True:
                    await consumer.getmany(timeout_ms=500)
        assert e2.value.errno == 29
    finally:
        await consumer.stop()


async def test_a_cannot_commit_offsets_for_bs_group(bus: Bus) -> None:
    """Committing B's group past B's events would make B's node skip them silently."""
    await _produce(bus, bus.c, inbox_topic("XA", bus.b), b"must-not-be-skipped")
    admin = AIOKafkaAdminClient(**bus.options(bus.a))
    await admin.start()
    consumer = AIOKafkaConsumer(**bus.options(bus.a), group_id=consumer_group(bus.b))
    await consumer.start()
    consumer.assign([TopicPartition(inbox_topic("XA", bus.b), p) for p in range(4)])
    try:
        with pytest.raises(GroupAuthorizationFailedError) as e:
            await consumer.commit(
                {TopicPartition(inbox_topic("XA", bus.b), p): 10**6 for p in range(4)}
            )
        assert e.value.errno == 30
        with pytest.raises(GroupAuthorizationFailedError):
            await admin.list_consumer_group_offsets(consumer_group(bus.b))
    finally:
        await consumer.stop()
        await admin.close()
    # and B still receives its event from the start
    got = await _consume(bus, bus.b, inbox_topic("XA", bus.b), consumer_group(bus.b))
    assert got == [b"must-not-be-skipped"]


async def test_a_cannot_delete_bs_records_but_may_delete_its_own(bus: Bus) -> None:
    await _produce(bus, bus.c, inbox_topic("XA", bus.b), b"keep-me")
    await _produce(bus, bus.c, inbox_topic("XA", bus.a), b"mine")
    admin = AIOKafkaAdminClient(**bus.options(bus.a))
    await admin.start()
    try:
        theirs = {TopicPartition(inbox_topic("XA", bus.b), p): RecordsToDelete(1) for p in (0,)}
        with pytest.raises(TopicAuthorizationFailedError) as e:
            await admin.delete_records(theirs)
        assert e.value.errno == 29
        partition = await _partition_with_records(admin, inbox_topic("XA", bus.a))
        mine = {TopicPartition(inbox_topic("XA", bus.a), partition): RecordsToDelete(1)}
        assert await admin.delete_records(mine) == {
            TopicPartition(inbox_topic("XA", bus.a), partition): 1
        }
    finally:
        await admin.close()
    got = await _consume(bus, bus.b, inbox_topic("XA", bus.b), consumer_group(bus.b))
    assert got == [b"keep-me"]


async def _partition_with_records(admin: AIOKafkaAdminClient, topic: str) -> int:
    from referral_router.transport.partitioning import partition_for

    described = await admin.describe_topics([topic])
    return partition_for(b"case-1", len(described[0]["partitions"]))


async def test_a_cannot_read_another_agencys_dead_letters(bus: Bus) -> None:
    await _produce(bus, bus.b, dead_letter_topic("XA", bus.b), b"b's dead letter")
    with pytest.raises((TopicAuthorizationFailedError, GroupAuthorizationFailedError)) as e:
        await _consume(bus, bus.a, dead_letter_topic("XA", bus.b), consumer_group(bus.a))
    assert e.value.errno == 29
    with pytest.raises(TopicAuthorizationFailedError):  # nor write into them
        await _produce(bus, bus.a, dead_letter_topic("XA", bus.b), b"forged")
    got = await _consume(bus, bus.b, dead_letter_topic("XA", bus.b), consumer_group(bus.b))
    assert got == [b"b's dead letter"]


async def test_a_cannot_create_topics_or_write_outside_its_addressees(bus: Bus) -> None:
    admin = AIOKafkaAdminClient(**bus.options(bus.a))
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(f"nrm.XA.inbox.x-{bus.a}", 1, 1)])
        assert [code for _, code, *_ in response.topic_errors] == [29]
    finally:
        await admin.close()
    operator = bus.operator()
    try:  # a topic the operator made but no ACL opens
        stray = f"nrm.XA.stray-{bus.a}"
        await operator.ensure_topics([stray], partitions=1)
    finally:
        await operator.close()
    with pytest.raises(TopicAuthorizationFailedError):
        await _produce(bus, bus.a, stray, b"x")


async def test_a_node_transport_uses_provisioned_topics_and_never_creates(bus: Bus) -> None:
    node = KafkaTransport(bus.broker.bootstrap, tls=bus.tls(bus.a))
    try:
        await node.ensure_topics([inbox_topic("XA", bus.b)], partitions=4)  # exists: passes
        with pytest.raises(TransportError, match="not provisioned"):
            await node.ensure_topics([inbox_topic("XA", f"nobody-{bus.a}")], partitions=4)
    finally:
        await node.close()


async def test_a_suspended_agency_loses_its_acls_at_once(bus: Bus) -> None:
    suspended = directories.directory(
        [
            directories.agency(bus.a),
            directories.agency(bus.b, status=AgencyStatus.SUSPENDED),
            directories.agency(bus.c),
        ],
        serial=2,
    )
    operator = bus.operator()
    try:
        delta = await provision(operator, suspended)
        assert delta.delete and not delta.create
        async with operator.admin() as admin:
            held = {a for a in await broker_acls(admin) if a.principal.endswith(f".{bus.b}")}
        assert not held
        assert held == set(plan(suspended).acls_of(f"User:agency.XA.{bus.b}"))
        assert not await provision(operator, suspended)  # idempotent
    finally:
        await operator.close()
    with pytest.raises((TopicAuthorizationFailedError, GroupAuthorizationFailedError)):
        await _consume(bus, bus.b, inbox_topic("XA", bus.b), consumer_group(bus.b))
    with pytest.raises(TopicAuthorizationFailedError):
        await _produce(bus, bus.a, inbox_topic("XA", bus.b), b"to a suspended agency")


# --- strangers at the door -------------------------------------------------------------


async def _bootstrap_fails(**options: Any) -> None:
    admin = AIOKafkaAdminClient(request_timeout_ms=5_000, **options)
    try:
        with pytest.raises(KafkaConnectionError):
            await admin.start()
    finally:
        await admin.close()


async def test_a_client_without_a_certificate_is_refused(kafka_broker: Any) -> None:
    ctx = ssl.create_default_context(cafile=str(kafka_broker.pki.ca_file))
    await _bootstrap_fails(
        bootstrap_servers=kafka_broker.bootstrap, security_protocol="SSL", ssl_context=ctx
    )


async def test_a_plaintext_client_is_refused(kafka_broker: Any) -> None:
    await _bootstrap_fails(bootstrap_servers=kafka_broker.bootstrap)


async def test_a_certificate_from_another_ca_is_refused(kafka_broker: Any, tmp_path: Path) -> None:
    rogue = LocalCA.init(tmp_path / "rogue", "XA")
    # the same subject an agency has: only the CA makes it a principal
    pem = rogue.issue(agency("a-rogue", "XA"), names=())
    ctx = ssl.create_default_context(cafile=str(kafka_broker.pki.ca_file))
    ctx.load_cert_chain(str(pem))
    await _bootstrap_fails(
        bootstrap_servers=kafka_broker.bootstrap, security_protocol="SSL", ssl_context=ctx
    )


async def test_our_transport_refuses_plaintext_before_connecting() -> None:
    with pytest.raises(TransportError, match="refuses a plaintext bootstrap"):
        KafkaTransport("127.0.0.1:9092")


async def test_a_plaintext_listener_is_named_not_mistaken_for_an_outage(kafka_broker: Any) -> None:
    """A server that answers TCP but not TLS (what a PLAINTEXT listener does)."""

    async def plaintext(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(5)
        writer.write(b"\x00\x00\x00\x00")
        writer.close()

    server = await asyncio.start_server(plaintext, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport = KafkaTransport(f"127.0.0.1:{port}", tls=kafka_broker.operator_tls)
    try:
        with pytest.raises(TransportError, match="plaintext"):
            await transport.check_tls()
        ok = KafkaTransport(kafka_broker.bootstrap, tls=kafka_broker.operator_tls)
        await ok.check_tls()  # the real broker completes the handshake
        await ok.close()
    finally:
        await transport.close()
        server.close()
        await server.wait_closed()


def test_certificates_are_short_lived_and_private(kafka_broker: Any) -> None:
    pem = kafka_broker.pki.path(agency("a-check", "XA"))
    kafka_broker.tls_for("a-check")
    cert = kafka_broker.pki.certificate(agency("a-check", "XA"))
    assert (cert.not_valid_after_utc - datetime.now(UTC)).days <= 90
    assert pem.stat().st_mode & 0o077 == 0
    assert cert.subject.rfc4514_string() == "CN=a-check,OU=XA,O=NRM agency"
