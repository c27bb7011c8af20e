"""Rewriting the store is detected and located: one row tampered with, one deleted, two
reordered (SQLite and PostgreSQL), a log forked or rebuilt. The verifier logic gets what
the oversight API serves and must name the first bad leaf or checkpoint."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from contracts.audit_verification import FindingKind, LogReport, SeenLog, verify_log
from referral_router.audit.log import AuditLog
from referral_router.store.case_store import CaseStore
from tests.audit.conftest import T0, Agencies, case_story, origin_of, record, served, sqlite_env


@dataclass
class Backend:
    """A store plus raw SQL access to its events table, as a rogue operator has it."""

    store: CaseStore
    rows: Callable[[], list[tuple[int, bytes]]]  # (position, state) of envelope rows
    set_state: Callable[[int, bytes], None]
    delete: Callable[[int], None]
    close: Callable[[], None]


def sqlite_backend(tmp_path: Path) -> Backend:
    db = tmp_path / "store.sqlite"
    store = CaseStore(env=sqlite_env(db))
    conn = sqlite3.connect(db)
    topic = "%EnvelopeRecorded"

    def rows() -> list[tuple[int, bytes]]:
        q = "SELECT rowid, state FROM stored_events WHERE topic LIKE ? ORDER BY rowid"
        return [(int(p), bytes(s)) for p, s in conn.execute(q, (topic,))]

    def set_state(position: int, state: bytes) -> None:
        conn.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (state, position))
        conn.commit()

    def delete(position: int) -> None:
        conn.execute("DELETE FROM stored_events WHERE rowid = ?", (position,))
        conn.commit()

    def close() -> None:
        conn.close()
        store.close()

    return Backend(store, rows, set_state, delete, close)


def postgres_backend(server: Any) -> Backend:
    import psycopg

    name = f"Router{uuid.uuid4().hex[:8]}"
    store_cls = type(name, (CaseStore,), {"name": name})
    store = store_cls(env={"PERSISTENCE_MODULE": "eventsourcing.postgres", **server.env()})
    table = f"{name.lower()}_events"
    conn = psycopg.connect(server.dsn, autocommit=True)

    def rows() -> list[tuple[int, bytes]]:
        q = f"SELECT notification_id, state FROM {table} WHERE topic LIKE %s ORDER BY 1"
        return [(int(p), bytes(s)) for p, s in conn.execute(q, ("%EnvelopeRecorded",))]

    def set_state(position: int, state: bytes) -> None:
        conn.execute(f"UPDATE {table} SET state = %s WHERE notification_id = %s", (state, position))

    def delete(position: int) -> None:
        conn.execute(f"DELETE FROM {table} WHERE notification_id = %s", (position,))

    def close() -> None:
        conn.close()
        store.close()

    return Backend(store, rows, set_state, delete, close)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        b = sqlite_backend(tmp_path)
    else:
        b = postgres_backend(request.getfixturevalue("postgres_server"))
    yield b
    b.close()


def logged(tmp_path: Path, agencies: Agencies, store: CaseStore, name: str = "a") -> AuditLog:
    return AuditLog(
        store, tmp_path / f"{name}.audit", origin_of("xa-police"), agencies.signer("xa-police")
    )


def fill(store: CaseStore, cases: int = 3) -> None:
    for c in range(cases):
        record(store, case_story(f"case-{c:08d}", T0 + timedelta(days=c)), "xa-police")


def check(audit: AuditLog, agencies: Agencies, seen: SeenLog | None = None) -> LogReport:
    notes, leaves, proofs = served(audit, seen)
    return verify_log(notes, leaves, proofs, agencies.directory, seen=seen)


def edit(state: bytes, **changes: Any) -> bytes:
    data = json.loads(state)
    data["envelope"]["operational"].update(changes)
    return json.dumps(data).encode()


def test_an_untouched_log_verifies(backend: Backend, tmp_path: Path, agencies: Agencies) -> None:
    fill(backend.store)
    audit = logged(tmp_path, agencies, backend.store)
    audit.issue_checkpoint()
    report = check(audit, agencies)
    assert report.ok, [f.line() for f in report.findings]
    assert report.checkpoint is not None and report.checkpoint.size == 9


def test_one_tampered_row_is_named(backend: Backend, tmp_path: Path, agencies: Agencies) -> None:
    fill(backend.store)
    audit = logged(tmp_path, agencies, backend.store)
    audit.issue_checkpoint()
    position, state = backend.rows()[4]
    backend.set_state(position, edit(state, to_agency="xa-elsewhere"))
    report = check(audit, agencies)
    assert not report.ok
    first = report.findings[0]
    assert (first.kind, first.leaf) == (FindingKind.LEAF_HASH, 4)
    assert first.event_id == audit.leaves(4, 1)[0].event_id
    assert [f.leaf for f in report.findings if f.is_error] == [4]


def test_one_deleted_row_is_named(backend: Backend, tmp_path: Path, agencies: Agencies) -> None:
    fill(backend.store)
    audit = logged(tmp_path, agencies, backend.store)
    audit.issue_checkpoint()
    backend.delete(backend.rows()[2][0])
    report = check(audit, agencies)
    assert report.first_bad_leaf is not None
    assert (report.first_bad_leaf.kind, report.first_bad_leaf.leaf) == (FindingKind.LEAF_MISSING, 2)


def test_two_reordered_rows_are_named(backend: Backend, tmp_path: Path, agencies: Agencies) -> None:
    fill(backend.store)
    audit = logged(tmp_path, agencies, backend.store)
    audit.issue_checkpoint()
    rows = backend.rows()
    (p3, s3), (p6, s6) = rows[3], rows[6]
    backend.set_state(p3, s6)
    backend.set_state(p6, s3)
    report = check(audit, agencies)
    bad = sorted({f.leaf for f in report.findings if f.is_error and f.leaf is not None})
    assert bad == [3, 6] and report.findings[0].leaf == 3
    assert {f.kind for f in report.findings} == {FindingKind.LEAF_HASH, FindingKind.LEAF_EVENT_ID}


def test_a_log_rebuilt_after_a_deletion_is_caught_by_what_was_seen(
    backend: Backend, tmp_path: Path, agencies: Agencies
) -> None:
    fill(backend.store)
    audit = logged(tmp_path, agencies, backend.store)
    audit.issue_checkpoint()
    first = check(audit, agencies)
    assert first.ok and first.seen is not None
    backend.delete(backend.rows()[5][0])  # the operator deletes, then rebuilds the log
    fill_more = case_story("case-99999999", T0 + timedelta(days=9))
    record(backend.store, fill_more, "xa-police")
    rebuilt = logged(tmp_path, agencies, backend.store, "rebuilt")
    rebuilt.issue_checkpoint()  # 8 + 3 = 11 leaves: bigger, so no shrinking to notice
    report = check(rebuilt, agencies, first.seen)
    assert not report.ok
    kinds = [f.kind for f in report.findings if f.is_error]
    assert kinds[0] is FindingKind.INCONSISTENT
    assert report.first_bad_checkpoint is not None
    assert report.first_bad_checkpoint.checkpoint_size == 11
    assert report.first_bad_leaf is not None
    assert (report.first_bad_leaf.kind, report.first_bad_leaf.leaf) == (
        FindingKind.HISTORY_CHANGED,
        5,
    )


def test_a_fork_two_roots_for_one_size(tmp_path: Path, agencies: Agencies) -> None:
    b = sqlite_backend(tmp_path)
    fill(b.store)
    audit = logged(tmp_path, agencies, b.store)
    audit.issue_checkpoint()
    honest = check(audit, agencies)
    assert honest.ok and honest.seen is not None
    # a copy of the store, one row rewritten, logged afresh with the same key and origin
    copy_dir = tmp_path / "copy"
    copy_dir.mkdir()
    with (
        sqlite3.connect(tmp_path / "store.sqlite") as src,
        sqlite3.connect(copy_dir / "store.sqlite") as dst,
    ):
        src.backup(dst)  # the store runs in WAL mode: copy through SQLite, not the file
    forked_backend = sqlite_backend(copy_dir)
    position, state = forked_backend.rows()[7]
    forked_backend.set_state(position, edit(state, stage="conclusive"))
    fork = logged(copy_dir, agencies, forked_backend.store)
    fork.issue_checkpoint()
    alone = check(fork, agencies)
    assert alone.ok  # a consistent lie on its own; only what was seen exposes it
    report = check(fork, agencies, honest.seen)
    first = report.findings[0]
    assert (first.kind, first.checkpoint_size) == (FindingKind.FORK, 9)
    assert report.first_bad_leaf is not None and report.first_bad_leaf.leaf == 7
    forked_backend.close()
    b.close()


def test_a_shrunk_log_is_flagged(tmp_path: Path, agencies: Agencies) -> None:
    b = sqlite_backend(tmp_path)
    fill(b.store)
    audit = logged(tmp_path, agencies, b.store)
    audit.issue_checkpoint()
    seen = check(audit, agencies).seen
    b.delete(b.rows()[-1][0])
    rebuilt = logged(tmp_path, agencies, b.store, "rebuilt")
    rebuilt.issue_checkpoint()
    report = check(rebuilt, agencies, seen)
    assert report.findings[0].kind is FindingKind.SHRINKING
    assert report.findings[0].checkpoint_size == 8
    b.close()
