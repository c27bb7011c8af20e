"""The stack's floor: a bare HTTPS server really answers and its CPU is read; the floor is
the sum of this run's parts, and no floor is claimed when a part was not measured; the
sending node at the floor says whether the CPU and batch targets can hold together."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from nrm.bench import stack_floor, targets
from nrm.bench.runner import _ratios


def parts(
    https: float | None = 140.0, kafka: float | None = 560.0, producing: float = 300.0
) -> dict[str, Any]:
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
        doc["stack_floor"] = {"https_request_us": https, "kafka_producer_us": producing}
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
    # Enough requests for the server's CPU to span many of /proc's 10 ms ticks.
    found = asyncio.run(stack_floor.https_request_us(requests=900, lanes=3))
    assert found["requests"] == 900 and found["lanes"] == 3
    assert found["body_bytes"] > 1_000  # a follow-up event's body, about 1 KiB of text
    assert found["https_request_us"] > 0 and found["requests_per_s"] > 0


def test_at_the_floor_the_two_targets_cannot_hold_together_when_a_batch_costs_too_much() -> None:
    found = stack_floor.at_the_floor(parts())
    assert found is not None
    # Single: 140 request + 90 sealing + 50 commit + 300 producing; batched: sealing and
    # producing, and a 200th of the request and the commit.
    assert found["sender_single_us"] == 580.0
    assert found["sender_batched_us"] == 390.9
    assert found["batch_share_at_floor"] == 0.674
    # The CPU target allows 4 × 495 µs; the recipients need 3 × (135 + 50) + (560 − 300).
    assert found["sender_single_at_most_us"] == 1_980 - 815
    assert found["batched_at_most_us"] == 233.0
    assert found["cpu_and_batch_targets_together"] is False


def test_at_the_floor_the_two_targets_can_hold_together_when_producing_is_cheap() -> None:
    found = stack_floor.at_the_floor(parts(kafka=160.0, producing=20.0))
    assert found is not None
    # Batched 110.95 µs; the recipients need 555 + 140, leaving 1,285; a fifth is 257.
    assert found["sender_batched_us"] == 111.0 and found["batched_at_most_us"] == 257.0
    assert found["cpu_and_batch_targets_together"] is True


def test_the_batch_target_reports_its_share_at_the_floor() -> None:
    doc = parts()
    rows = [("saturation", None, 1_000, 3.0), ("batch", 200, 1_000, 1.0)]
    doc["end_to_end"] = [
        {
            "transport": "kafka",
            "bus": "processes",
            "label": label,
            "batch": batch,
            "recipients": 3,
            "delivered": 3 * accepted,
            "accepted": accepted,
            "bus_cpu_s": 8.0,
            "sender_cpu_s": sender,
            "events_per_s": 150.0,
        }
        for label, batch, accepted, sender in rows
    ]
    _ratios(doc)
    line = next(t for t in doc["targets"] if t["target"].startswith("batch"))
    assert line["measured"] == "1,000 vs 3,000 us = 33% (at the stack's floor: 67%)"
    assert line["met"] is False
