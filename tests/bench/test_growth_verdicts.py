"""The growth stage's verdicts from its rows: the ratio from the first checkpoint, and the
slope of the last stretch, which tells caches that filled once from memory still growing."""

from __future__ import annotations

from typing import Any

from nrm.bench.growth import memory_slope, verdicts


def row(events: int, rss: dict[str, float], cpu: int = 5_000) -> dict[str, Any]:
    return {
        "events_sent": events,
        "rss_mb": rss,
        "probe_cpu_us_per_event": cpu,
        "rebuild_1m_events_s": 60.0,
        "receiver_events": events,
    }


def test_the_slope_is_bytes_per_event_of_the_process_that_grew_most() -> None:
    before = row(100_000, {"sender": 200.0, "receiver": 300.0})
    after = row(200_000, {"sender": 210.0, "receiver": 301.0})
    assert memory_slope(before, after) == 10 * 2**20 / 100_000


def test_caches_that_filled_early_show_in_the_ratio_not_in_the_last_slope() -> None:
    rows = [row(10_000, {"bus": 200.0}), row(80_000, {"bus": 280.0}), row(160_000, {"bus": 280.0})]
    found = verdicts(rows)
    assert found["memory_ratio"] == 1.4 and not found["flat"]
    assert found["memory_bytes_per_event_last"] == 0


def test_memory_still_growing_shows_in_the_last_slope() -> None:
    rows = [row(10_000, {"bus": 200.0}), row(20_000, {"bus": 201.0}), row(40_000, {"bus": 203.0})]
    found = verdicts(rows)
    assert found["flat"]
    assert found["memory_bytes_per_event_last"] == round(2 * 2**20 / 20_000)


def test_one_checkpoint_has_no_slope() -> None:
    assert verdicts([row(10_000, {"bus": 200.0})])["memory_bytes_per_event_last"] == 0
