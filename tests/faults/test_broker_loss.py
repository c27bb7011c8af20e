"""Fault drill on a three-broker cluster: kill -9 of a broker while events flow through the
process topology.

The registry, the provisioner, two agencies' nodes and the notifier run as processes on
three secured KRaft voters (replication 3, min.insync.replicas 2), each node given every
broker's address; the nodes' producers are as always idempotent with acks=all. Under a
load of HTTPS clients the broker leading most partitions of the inboxes is killed with
SIGKILL: the sender goes on accepting, the partitions it led get new leaders and the bus
goes on delivering on two brokers; the broker is started again on its own data and
rejoins (every inbox partition three in sync again). Every event arrives once
(`tests.faults.drills.Figures`: sent, received once, doubled, lost, time to recover).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from contracts.vocabulary import Role
from nrm.broker import SecuredKafka
from nrm.embedded import AgencySpec
from referral_router.transport.topics import inbox_topic
from tests.bus.running import RunningProcesses
from tests.faults.conftest import KAFKA_ENV
from tests.faults.drills import Load, arrivals, report, until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

POLICE, AUTHORITY = "border-police", "nrm-authority"
AGENCIES = (
    AgencySpec(POLICE, "Border Police", (Role.FIRST_RESPONDER,)),
    AgencySpec(AUTHORITY, "Identification Authority", (Role.COMPETENT_AUTHORITY,)),
)
INBOXES = [inbox_topic("XA", a.id) for a in AGENCIES]
EVENTS = 240
#: Accepted after the restarted broker is back in sync before the load is halted.
AFTER_REJOIN = 40
#: Seconds the killed broker stays down once the bus delivers again without it.
DOWN_AFTER_RECOVERY = 5.0


@pytest.fixture
def country(
    kafka_cluster: SecuredKafka, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningProcesses]:
    """The process topology on the session's cluster (stopped before anyone else uses it:
    its provisioning owns the country's ACLs on those brokers meanwhile)."""
    assert kafka_cluster.is_running(), "the cluster must start the drill whole"
    base = tmp_path_factory.mktemp("broker-loss")
    bus = RunningProcesses(base, kafka_cluster, agencies=AGENCIES, node_env=KAFKA_ENV)
    try:
        yield bus
    finally:
        bus.stop()


async def _partitions(kafka: SecuredKafka) -> list[dict[str, Any]]:
    """Every partition of the inbox topics: its leader, replicas and in-sync replicas."""
    admin = AIOKafkaAdminClient(**kafka.client_options(), request_timeout_ms=5_000)
    await admin.start()
    try:
        described = await admin.describe_topics(INBOXES)
    finally:
        await admin.close()
    return [p for topic in described for p in topic["partitions"]]


def partitions(country: RunningProcesses) -> list[dict[str, Any]]:
    return country.run(_partitions(country.kafka), timeout=30)


def in_sync_everywhere(country: RunningProcesses) -> bool:
    try:
        found = partitions(country)
    except Exception:  # a metadata answer from a broker still catching up: ask again
        return False
    return bool(found) and all(len(p["isr"]) == 3 for p in found)


def test_kill_9_of_a_broker_loses_and_doubles_nothing_and_it_rejoins(
    country: RunningProcesses,
) -> None:
    cluster = country.kafka.handle
    every_broker = {b.bootstrap for b in cluster.brokers}
    assert len(every_broker) == 3
    for spec in country.bus.nodes.values():  # each node can reach whichever brokers live
        assert set(spec.env["NRM_TRANSPORT"].removeprefix("kafka://").split(",")) == every_broker
    provisioner = country.bus.supervisor.children["provisioner"].spec.argv
    assert set(provisioner[provisioner.index("--bootstrap") + 1].split(",")) == every_broker
    before = partitions(country)
    assert before and all(len(p["replicas"]) == 3 and len(p["isr"]) == 3 for p in before)
    leads = Counter(p["leader"] for p in before)
    victim_id, led = leads.most_common(1)[0]
    victim = next(b for b in cluster.brokers if b.node_id == victim_id)

    # Events flowing, then the broker leading most inbox partitions killed under them.
    first = Load(country, POLICE, AUTHORITY, count=EVENTS, threads=6, tag="broker-loss")
    sending = first.start()
    until(lambda: len(first.accepted) >= EVENTS // 4, 60, "events flowing")
    victim.kill()
    t_kill = time.monotonic()
    at_kill = len(first.accepted)
    assert sending.is_alive(), "the load ended before the broker was killed"

    def delivering_after_kill() -> bool:
        after = first.accepted[at_kill:]
        return bool(after) and arrivals(country, AUTHORITY, after)[0] > 0

    delivering = until(
        delivering_after_kill, 90, "an event accepted after the kill arriving", step=0.2
    )

    def led_and_in_sync_without_it() -> bool:
        found = partitions(country)
        return bool(found) and all(
            p["leader"] not in (victim_id, -1) and victim_id not in p["isr"] for p in found
        )

    until(led_and_in_sync_without_it, 15, "every inbox partition led without the killed broker")
    time.sleep(DOWN_AFTER_RECOVERY)
    sending.join(180)
    assert not sending.is_alive()
    # More events, and the broker started again (same data, same ports) while they flow.
    second = Load(country, POLICE, AUTHORITY, count=10_000, threads=6, tag="rejoin")
    sending = second.start()
    until(lambda: len(second.accepted) >= 10, 60, "events flowing on two brokers")
    down_for = time.monotonic() - t_kill
    victim.start()
    restarted = time.monotonic() - t_kill - down_for
    accepted_by_restart = len(second.accepted)
    rejoined = until(lambda: in_sync_everywhere(country), 90, "every inbox replica in sync", 0.5)
    in_sync = len(second.accepted)
    until(lambda: len(second.accepted) >= in_sync + AFTER_REJOIN, 60, "events after the rejoin")
    second.halt()
    sending.join(60)
    assert not sending.is_alive()
    sent = first.accepted + second.accepted
    caught_up = until(
        lambda: arrivals(country, AUTHORITY, sent)[2] == 0, 120, "every event arrived", step=0.5
    )
    time.sleep(2)  # anything doubled would show now
    figures = report(
        "broker-kill-of-three",
        country,
        AUTHORITY,
        sent,
        {
            "delivering_again_after_kill": delivering,
            "broker_ready_after_restart": restarted,
            "in_sync_again_after_ready": rejoined,
            "all_arrived_after_load": caught_up,
        },
        killed_broker=victim_id,
        inbox_partitions_it_led=led,
        inbox_partitions=len(before),
        broker_down_seconds=round(down_for, 2),
        accepted_before_kill=at_kill,
        accepted_while_down=len(first.accepted) - at_kill + accepted_by_restart,
        accepted_while_restarting=in_sync - accepted_by_restart,
        accepted_after_rejoin=len(second.accepted) - in_sync,
        client_retries=first.retries + second.retries,
    )
    total = EVENTS + len(second.accepted)
    assert len(set(sent)) == len(sent) == total
    assert len(second.accepted) - in_sync >= AFTER_REJOIN
    assert (figures.received_once, figures.doubled, figures.lost) == (total, 0, 0)
    assert cluster.is_running()
    # No process of the bus died for it: the nodes rode the broker's loss out.
    assert {n: c.restarts for n, c in country.bus.supervisor.children.items() if c.restarts} == {}
