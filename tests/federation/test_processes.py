"""The cross-border story over two deployments of processes: each country its own
registry, its own CA, its own secured Kafka broker (a principal per agency, ACLs from
its directory) and a process per piece; the gateways (`nrm gateway serve`) talk mutual
TLS to each other, each pinning the other's certificate, and each delivers into its own
country's bus only."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nrm.federation_cli import run_demo
from nrm.topology import FederatedProcesses
from tests.bus.running import records_on
from tests.faults.conftest import KAFKA_ENV
from tests.plugins.kafka_broker import secured_kafka

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


@pytest.fixture
def xb_broker(tmp_path: Path) -> Iterator[Any]:
    """XB's own broker, beside XA's (`fresh_kafka_broker`)."""
    with secured_kafka(tmp_path / "kafka-xb", "XB") as broker:
        yield broker


async def _topics(kafka: Any) -> set[str]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(**kafka.client_options())
    await consumer.start()
    try:
        return {t for t in await consumer.topics() if t.startswith("nrm.")}
    finally:
        await consumer.stop()


def test_the_cross_border_story_over_two_deployments_of_processes(
    tmp_path: Path, fresh_kafka_broker: Any, xb_broker: Any
) -> None:
    brokers = {"XA": fresh_kafka_broker, "XB": xb_broker}
    pair = FederatedProcesses(tmp_path / "data", brokers=brokers, node_env=KAFKA_ENV)
    out = io.StringIO()
    code = asyncio.run(run_demo(tmp_path / "data", None, out, pair=pair))
    text = out.getvalue()
    assert code == 0, text
    assert "XA: nrm audit verify over 9 nodes: every log verified" in text
    assert "XB: nrm audit verify over 3 nodes: every log verified" in text
    for event in ("return.planning-started", "return.plan-agreed", "return.completed"):
        assert f"  {event}" in text and "proven in XA/nrm-authority" in text
    # The second case (asylum lodged) is refused by the authority's own node (R4) before
    # anything of it could go towards XB.
    assert "tells XB's gateway its risk assessment: refused, asylum is lodged (R4)" in text
    # Each country's bus is its own: XA's broker carries XA's topics only, XB's XB's,
    # and the forwardings XB's gateway delivered were records on XB's own bus.
    xa, xb = (asyncio.run(_topics(b)) for b in brokers.values())
    assert xa and all(t.startswith("nrm.XA.") for t in xa)
    assert xb and all(t.startswith("nrm.XB.") for t in xb)
    assert "nrm.XB.inbox.reintegration-office" in xb
    assert "nrm.XA.inbox.nrm-authority" in xa
    left = asyncio.run(records_on(xb_broker, "nrm.XB.inbox.reintegration-office"))
    assert left == []  # delivered, applied, and deleted from the bus (grants with them)
    # Every process was its own, and every one stopped.
    for country in ("XA", "XB"):
        state = (tmp_path / "data" / country / "processes.json").read_text()
        assert '"gateway/federation-' in state and '"status": "running"' not in state
