"""`nrm up --processes` as a user runs it: a process per piece on a secured broker of its
own (each node its agency's certificate, the provisioning applied before the nodes start
and followed by a process of its own, every service on HTTPS), `nrm status` showing each
with its health and lags, a node killed with -9 restarted, and SIGTERM stopping
everything in order (the broker last), leaving no process behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from nrm.serving import verify_context
from nrm.supervisor import alive
from tests.faults.drills import until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SIGTERM_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})\] INFO Terminating process")


def nrm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nrm.cli", *args], cwd=ROOT, text=True, capture_output=True
    )


def answers(url: str, ca_file: str) -> bool:
    try:
        return httpx.get(url, timeout=5, verify=verify_context(ca_file)).status_code == 200
    except httpx.HTTPError:
        return False


def test_up_processes_status_restart_and_an_orderly_stop(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = (tmp_path / "up.out").open("w")
    up = subprocess.Popen(
        [sys.executable, "-m", "nrm.cli", "up", "--processes", "--data", str(data), "--port", "0"],
        cwd=ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    state_file = data / "XA" / "processes.json"
    try:
        until(lambda: "Ctrl-C stops" in (tmp_path / "up.out").read_text(), 180, "nrm up ready")
        report = nrm("status", "--data", str(data))
        assert report.returncode == 0, report.stdout + report.stderr
        assert re.search(r"node/border-police +\d+ running +ready +0 +0 +0", report.stdout)
        assert "registry" in report.stdout and "notifier" in report.stdout
        (country,) = json.loads(nrm("status", "--data", str(data), "--json").stdout)
        kinds = [p["kind"] for p in country["processes"]]
        assert kinds.count("node") == 8 and kinds.count("registry") == kinds.count("notifier") == 1
        assert kinds.count("provisioner") == 1
        assert all(p["health"] == "ready" and p["cpu_seconds"] > 0 for p in country["processes"])
        assert len({p["pid"] for p in country["processes"]}) == 11  # each its own process
        served = [p["url"] for p in country["processes"] if p["kind"] != "provisioner"]
        assert all(url.startswith("https://") for url in served)
        # Plain HTTP gets no answer from a node: it speaks TLS only.
        plain = served[1].replace("https://", "http://")
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{plain}/healthz", timeout=5)
        nodes = [p for p in country["processes"] if p["kind"] == "node"]
        assert all(p["lag"] == {"relay": 0, "inbox": 0} for p in nodes)
        # The address book lets `nrm token` and clients find the nodes of this bus.
        assert json.loads((data / "XA" / "endpoints.json").read_text())["pid"] == up.pid

        victim = next(p for p in nodes if p["agency"] == "immigration")
        os.kill(victim["pid"], signal.SIGKILL)

        def restarted() -> bool:
            now = json.loads(state_file.read_text())
            seen = next(p for p in now["processes"] if p["name"] == victim["name"])
            return bool(seen["restarts"] == 1 and seen["pid"] not in (None, victim["pid"]))

        until(restarted, 60, "the killed node restarted", step=0.2)
        ready = f"{victim['url']}/readyz"
        until(lambda: answers(ready, country["ca_file"]), 60, "the restarted node ready")
        (after,) = json.loads(nrm("status", "--data", str(data), "--json").stdout)
        seen = next(p for p in after["processes"] if p["name"] == victim["name"])
        assert (seen["restarts"], seen["health"], seen["last_exit"]) == (1, "ready", -9)

        pids = [p["pid"] for p in json.loads(state_file.read_text())["processes"]]
        broker_pid = json.loads((data / "kafka" / "broker" / "broker.json").read_text())["pid"]
        up.send_signal(signal.SIGTERM)
        assert up.wait(90) == 0
    finally:
        if up.poll() is None:
            up.kill()
        out.close()
    # Everything stopped: no child, no broker left running.
    assert not any(alive(p) for p in [*pids, broker_pid])
    final = json.loads(state_file.read_text())
    assert {p["status"] for p in final["processes"]} == {"stopped"}
    assert {p["last_exit"] for p in final["processes"]} == {0}  # each stopped cleanly
    # In order: every process had stopped before the broker was told to stop.
    broker_log = (data / "kafka" / "broker" / "broker.log").read_text().splitlines()
    (line,) = [m for m in map(SIGTERM_LINE.match, broker_log) if m]
    broker_told = time.mktime(time.strptime(line.group(1), "%Y-%m-%d %H:%M:%S"))
    broker_told += int(line.group(2)) / 1000
    assert state_file.stat().st_mtime <= broker_told + 0.001
    assert not (data / "XA" / "endpoints.json").exists()  # the address book went with it
