"""The bus tests' fixture: each runs on the embedded bus and on the process topology.

The embedded bus is made afresh for each test. The process topology (a registry, eight
nodes and a notifier as processes, on a broker of its own) is started once and shared by
the tests that ask for it, as a deployment serves case after case: each test plays its
own case, and what a test changes of the bus (the notifier's clock) is put back after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.bus.running import Running, RunningBus, RunningProcesses
from tests.plugins.kafka_broker import secured_kafka

TOPOLOGIES = [
    pytest.param("embedded", id="embedded"),
    pytest.param("processes", id="processes", marks=[pytest.mark.kafka, pytest.mark.slow]),
]


@pytest.fixture(scope="package")
def processes_bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProcesses]:
    """One country as a process per piece, on a broker of its own, for this package's
    tests; everything it writes (stores, logs, the broker's segments) lies under
    `running.written`."""
    base = tmp_path_factory.mktemp("process-bus")
    with secured_kafka(base / "kafka") as broker:
        bus = RunningProcesses(base / "data", broker, written=base)
        try:
            yield bus
        finally:
            bus.stop()


@pytest.fixture(params=TOPOLOGIES)
def running(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Running]:
    """A country's bus with the demo agencies: in this process (data under
    `tmp_path / "data"`), or the shared process topology."""
    if request.param == "embedded":
        bus: Running = RunningBus(tmp_path / "data")
        try:
            yield bus
        finally:
            bus.stop()
        return
    shared: RunningProcesses = request.getfixturevalue("processes_bus")
    try:
        yield shared
    finally:
        shared.bus.clock_offset = timedelta(0)
        shared.close_readers()
