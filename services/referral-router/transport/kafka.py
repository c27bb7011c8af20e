"""The distributed transport: Apache Kafka through aiokafka.

Producer: idempotent with ``acks=all``, so broker retries neither lose nor duplicate a
record and a case's records keep their order. ``publish`` returns only when the broker
acknowledged; while a broker is away the producer keeps retrying (aiokafka never expires
idempotent batches), and we give up with ``DeliveryTimeoutError`` after
``delivery_timeout_s``. Consumers: group members with manual commits only
(``enable_auto_commit=False``) starting at ``earliest`` when the group has no commit.

Every connection is TLS with a client certificate (`KafkaTls`): the broker reads the
agency's principal from it and allows only what the operator's ACLs allow. There is no
plaintext mode: a transport without TLS material is refused at construction, and a
listener that does not answer the TLS handshake is named as such (`check_tls`).
Topics are provisioned by the operator; `ensure_topics` creates only what is missing, so
a node principal (no CREATE permission) passes when its topics exist and fails with a
clear error when they do not.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka import TopicPartition as KafkaTopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete
from aiokafka.errors import (
    CommitFailedError as KafkaCommitFailedError,
)
from aiokafka.errors import (
    IllegalStateError,
    KafkaConnectionError,
    KafkaError,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
    for_code,
)

from .base import (
    CommitFailedError,
    DeliveryTimeoutError,
    Message,
    Position,
    Record,
    TopicPartition,
    Transport,
    TransportError,
)

#: The broker stamps each record with the time it appended it: receivers judge signing
#: keys by when a record reached the bus, which no producer can set.
TOPIC_CONFIG = {"message.timestamp.type": "LogAppendTime"}
LOG_APPEND_TIME = 1  # the record batch attribute of a LogAppendTime timestamp
PLAINTEXT_REFUSED = (
    "Kafka needs TLS with a client certificate: give the CA file, the client certificate "
    "and its key (NRM_KAFKA_CA_FILE, NRM_KAFKA_CERT_FILE, NRM_KAFKA_KEY_FILE); the bus "
    "refuses a plaintext bootstrap"
)


@dataclass(frozen=True, slots=True)
class KafkaTls:
    """A client's TLS identity towards the brokers: the CA it trusts (the local CA of
    `nrm pki`) and its own certificate chain and key, PEM (one file may hold both)."""

    ca_file: Path
    cert_file: Path
    key_file: Path | None = None

    def context(self) -> ssl.SSLContext:
        """TLS 1.2+ with the broker's name checked against its certificate."""
        try:
            ctx = ssl.create_default_context(cafile=str(self.ca_file))
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(str(self.cert_file), str(self.key_file) if self.key_file else None)
        except (OSError, ssl.SSLError) as e:
            raise TransportError(f"Kafka TLS files unusable ({self}): {e}") from e
        return ctx


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    """Connection and timing; defaults suit production, tests shorten the group timers.
    ``replication_factor`` 0 means as many replicas as brokers, at most 3."""

    bootstrap: str
    tls: KafkaTls | None = None
    client_id: str = "nrm-referral-router"
    delivery_timeout_s: float = 120.0
    request_timeout_ms: int = 30_000
    #: No wait for more records before a produce request: the relay hands over a whole
    #: batch at once, and under load records gather while a request is in flight anyway;
    #: at a light load 5 ms of linger was a fifth of an event's way to its recipient.
    linger_ms: int = 0
    replication_factor: int = 0
    topic_ready_timeout_s: float = 30.0
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    max_poll_interval_ms: int = 300_000
    metadata_max_age_ms: int = 30_000
    retry_backoff_ms: int = 200

    def client_options(self, role: str = "") -> dict[str, object]:
        """What every client of this transport shares; `role` names it to the broker."""
        return {
            "bootstrap_servers": self.bootstrap,
            "client_id": f"{self.client_id}-{role}" if role else self.client_id,
            "metadata_max_age_ms": self.metadata_max_age_ms,
            "retry_backoff_ms": self.retry_backoff_ms,
        }


class KafkaTransport(Transport):
    """``Transport`` over a Kafka cluster; one shared idempotent producer."""

    def __init__(self, bootstrap: str | KafkaSettings, **overrides: object) -> None:
        base = bootstrap if isinstance(bootstrap, KafkaSettings) else KafkaSettings(bootstrap)
        self.settings = replace(base, **overrides)  # type: ignore[arg-type]
        if self.settings.tls is None:
            raise TransportError(PLAINTEXT_REFUSED)
        self._ssl = self.settings.tls.context()
        self._producer: AIOKafkaProducer | None = None
        self._producer_lock = asyncio.Lock()
        self._admin_client: AIOKafkaAdminClient | None = None
        self._admin_lock = asyncio.Lock()

    def client_options(self, role: str = "") -> dict[str, object]:
        """What every aiokafka client of this transport is given: TLS, never plaintext."""
        return {
            **self.settings.client_options(role),
            "security_protocol": "SSL",
            "ssl_context": self._ssl,
        }

    async def check_tls(self, timeout: float = 5.0) -> None:
        """One TLS handshake with each bootstrap address that answers: a plaintext
        listener (or a certificate the CA did not sign) is named here, once, instead of
        looking like an outage forever. An address that refuses connections passes: a
        node rides out a broker that is down."""
        for address in self.settings.bootstrap.split(","):
            host, _, port = address.strip().rpartition(":")
            try:
                await asyncio.wait_for(self._handshake(host, int(port)), timeout)
            except (ssl.SSLError, ConnectionResetError, asyncio.IncompleteReadError) as e:
                raise TransportError(
                    f"{address} did not complete a TLS handshake ({e!r}): is it a plaintext "
                    "listener, or a broker whose certificate our CA did not sign? The bus "
                    "refuses plaintext"
                ) from e
            except (OSError, TimeoutError):
                continue

    async def _handshake(self, host: str, port: int) -> None:
        _, writer = await asyncio.open_connection(
            host, port, ssl=self._ssl, server_hostname=host, family=socket.AF_INET
        )
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()

    async def ensure_topics(self, names: Iterable[str], partitions: int) -> None:
        """Create what is missing. Topics that exist pass without a CreateTopics request,
        so a principal without CREATE (every node) works on provisioned topics."""
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return
        async with self.admin() as admin:
            if not await self._without_leaders(admin, wanted):
                return
            replicas = self.settings.replication_factor or await self.replicas(admin)
            response = await admin.create_topics(
                [NewTopic(n, partitions, replicas, topic_configs=TOPIC_CONFIG) for n in wanted]
            )
            for topic, code, *rest in response.topic_errors:
                error = for_code(code)
                if error is TopicAuthorizationFailedError:
                    raise TransportError(
                        f"topic {topic} is not provisioned and this principal may not create "
                        "it: the operator's provisioning (nrm kafka provision) creates topics"
                    )
                if code and error is not TopicAlreadyExistsError:
                    raise TransportError(f"creating {topic}: {error.__name__} {rest}")
            await self.wait_for_leaders(admin, wanted)

    async def publish_many(self, messages: Sequence[Message]) -> list[Position]:
        if not messages:
            return []
        try:
            async with asyncio.timeout(self.settings.delivery_timeout_s):
                producer = await self._started_producer()
                futures = [
                    await producer.send(
                        m.topic, m.value, key=m.key, headers=list(m.headers) or None
                    )
                    for m in messages
                ]
                # shield: on timeout stop waiting, but leave aiokafka's futures alone
                metadata = await asyncio.gather(*(asyncio.shield(f) for f in futures))
        except TimeoutError as e:
            raise DeliveryTimeoutError(
                f"{len(messages)} record(s) not acknowledged within "
                f"{self.settings.delivery_timeout_s}s"
            ) from e
        except KafkaError as e:
            raise TransportError(f"publish failed: {e!r}") from e
        return [Position(md.topic, md.partition, md.offset) for md in metadata]

    def consumer(self, group_id: str, topics: Sequence[str]) -> KafkaConsumer:
        connection = self.client_options(group_id)
        return KafkaConsumer(self.settings, connection, group_id, tuple(topics))

    async def delete_before(self, offsets: Mapping[TopicPartition, int]) -> None:
        if not offsets:
            return
        async with self.admin() as admin:
            try:
                await admin.delete_records(
                    {KafkaTopicPartition(t, p): RecordsToDelete(o) for (t, p), o in offsets.items()}
                )
            except KafkaError as e:
                raise TransportError(f"delete_records failed: {e!r}") from e

    @contextlib.asynccontextmanager
    async def admin(self) -> AsyncIterator[AIOKafkaAdminClient]:
        """The transport's admin client, started once and kept: a node deletes what it
        delivered about once a second, and a client per call (TLS handshake, metadata)
        would cost more than the deletes. One call at a time; after a failure, a new one."""
        async with self._admin_lock:
            if self._admin_client is None:
                admin = AIOKafkaAdminClient(
                    **self.client_options("admin"),  # type: ignore[arg-type]
                    request_timeout_ms=self.settings.request_timeout_ms,
                )
                await admin.start()
                self._admin_client = admin
            try:
                yield self._admin_client
            except BaseException:
                admin, self._admin_client = self._admin_client, None
                with contextlib.suppress(Exception):
                    await admin.close()
                raise

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()
        admin, self._admin_client = self._admin_client, None
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.close()

    async def _started_producer(self) -> AIOKafkaProducer:
        """The shared producer; while no broker answers, keep trying (the caller's
        delivery timeout bounds the wait), as a node must ride out a bus outage."""
        async with self._producer_lock:
            while self._producer is None:
                s = self.settings
                producer = AIOKafkaProducer(
                    **self.client_options(),  # type: ignore[arg-type]
                    enable_idempotence=True,
                    acks="all",
                    linger_ms=s.linger_ms,
                    request_timeout_ms=s.request_timeout_ms,
                )
                try:
                    await producer.start()
                except KafkaConnectionError:
                    await producer.stop()
                    await asyncio.sleep(s.retry_backoff_ms / 1000)
                    continue
                self._producer = producer
            return self._producer

    async def _without_leaders(self, admin: AIOKafkaAdminClient, topics: list[str]) -> set[str]:
        """Topics that are unknown, not described to us, or have a partition without a
        leader (CreateTopics answers before every partition has one; publish needs it)."""
        described = await admin.describe_topics(topics)
        ready = {
            t["topic"]
            for t in described
            if t["error_code"] == 0
            and t["partitions"]
            and all(p["error_code"] == 0 and p["leader"] >= 0 for p in t["partitions"])
        }
        return set(topics) - ready

    async def replicas(self, admin: AIOKafkaAdminClient) -> int:
        cluster = await admin.describe_cluster()
        return max(1, min(3, len(cluster["brokers"])))

    async def wait_for_leaders(self, admin: AIOKafkaAdminClient, topics: list[str]) -> None:
        deadline = time.monotonic() + self.settings.topic_ready_timeout_s
        while missing := await self._without_leaders(admin, topics):
            if time.monotonic() > deadline:
                raise TransportError(f"topics without leaders: {sorted(missing)}")
            await asyncio.sleep(0.1)


class KafkaConsumer:
    """One consumer-group member over ``AIOKafkaConsumer`` with manual commits."""

    def __init__(
        self,
        settings: KafkaSettings,
        connection: Mapping[str, object],
        group_id: str,
        topics: tuple[str, ...],
    ):
        self.group_id = group_id
        self._topics = topics
        self._connection = dict(connection)
        s = settings
        self._consumer = AIOKafkaConsumer(
            *topics,
            **connection,  # type: ignore[arg-type]
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=s.heartbeat_interval_ms,
            max_poll_interval_ms=s.max_poll_interval_ms,
            request_timeout_ms=max(s.request_timeout_ms, s.session_timeout_ms + 5_000),
        )
        self._started = False
        self._settings = settings
        self._offsets: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        if not self._started:
            await self._consumer.start()
            self._started = True

    async def poll(self, max_records: int = 500, timeout_ms: int = 1000) -> list[Record]:
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        return [
            Record(
                r.topic,
                r.partition,
                r.offset,
                r.key if r.key is not None else b"",
                r.value if r.value is not None else b"",
                tuple((k, bytes(v) if v is not None else b"") for k, v in r.headers or ()),
                r.timestamp,
                r.timestamp_type == LOG_APPEND_TIME,
            )
            for records in batches.values()
            for r in records
        ]

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if not offsets:
            return
        try:
            await self._consumer.commit(
                {KafkaTopicPartition(t, p): o for (t, p), o in offsets.items()}
            )
        except (KafkaCommitFailedError, IllegalStateError) as e:
            raise CommitFailedError(str(e)) from e

    def assignment(self) -> frozenset[TopicPartition]:
        return frozenset((tp.topic, tp.partition) for tp in self._consumer.assignment())

    async def lag(self) -> int:
        """End offsets less committed ones (the log start where the group never
        committed), as `kafka-consumer-groups --describe` counts them."""
        tps = [
            KafkaTopicPartition(topic, p)
            for topic in self._topics
            for p in sorted(self._consumer.partitions_for_topic(topic) or ())
        ]
        if not tps:
            return 0
        try:
            offsets = await self._offsets_client()
            ends = await offsets.end_offsets(tps)
            starts = await offsets.beginning_offsets(tps)
            committed = [await self._consumer.committed(tp) for tp in tps]
        except KafkaError as e:
            raise TransportError(f"lag of {self.group_id}: {e!r}") from e
        return sum(
            max(0, ends[tp] - (done if done is not None else starts[tp]))
            for tp, done in zip(tps, committed, strict=True)
        )

    async def _offsets_client(self) -> AIOKafkaConsumer:
        """A group-less client for the partitions' end offsets: asked on the member's own
        connection, they would queue behind its long-polling fetch (up to half a second)."""
        if self._offsets is None:
            options = {**self._connection, "client_id": f"{self._connection['client_id']}-offsets"}
            client = AIOKafkaConsumer(  # the member's TLS identity, a client id of its own
                **options,  # type: ignore[arg-type]
                enable_auto_commit=False,
            )
            await client.start()
            self._offsets = client
        return self._offsets

    async def stop(self) -> None:
        offsets, self._offsets = self._offsets, None
        if offsets is not None:
            with contextlib.suppress(asyncio.CancelledError):  # a group-less consumer's stop
                await offsets.stop()
        if self._started:
            self._started = False
            await self._consumer.stop()
