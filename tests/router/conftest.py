from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bus.running import RunningBus, running_bus


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBus]:
    data: Path = tmp_path_factory.mktemp("bus")
    with running_bus(data) as b:
        yield b
