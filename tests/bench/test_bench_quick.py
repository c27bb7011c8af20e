"""`nrm bench --quick` keeps working: every stage runs and reports positive figures.

No timing is asserted (shared CI machines are noisy); the point is that the benchmark
runs end to end, on the session's Kafka broker, and its JSON has every expected stage,
the process topology's rows included (`--processes`: a process per piece, its CPU read
from each process and summed).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from nrm.cli import main

pytestmark = pytest.mark.kafka


def _positive(row: dict[str, Any], *keys: str) -> None:
    for key in keys:
        assert isinstance(row[key], int | float) and row[key] > 0, (key, row)


@pytest.mark.slow  # about 2.5 minutes: three buses, one of them 14 processes
def test_quick_bench_writes_every_stage(
    kafka_broker: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "bench",
            "--quick",
            "--kafka",
            kafka_broker.bootstrap,
            "--kafka-pki",
            str(kafka_broker.pki.folder),
            "--out",
            str(tmp_path),
            "--no-progress",
            "--profile",
            "--processes",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "End to end" in printed and "Transport baseline" in printed

    doc = json.loads((tmp_path / "bench.json").read_text())
    svg = (tmp_path / "bench.svg").read_text()
    assert svg.startswith("<svg") and "</svg>" in svg
    assert doc["skipped"] == []
    assert doc["machine"]["nproc"] >= 1

    assert {r["recipients"] for r in doc["crypto_floor"]} == {1, 3, 10}
    for r in doc["crypto_floor"]:
        _positive(r, "seal_us", "open_us", "floor_seal_us", "floor_open_us", "seal_ratio")
    store = doc["store_append"]
    _positive(store, "append_us", "raw_sqlite_us", "raw_sqlite_cpu_us", "ratio_to_raw_sqlite")
    # The stack's floor: its three parts measured in this run, and their sum.
    stack = doc["stack_floor"]
    _positive(stack, "https_request_us", "kafka_client_us", "durable_commits_us", "stack_us")
    assert stack["stack_us"] == round(
        stack["https_request_us"] + stack["kafka_client_us"] + stack["durable_commits_us"], 1
    )
    assert stack["ratio_with_crypto_to_crypto_floor"] > 1
    assert stack["kafka_producer_us"] > 0 and 0 < stack["batch_share_at_floor"] < 1
    assert stack["sender_batched_us"] < stack["sender_single_us"]
    assert stack["cpu_and_batch_targets_together"] in (True, False)
    assert "Stack floor" in printed and "CPU and batch targets together" in printed

    raw = doc["transport_baseline"]
    assert {(r["transport"], r["recipients"]) for r in raw} >= {
        (t, n) for t in ("embedded", "kafka") for n in (1, 3, 10)
    }
    for r in raw:
        _positive(r, "events_per_s", "p99_ms", "record_bytes_mean")
        if r["transport"] == "kafka":
            _positive(r, "client_cpu_us_per_event")
        assert r["delivered"] == r["events"] * r["recipients"]

    e2e = doc["end_to_end"]
    labels = {"saturation", "light", "half-saturation", "overload", "batch"}
    buses = {("embedded", "one process"), ("kafka", "one process"), ("kafka", "processes")}
    for transport, bus in buses:
        rows = [r for r in e2e if (r["transport"], r["bus"]) == (transport, bus)]
        assert {r["label"] for r in rows} == labels, (transport, bus)
    for r in e2e:
        # Every request answered: accepted, or (overload) shed with Retry-After; none lost.
        assert r["errors"] == 0 and r["dropped"] == 0 and r["missing"] == 0, r
        assert r["shed_without_retry_after"] == 0, r
        _positive(r, "events_per_s", "p50_ms", "p99_ms", "cpu_us_per_event", "accepted")
        if r["label"] == "saturation":
            _positive(r, "ratio_to_raw_throughput")
        if r["label"] == "batch":
            assert r["accepted"] == r["requests"] * r["batch"], r
        if r["bus"] == "processes":
            # Every event arrived at every recipient (followed through their logs), and
            # the CPU is every bus process's, the sending node's own counted apart.
            assert r["delivered"] == r["accepted"] * r["recipients"], r
            assert r["cpu_processes"] > len(r["cpu_by_part"]) > 1, r
            assert r["cpu_processes_gone"] == 0, r  # no piece crashed or restarted
            _positive(r, "sender_cpu_s", "sender_cpu_us_per_event")
            _positive(r["cpu_by_part"], "sender", "other nodes")  # the idle may tick 0
            assert {"registry", "notifier", "provisioner"} <= set(r["cpu_by_part"]), r
            assert r["sender_cpu_s"] < r["bus_cpu_s"], r
        else:
            assert r["cpu_processes"] == 1 and r["sender_cpu_s"] is None, r

    idle = {(r["transport"], r["bus"]): r for r in doc["idle"]}
    assert set(idle) == buses
    for r in idle.values():
        _positive(r, "cpu_s_per_s")
    assert {"sender", "other nodes", "notifier"} <= set(idle[("kafka", "processes")]["by_part"])

    growth = doc["growth"]
    assert len(growth["rows"]) >= 2
    for g in growth["rows"]:
        _positive(g, "probe_events_per_s", "store_mb", "rebuild_s", "receiver_events")
    assert growth["rows"][-1]["receiver_events"] > growth["rows"][0]["receiver_events"]
    assert {"append_cost_ratio", "memory_ratio", "rebuild_1m_s", "flat"} <= set(growth)

    _positive(doc["audit"], "inclusion_proof_us_median", "full_verification_s", "sha256_floor_s")
    assert doc["profile"]["top"]["project_total"], "the sampler saw no project code"
    verdicts = {t["target"].split(" ")[0]: t["met"] for t in doc["targets"]}
    assert {"CPU", "throughput", "light", "half", "overload", "batch", "append", "rebuild"} <= set(
        verdicts
    ), doc["targets"]
    assert all(t["met"] in (True, False, None) for t in doc["targets"])
    # Judged on the topology they are stated for, and saying so.
    assert all("kafka, processes" in t["target"] for t in doc["targets"][:6]), doc["targets"]
    batch_target = next(t for t in doc["targets"] if t["target"].startswith("batch"))
    assert batch_target["met"] in (True, False), batch_target
    assert "CPU seconds per piece of the bus" in printed


def test_bench_without_kafka_says_so(tmp_path: Path) -> None:
    """--no-kafka is explicit in the output; only cheap stages here to keep CI short."""
    out = io.StringIO()
    from nrm.bench.runner import Options, run

    doc = run(
        Options(
            quick=True,
            no_kafka=True,
            out=tmp_path,
            progress=False,
            stages=("crypto", "store", "stack", "transport", "audit"),
        ),
        out,
    )
    assert "skipped: Kafka stages (--no-kafka)" in out.getvalue()
    assert all(r["transport"] == "embedded" for r in doc["transport_baseline"])
    # Without Kafka's part the request is measured, and no floor is claimed.
    assert doc["stack_floor"]["https_request_us"] > 0
    assert "stack_us" not in doc["stack_floor"] and "Stack floor" not in out.getvalue()
    assert (tmp_path / "bench.json").exists()


@pytest.mark.parametrize("buses", [["--processes"], ["--bus", "kafka"], ["--bus", "processes"]])
def test_buses_on_kafka_contradict_no_kafka(
    buses: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "--no-kafka", *buses]) == 2
    assert "contradict --no-kafka" in capsys.readouterr().err
