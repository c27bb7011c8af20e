"""The broker is down for 10 s while an agency keeps submitting over HTTP: nothing is lost.

The sending node accepts every event (its store is the outbox; the HTTP path never waits
for Kafka), the relay cannot publish while the broker is away, and once the broker is
back every event reaches the receiving node exactly once.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from referral_router.sending.relay import RELAY_TRACKING
from referral_router.store.case_store import CaseStore

from .conftest import Country, received_ids, screen, wait_for

pytestmark = pytest.mark.kafka

PAUSE_SECONDS = 10.0


def outbox_backlog(store_path: Path) -> int:
    """Positions the sender's relay has not published yet, read from its store."""
    store = CaseStore(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(store_path)}
    )
    try:
        return store.max_position() - store.cursor(RELAY_TRACKING).position
    finally:
        store.close()


def test_broker_outage_events_wait_in_the_outbox_and_all_arrive(
    kafka_country: tuple[Country, Any, Any], kafka_broker: Any
) -> None:
    country, sender_spec, receiver_spec = kafka_country
    receiver = country.node(receiver_spec.id).start()
    sender = country.node(sender_spec.id).start()
    store_path = Path(sender.env["NRM_STORE"].removeprefix("sqlite:"))

    with country.client(sender) as sc, country.client(receiver) as rc:
        before = [screen(sc, receiver_spec.id)["event_id"] for _ in range(3)]
        wait_for(lambda: set(received_ids(rc)) >= set(before), 30, "events before the outage")

        restart = threading.Thread(target=kafka_broker.restart, args=(PAUSE_SECONDS,))
        t0 = time.monotonic()
        restart.start()
        wait_for(lambda: not kafka_broker.is_running(), 30, "the broker to stop", 0.05)
        during: list[str] = []
        # The broker comes back no sooner than PAUSE_SECONDS after it stopped (after t0):
        # submit, then check, strictly inside the outage.
        while time.monotonic() - t0 < PAUSE_SECONDS - 2:
            during.append(screen(sc, receiver_spec.id)["event_id"])  # 201 with Kafka down
            time.sleep(0.25)
        assert not kafka_broker.is_running(), "the checks below must run during the outage"
        assert len(during) >= 10
        backlog = outbox_backlog(store_path)
        assert backlog >= len(during), "accepted events should wait in the outbox"
        assert not set(during) & set(received_ids(rc)), "nothing can cross while it is down"
        restart.join(120)
        assert time.monotonic() - t0 >= PAUSE_SECONDS
        after = [screen(sc, receiver_spec.id)["event_id"] for _ in range(3)]

        every = before + during + after
        wait_for(lambda: set(received_ids(rc)) >= set(every), 90, "every event after restart")
        got = received_ids(rc)
    assert sorted(got) == sorted(every), "an event was lost or applied twice"
    wait_for(lambda: outbox_backlog(store_path) == 0, 30, "the outbox to drain")
