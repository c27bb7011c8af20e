"""The conformance suite's one fixture: ``transport``, once embedded and once on Kafka.

Every test in tests/transport that takes ``transport`` runs against both implementations;
the Kafka run is marked ``kafka`` and uses the session's real, secured broker as the
operator (the conformance suite creates its own topics, which only the operator may). Names
are unique per test so tests share the broker without seeing each other's records.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Protocol

import pytest

from referral_router.transport.base import Consumer, Transport
from referral_router.transport.in_process import InProcessTransport
from referral_router.transport.kafka import KafkaTls, KafkaTransport

# Group timers short enough that joins and leaves settle in about a second.
KAFKA_TEST_SETTINGS: dict[str, object] = {
    "session_timeout_ms": 6_000,
    "heartbeat_interval_ms": 300,
    "metadata_max_age_ms": 5_000,
    "delivery_timeout_s": 60.0,
    "linger_ms": 0,
}


class BrokerControl(Protocol):
    """What the tests use of the ``kafka_broker`` fixture (deploy/kafka.py's handle)."""

    bootstrap: str
    port: int
    operator_tls: KafkaTls

    def restart(self, pause_seconds: float = 10.0) -> None: ...

    def tls_for(self, agency_id: str, country: str = "XA") -> KafkaTls: ...


@pytest.fixture(
    params=[
        pytest.param("in_process", id="in_process"),
        pytest.param("kafka", id="kafka", marks=pytest.mark.kafka),
    ]
)
async def transport(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Transport]:
    if request.param == "kafka":
        broker: BrokerControl = request.getfixturevalue("kafka_broker")
        impl: Transport = KafkaTransport(
            broker.bootstrap, tls=broker.operator_tls, **KAFKA_TEST_SETTINGS
        )
    else:
        impl = InProcessTransport(tmp_path_factory.mktemp("bus") / "bus.db")
    yield impl
    await impl.close()


@pytest.fixture
def names() -> Names:
    return Names(uuid.uuid4().hex[:10])


class Names:
    """Unique topic and group names for one test."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix

    def topic(self, label: str) -> str:
        return f"nrm.XA.test-{label}.{self.suffix}"

    def group(self, label: str) -> str:
        return f"test-{label}-{self.suffix}"


@pytest.fixture
async def members() -> AsyncIterator[list[Consumer]]:
    """Consumers registered here are stopped after the test, even if it failed."""
    started: list[Consumer] = []
    yield started
    for consumer in started:
        await consumer.stop()
