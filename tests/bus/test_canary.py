"""Canary: a marker seeded into every free-text field of the demo scenario (the personal
fields, and the explanation of a consent override, whose legal basis is now a code)
appears only in the views of entitled agencies, never in clear: not in any byte the bus
wrote (stores, transport, key stores, registry, notifier, and on the process topology the
broker's log segments and every process's log), in any webhook notification, in its logs,
nor in any listing an API serves of the clear parts (inbox, log, dead letters, audit
leaves and decisions, erasures, disclosure records)."""

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
    listings = clear_listings(running, case)
    # Positive control: entitled agencies do open the marked fields.
    opened = {a: str(evs) for a, evs in views.items()}
    assert CANARY in opened["child-protection"]
    assert f"presumed child {CANARY}" in opened["child-protection"]  # the override's why
    assert f"presumed child {CANARY}" not in opened["safe-house"]  # decision: not its own
    # Every listing of clear parts, from every node: no marker, yet something listed.
    assert len(listings) > 8 * 6 and all(text for text in listings.values())
    assert [where for where, text in listings.items() if CANARY in text] == []
    assert "ia-0007" in listings["nrm-authority /v1/audit/decisions"]  # positive control
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


def clear_listings(bus: Running, case: str) -> dict[str, str]:
    """Every API listing of clear parts, on every node, as an oversight body or the
    node's own agency reads it: where -> the answer's text."""
    out: dict[str, str] = {}
    paths = [
        "/v1/inbox?limit=500",
        "/v1/log?limit=500",
        "/v1/dead-letters",
        "/v1/audit/leaves?limit=1000",
        "/v1/audit/decisions",
        "/v1/audit/erasures",
        f"/v1/cases/{case}/disclosures",
    ]
    for agency in bus.agencies:
        with bus.client(agency) as c:
            assert c.post("/v1/audit/checkpoints").status_code == 201  # the log caught up
            for path in paths:
                r = c.get(path)
                assert r.status_code == 200, (agency, path, r.text)
                out[f"{agency} {path.split('?')[0]}"] = r.text
    with bus.client("nrm-authority") as c:
        r = c.get(f"/v1/cases/{case}/disclosure-record")
        assert r.status_code == 200, r.text
        out["nrm-authority disclosure-record"] = r.text
    return out
