"""The whole demo scenario over a real Apache Kafka broker, checked node by node.

The same eight agency nodes as the embedded default, but every event crosses the session's
broker. Each node's view must hold exactly the events the scenario sent it or it sent,
each once, and the refused steps must have left no trace anywhere.
"""

from __future__ import annotations

import io
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from nrm.demo import play, scenario, timeline
from tests.bus.running import running_bus

pytestmark = pytest.mark.kafka


def expected_views() -> dict[str, Counter[tuple[str, str]]]:
    """Per agency, the (direction, type) pairs the accepted steps put in its view."""
    views: dict[str, Counter[tuple[str, str]]] = {}
    for step in scenario():
        if step.expect != 201:
            continue
        views.setdefault(step.agency, Counter())[("sent", step.event_type)] += 1
        for r in step.recipients:
            views.setdefault(r, Counter())[("received", step.event_type)] += 1
    return views


def test_demo_scenario_over_kafka_every_view(kafka_broker: Any, tmp_path: Path) -> None:
    with running_bus(tmp_path, kafka=kafka_broker) as rb:
        out = io.StringIO()
        t0 = time.monotonic()
        case = rb.run(play(rb.bus, out), timeout=240)
        elapsed = time.monotonic() - t0
        views = rb.run(timeline(rb.bus, case, out), timeout=60)
    expected = expected_views()
    for agency, events in views.items():
        got = Counter((e["direction"], e["type"]) for e in events)
        assert got == expected.get(agency, Counter()), (agency, got)
        ids = [e["event_id"] for e in events]
        assert len(ids) == len(set(ids)), f"{agency} holds an event twice"
    assert views["consulate-xb"] == []  # R4: the refused step reached nobody
    assert "FAIL" not in out.getvalue()
    print(f"demo over Kafka: {sum(len(v) for v in views.values())} views in {elapsed:.1f}s")
