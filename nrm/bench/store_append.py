"""The event store alone: `CaseStore.record_sent` of prepared, sealed envelopes (SQLite).

No HTTP, no rules, no sealing: what one sent event costs the store. Its baseline is raw
`sqlite3` with the same durability (WAL, synchronous=FULL, one commit per event) writing
the same envelope bytes, so the ratio is what eventsourcing's aggregate, mapper and
JSON add on top of the disk.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from contracts.vocabulary import Role
from nrm.bench.workload import EVENTS_PER_CASE, SENDER, sealed_envelopes
from referral_router.runtime.node import sqlite_store_env
from referral_router.store.case_store import CaseFile, CaseStore


def _raw_sqlite_us(payloads: list[bytes], folder: Path) -> tuple[float, float]:
    """µs per durable commit of one envelope: wall clock, and this process's CPU."""
    db = sqlite3.connect(str(folder / "raw.db"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
    t0, cpu0 = time.perf_counter(), time.process_time()
    for body in payloads:
        with db:
            db.execute("INSERT INTO events (body) VALUES (?)", (body,))
    us = (time.perf_counter() - t0) / len(payloads) * 1e6
    cpu_us = (time.process_time() - cpu0) / len(payloads) * 1e6
    db.close()
    return us, cpu_us


def run(n_events: int = 2000, recipients: int = 3) -> dict[str, Any]:
    """Append `n_events` sealed envelopes to a fresh store; µs per append and the ratio."""
    envelopes = sealed_envelopes(n_events, recipients)
    roles = {SENDER: frozenset({Role.COMPETENT_AUTHORITY})} | {
        r: frozenset({Role.CHILD_PROTECTION}) for r in envelopes[0].recipients
    }
    with tempfile.TemporaryDirectory(prefix="nrm-bench-store-") as tmp:
        folder = Path(tmp)
        store = CaseStore(env=sqlite_store_env(folder / "store.db"))
        cases: dict[str, CaseFile] = {}
        t0 = time.perf_counter()
        for env in envelopes:
            case = cases.get(env.subject)
            if case is None:
                case = cases[env.subject] = CaseFile.open(env.subject)
            store.record_sent(case, env, roles)
        append_us = (time.perf_counter() - t0) / n_events * 1e6
        store.close()
        bodies = [json.dumps(e.model_dump(mode="json")).encode() for e in envelopes]
        raw_us, raw_cpu_us = _raw_sqlite_us(bodies, folder)
    return {
        "events": n_events,
        "recipients": recipients,
        "events_per_case": EVENTS_PER_CASE,
        "envelope_bytes_mean": round(sum(map(len, bodies)) / len(bodies)),
        "append_us": round(append_us, 1),
        "appends_per_s": round(1e6 / append_us, 1),
        "raw_sqlite_us": round(raw_us, 1),
        "raw_sqlite_cpu_us": round(raw_cpu_us, 1),
        "ratio_to_raw_sqlite": round(append_us / raw_us, 2),
    }
