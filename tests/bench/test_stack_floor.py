"""The stack's floor: a bare HTTPS server really answers and its CPU is read; the floor is
the sum of this run's parts, and no floor is claimed when a part was not measured."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from nrm.bench import stack_floor, targets
from nrm.bench.runner import _ratios


def parts(https: float | None = 140.0, kafka: float | None = 560.0) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "crypto_floor": [{"recipients": 3, "floor_seal_us": 90.0, "floor_open_us": 135.0}],
        "store_append": {"raw_sqlite_cpu_us": 50.0},
        "transport_baseline": [
            {
                "transport": "kafka",
                "recipients": 3,
                "offered_events_per_s": 200.0,
                "client_cpu_us_per_event": 2_000.0,
            },
        ],
        "end_to_end": [],
    }
    if https is not None:
        doc["stack_floor"] = {"https_request_us": https}
    if kafka is not None:
        doc["transport_baseline"].append(
            {
                "transport": "kafka",
                "recipients": 3,
                "offered_events_per_s": "saturation",
                "events_per_s": 600.0,
                "client_cpu_us_per_event": kafka,
            }
        )
    return doc


def test_the_floor_is_one_request_the_kafka_loop_at_saturation_and_a_commit_per_node() -> None:
    found = stack_floor.floor(parts())
    assert found == {
        "recipients": 3,
        "https_request_us": 140.0,
        "kafka_client_us": 560.0,  # the saturation row, not the one at 200/s
        "durable_commits_us": 200.0,  # the sender and three recipients
        "stack_us": 900.0,
    }


@pytest.mark.parametrize("missing", ["https", "kafka"])
def test_no_floor_is_claimed_without_every_part(missing: str) -> None:
    doc = parts(**{missing: None})
    assert stack_floor.floor(doc) is None
    _ratios(doc)
    assert "stack_us" not in (doc.get("stack_floor") or {})


def test_the_cpu_target_reports_the_bare_stack_beside_the_bus() -> None:
    doc = parts()
    doc["end_to_end"] = [
        {
            "transport": "kafka",
            "bus": "processes",
            "label": "saturation",
            "recipients": 3,
            "delivered": 3_000,
            "accepted": 1_000,
            "bus_cpu_s": 8.0,
            "sender_cpu_s": 3.0,
            "events_per_s": 150.0,
        }
    ]
    _ratios(doc)
    # crypto floor 90 + 3 × 135 = 495 µs; the stack 900 µs on top of it: 2.82×.
    assert doc["stack_floor"]["crypto_floor_us"] == 495.0
    assert doc["stack_floor"]["ratio_with_crypto_to_crypto_floor"] == 2.818
    cpu = next(t for t in doc["targets"] if t["target"].startswith("CPU"))
    assert cpu["measured"] == "8,000 us = 16.2x (the bare stack with the crypto: 2.8x)"
    assert cpu["met"] is False and targets.CPU_TIMES_FLOOR == 4.0


def test_a_bare_https_server_answers_and_its_cpu_is_read() -> None:
    found = asyncio.run(stack_floor.https_request_us(requests=60, lanes=3))
    assert found["requests"] == 60 and found["lanes"] == 3
    assert found["body_bytes"] > 1_000  # a follow-up event's body, about 1 KiB of text
    assert found["https_request_us"] > 0 and found["requests_per_s"] > 0
