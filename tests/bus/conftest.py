"""The bus tests' fixture: each runs on the embedded bus and on the process topology."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bus.running import Running, RunningBus, RunningProcesses

TOPOLOGIES = [
    pytest.param("embedded", id="embedded"),
    pytest.param("processes", id="processes", marks=[pytest.mark.kafka, pytest.mark.slow]),
]


@pytest.fixture(params=TOPOLOGIES)
def running(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Running]:
    """A country's bus with the demo agencies, data under `tmp_path / "data"`: in this
    process, or each piece its own process on a broker of the test's own."""
    data = tmp_path / "data"
    if request.param == "embedded":
        bus: Running = RunningBus(data)
    else:
        broker = request.getfixturevalue("fresh_kafka_broker")
        bus = RunningProcesses(data, broker.bootstrap)
    try:
        yield bus
    finally:
        bus.stop()
