"""Canary: a marker seeded into every personal field of the demo scenario appears only in
the views of entitled agencies, never in any byte the bus wrote (stores, transport, key
stores, registry, notifier, and on the process topology the broker's log segments and
every process's log), in any webhook notification, nor in this process's logs."""

from __future__ import annotations

import asyncio
import io
import logging

import pytest

from nrm.demo import CANARY, run_demo, timeline
from tests.bus.running import Running


def test_canary_only_in_entitled_views(running: Running, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    out = io.StringIO()
    case = running.run(run_demo(running.bus, out), timeout=240)  # fails on a leak in a webhook
    views = running.run(timeline(running.bus, case, out), timeout=60)
    running.run(asyncio.sleep(0.5))
    # Positive control: entitled agencies do open the marked fields.
    opened = {a: str(evs) for a, evs in views.items()}
    assert CANARY in opened["child-protection"]
    assert f"Terminal 2 {CANARY}" not in opened["nrm-authority"]  # location withheld (R5)
    assert f"12 Hidden Lane {CANARY}" not in opened["border-police"]  # shelter address
    assert f"12 Hidden Lane {CANARY}" in opened["safe-house"]
    assert views["consulate-xb"] == []  # R4: nothing after asylum, nothing before either
    assert "case.escalated" in out.getvalue() and "signed, verified" in out.getvalue()
    # Every byte the bus wrote (its data, and on processes the broker's segments and
    # every process's log), and every log line here: no marker in clear.
    files = [p for p in running.written.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"store.db", "notifier.db", "audit.db", "case-keys.db"} <= names
    segments = [p for p in files if p.suffix == ".log" and p.parent.name.startswith("nrm.XA.")]
    assert "bus.db" in names or segments  # the transport's bytes are among them
    marker = CANARY.encode()
    leaks = [str(p) for p in files if marker in p.read_bytes()]
    assert leaks == []
    assert CANARY not in caplog.text
