"""Canary: a marker seeded into every personal field of the demo scenario appears only in
the views of entitled agencies, never in any byte the bus wrote (stores, transport, key
stores, registry) nor in its logs."""

from __future__ import annotations

import asyncio
import io
import logging
from pathlib import Path

import pytest

from nrm.demo import CANARY, play, timeline
from tests.bus.running import running_bus


def test_canary_only_in_entitled_views(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with running_bus(tmp_path) as bus:
        out = io.StringIO()
        case = bus.run(play(bus.bus, out), timeout=120)
        views = bus.run(timeline(bus.bus, case, out), timeout=60)
        bus.run(asyncio.sleep(0.5))
    # Positive control: entitled agencies do open the marked fields.
    opened = {a: str(evs) for a, evs in views.items()}
    assert CANARY in opened["child-protection"]
    assert f"Terminal 2 {CANARY}" not in opened["nrm-authority"]  # location withheld (R5)
    assert f"12 Hidden Lane {CANARY}" not in opened["border-police"]  # shelter address
    assert f"12 Hidden Lane {CANARY}" in opened["safe-house"]
    assert views["consulate-xb"] == []  # R4: nothing after asylum, nothing before either
    # Every byte written under the data folder, and every log line: no marker in clear.
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "bus.db" for p in files) and any(p.name == "store.db" for p in files)
    marker = CANARY.encode()
    leaks = [str(p) for p in files if marker in p.read_bytes()]
    assert leaks == []
    assert CANARY not in caplog.text
