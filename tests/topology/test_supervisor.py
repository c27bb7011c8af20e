"""The supervisor on stand-in processes (`child.py`): start in order once ready, only the
environment it is given, restart with a doubling backoff after kill -9, stop in reverse
order with SIGKILL past the grace, a start that fails names the log, and no orphan when
the supervisor itself is killed outright."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nrm.embedded import free_port
from nrm.supervisor import ProcessSpec, StartFailed, Supervisor, alive, cpu_seconds

HERE = Path(__file__).resolve().parent


def spec(folder: Path, name: str, *flags: str, env: dict[str, str] | None = None) -> ProcessSpec:
    port = free_port()
    argv = (sys.executable, str(HERE / "child.py"), name, str(port), str(folder / "journal"))
    return ProcessSpec(
        name=name,
        kind="test",
        argv=(*argv, *flags),
        env=env or {},
        url=f"http://127.0.0.1:{port}",
        log=folder / f"{name}.log",
    )


def journal(folder: Path) -> list[dict[str, object]]:
    path = folder / "journal"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
async def supervisor(tmp_path: Path) -> AsyncIterator[Supervisor]:
    s = Supervisor(tmp_path / "state.json", grace=1.0)
    yield s
    await s.stop()


async def test_starts_in_order_once_ready_and_stops_in_reverse(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    os.environ["NRM_TEST_SECRET"] = "not for children"  # the supervisor's own environment
    try:
        await supervisor.start([spec(tmp_path, "registry", env={"ONLY_MINE": "1"})])
        await supervisor.start([spec(tmp_path, "node-a"), spec(tmp_path, "node-b")])
        await supervisor.start([spec(tmp_path, "notifier")])
    finally:
        del os.environ["NRM_TEST_SECRET"]
    state = json.loads((tmp_path / "state.json").read_text())
    assert [p["name"] for p in state["processes"]] == ["registry", "node-a", "node-b", "notifier"]
    assert all(p["status"] == "running" and p["pid"] for p in state["processes"])
    started = {e["name"]: e for e in journal(tmp_path) if e["event"] == "started"}
    assert started["registry"]["t"] < min(started["node-a"]["t"], started["node-b"]["t"])
    assert max(started["node-a"]["t"], started["node-b"]["t"]) < started["notifier"]["t"]
    # Each child has the environment it was given, nothing of the supervisor's.
    assert "ONLY_MINE" in started["registry"]["env"]  # type: ignore[operator]
    assert all("NRM_TEST_SECRET" not in e["env"] for e in started.values())  # type: ignore[operator]
    await supervisor.stop()
    stopped = [e["name"] for e in journal(tmp_path) if e["event"] == "stopped"]
    assert stopped[0] == "notifier" and stopped[-1] == "registry"
    assert set(stopped[1:3]) == {"node-a", "node-b"}
    state = json.loads((tmp_path / "state.json").read_text())
    assert {(p["status"], p["last_exit"]) for p in state["processes"]} == {("stopped", 0)}


async def test_a_killed_process_is_restarted_with_a_doubling_backoff(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    await supervisor.start([spec(tmp_path, "node")])
    child = supervisor.children["node"]
    waits = []
    for _ in range(3):
        pid = child.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        while child.pid in (None, pid) or not await supervisor.probe(child):
            await asyncio.sleep(0.02)
        waits.append(time.monotonic() - killed)
        assert child.last_exit == -signal.SIGKILL
    assert child.restarts == 3
    # Backoff 0.5 s, 1 s, 2 s (plus the start itself): each wait longer than the last.
    assert waits[0] >= 0.5 and waits[1] >= 1.0 and waits[2] >= 2.0, waits
    assert waits[0] < waits[1] < waits[2]
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["processes"][0]["restarts"] == 3
    assert len({e["pid"] for e in journal(tmp_path) if e["event"] == "started"}) == 4


async def test_sigkill_after_the_grace_for_a_process_that_ignores_sigterm(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    await supervisor.start([spec(tmp_path, "stubborn", "--ignore-sigterm")])
    t0 = time.monotonic()
    await supervisor.stop()
    assert time.monotonic() - t0 >= 1.0  # the grace was given
    assert supervisor.children["stubborn"].last_exit == -signal.SIGKILL
    assert [e["event"] for e in journal(tmp_path)] == ["started", "ignored"]


async def test_a_process_that_cannot_start_fails_the_start_with_its_log(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    with pytest.raises(StartFailed, match="boom, cannot start") as failed:
        await supervisor.start([spec(tmp_path, "broken", "--exit-at-once", "3")])
    assert "broken exited 3" in str(failed.value)


def test_no_orphans_when_the_supervisor_is_killed_outright(tmp_path: Path) -> None:
    supervisor = subprocess.Popen(
        [sys.executable, str(HERE / "supervised.py"), str(tmp_path)],
        cwd=HERE.parents[1],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "pids").exists():
            assert supervisor.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        pids = json.loads((tmp_path / "pids").read_text())
        assert all(alive(p) for p in pids.values())
        supervisor.kill()
        supervisor.wait(10)
        deadline = time.monotonic() + 10
        while any(alive(p) for p in pids.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(p) for p in pids.values()), "a child outlived its supervisor"
        # They stopped cleanly (SIGTERM from the kernel), not killed.
        assert {e["name"] for e in journal(tmp_path) if e["event"] == "stopped"} == set(pids)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()


def test_cpu_seconds_of_a_live_process() -> None:
    before = cpu_seconds(os.getpid())
    sum(i * i for i in range(2_000_000))
    assert cpu_seconds(os.getpid()) > before > 0


async def test_a_held_process_stays_down_until_released(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    await supervisor.start([spec(tmp_path, "registry")])
    child = supervisor.children["registry"]
    supervisor.hold("registry")
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    await asyncio.sleep(2.0)  # four times the first backoff
    assert child.pid is None and child.restarts == 0
    assert json.loads((tmp_path / "state.json").read_text())["processes"][0]["held"] is True
    supervisor.release("registry")
    deadline = time.monotonic() + 20
    while not await supervisor.probe(child):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert child.restarts == 1
