"""The whole demo scenario over a real Apache Kafka broker, checked node by node.

The same eight agency nodes as the embedded default, but every event crosses the session's
broker. Each node's view must hold exactly the events the scenario sent it or it sent,
each once, plus what another agency passed on to it (R10: events that agency holds), and
the refused steps must have left no trace anywhere.
"""

from __future__ import annotations

import io
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from nrm.demo import FORWARD, play, scenario, timeline
from tests.bus.running import running_bus

pytestmark = pytest.mark.kafka


def expected_views() -> dict[str, Counter[tuple[str, str]]]:
    """Per agency, the (direction, type) pairs the accepted steps put in its view."""
    views: dict[str, Counter[tuple[str, str]]] = {}
    for step in scenario():
        if step.expect != 201 or step.event_type == FORWARD:  # passing on sends no event
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
    passers = {s.agency: s.recipients for s in scenario() if s.event_type == FORWARD}
    for agency, events in views.items():
        own = [e for e in events if not e.get("forwarded_by")]
        got = Counter((e["direction"], e["type"]) for e in own)
        assert got == expected.get(agency, Counter()), (agency, got)
        ids = [e["event_id"] for e in events]
        assert len(ids) == len(set(ids)), f"{agency} holds an event twice"
        for e in events:
            if e.get("forwarded_by"):  # passed on: by a passer, to this agency, of its own
                passer = e["forwarded_by"]
                assert agency in passers.get(passer, ()), (agency, e)
                assert e["event_id"] in {x["event_id"] for x in views[passer]}, (agency, e)
    for passer, to in passers.items():
        assert all(any(e.get("forwarded_by") == passer for e in views[r]) for r in to)
    assert views["consulate-xb"] == []  # R4: the refused step reached nobody
    assert "FAIL" not in out.getvalue()
    print(f"demo over Kafka: {sum(len(v) for v in views.values())} views in {elapsed:.1f}s")
