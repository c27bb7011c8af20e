"""The node's audit log over a real SQLite store: catch-up, restart, checkpoints, proofs,
and RFC 9162 test vectors through the log's own SQLite tree and event-id lookup."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from contracts.audit_verification import envelope_leaf_hash
from contracts.transparency import (
    open_checkpoint,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)
from referral_router.audit.log import (
    AuditLog,
    AuditLogError,
    AuditRangeError,
    NoCheckpoint,
    UnknownEvent,
)
from referral_router.store.case_store import CaseStore
from tests.audit.conftest import (
    T0,
    Agencies,
    Node,
    case_story,
    origin_of,
    record,
    sqlite_env,
)
from tests.transparency import make_vectors

VECTORS = Path(__file__).parents[1] / "transparency" / "vectors"


def test_catch_up_logs_every_envelope_in_store_order_once(police: Node) -> None:
    envs = case_story("case-aaaaaaaa", T0) + case_story("case-bbbbbbbb", T0 + timedelta(days=1))
    record(police.store, envs[:3], "xa-police")
    assert police.audit.catch_up() == 3
    record(police.store, envs[3:], "xa-police")
    assert police.audit.catch_up() == 3
    assert police.audit.catch_up() == 0  # idempotent
    logged = police.store.log(0, 100)
    leaves = police.audit.leaves(0, 100)
    assert [v.event_id for v in leaves] == [str(e.envelope.id) for e in logged]
    assert [v.position for v in leaves] == [e.position for e in logged]
    hashes = [envelope_leaf_hash(e.envelope.model_dump(mode="json")) for e in logged]
    assert [v.leaf_hash for v in leaves] == hashes
    assert police.audit.root() == root_from_leaves(hashes)
    assert {v.direction for v in leaves} == {"sent", "received"}


def test_restart_resumes_and_refuses_another_origin(
    tmp_path: Path, agencies: Agencies, police: Node
) -> None:
    record(police.store, case_story("case-aaaaaaaa", T0), "xa-police")
    police.audit.catch_up()
    first = police.audit.issue_checkpoint()
    police.audit.close()
    again = AuditLog(
        police.store,
        tmp_path / "xa-police.audit",
        origin_of("xa-police"),
        agencies.signer("xa-police"),
    )
    assert again.size == 3 and again.root() == first.root
    assert again.latest_checkpoint() == first
    record(again.store, case_story("case-bbbbbbbb", T0), "xa-police")
    assert again.catch_up() == 3
    proof = again.consistency_proof(3, 6)
    verify_consistency(3, 6, first.root, again.root(), proof)
    again.close()
    with pytest.raises(AuditLogError, match="log of"):
        AuditLog(
            police.store, tmp_path / "xa-police.audit", origin_of("xa-ca"), agencies.signer("xa-ca")
        )


def test_checkpoints_are_signed_notes_kept_in_history(agencies: Agencies, police: Node) -> None:
    with pytest.raises(NoCheckpoint):
        police.audit.latest_checkpoint()
    empty = police.audit.issue_checkpoint()
    assert empty.size == 0
    record(police.store, case_story("case-aaaaaaaa", T0), "xa-police")
    one = police.audit.issue_checkpoint()  # catches up by itself
    same = police.audit.issue_checkpoint()
    assert same == one and police.audit.checkpoint_count() == 2
    assert [c.size for c in police.audit.checkpoints()] == [0, 3]
    assert [c.size for c in police.audit.checkpoints(1, 5)] == [3]
    cp = open_checkpoint(one.note, police.audit.verifier, origin_of("xa-police"))
    assert (cp.size, cp.root) == (3, one.root)
    assert one.note.startswith("nrm.example/XA/xa-police\n3\n")


def test_inclusion_and_consistency_proofs_and_precise_errors(police: Node) -> None:
    envs = case_story("case-aaaaaaaa", T0) + case_story("case-bbbbbbbb", T0)
    record(police.store, envs, "xa-police")
    police.audit.catch_up()
    for size in range(1, 7):
        root = police.audit.root(size)
        for i, view in enumerate(police.audit.leaves(0, size)):
            p = police.audit.inclusion_proof(view.event_id, size)
            assert p.index == i
            verify_inclusion(p.leaf_hash, p.index, p.size, p.proof, root)
        for old in range(0, size + 1):
            proof = police.audit.consistency_proof(old, size)
            verify_consistency(old, size, police.audit.root(old), root, proof)
    with pytest.raises(UnknownEvent):
        police.audit.inclusion_proof("00000000-0000-0000-0000-000000000000")
    last = police.audit.leaves(5, 1)[0].event_id
    with pytest.raises(AuditRangeError, match="leaf 5"):
        police.audit.inclusion_proof(last, 3)
    with pytest.raises(AuditRangeError, match=r"0\.\.6"):
        police.audit.consistency_proof(2, 7)
    with pytest.raises(AuditRangeError):
        police.audit.consistency_proof(5, 4)
    with pytest.raises(AuditRangeError):
        police.audit.leaves(-1, 5)


def test_decisions_name_agency_and_officer(police: Node) -> None:
    record(police.store, case_story("case-aaaaaaaa", T0), "xa-police")
    police.audit.catch_up()
    [(idx, d)] = police.audit.decisions()
    assert idx == 2 and d.agency == "xa-ca" and d.officer == "ca-4"
    assert d.details == {"stage": "reasonable-grounds"} and d.case == "case-aaaaaaaa"
    assert police.audit.decisions(3) == []


def test_a_new_event_is_found_by_inclusion_without_explicit_catch_up(police: Node) -> None:
    envs = case_story("case-aaaaaaaa", T0)
    record(police.store, envs, "xa-police")
    assert police.audit.inclusion_proof(str(envs[1].id)).index == 1


def test_rfc9162_vectors_through_the_logs_sqlite_tree(tmp_path: Path, agencies: Agencies) -> None:
    store = CaseStore(env=sqlite_env(tmp_path / "empty.sqlite"))
    audit = AuditLog(
        store, tmp_path / "v.audit", origin_of("xa-police"), agencies.signer("xa-police")
    )
    hashes = make_vectors.leaf_hashes()
    audit._append_leaves([(i + 1, f"v{i}", h) for i, h in enumerate(hashes[:500])])
    audit._append_leaves([(i + 1, f"v{i}", h) for i, h in enumerate(hashes) if i >= 500])
    roots = json.loads((VECTORS / "roots.json").read_text())["roots"]
    for r in roots:
        assert audit.root(r["size"]).hex() == r["root"]
    for v in json.loads((VECTORS / "inclusion.json").read_text())["vectors"]:
        p = audit.inclusion_proof(f"v{v['index']}", v["size"])
        assert [h.hex() for h in p.proof] == v["proof"] and p.leaf_hash.hex() == v["leaf_hash"]
    for v in json.loads((VECTORS / "consistency.json").read_text())["vectors"]:
        proof = audit.consistency_proof(v["old_size"], v["new_size"])
        assert [h.hex() for h in proof] == v["proof"]
    audit.close()
    store.close()


def test_rfc6962_reference_roots(tmp_path: Path, agencies: Agencies) -> None:
    from contracts.transparency import hash_leaf

    ref = json.loads((VECTORS / "rfc6962_reference.json").read_text())
    store = CaseStore(env=sqlite_env(tmp_path / "empty.sqlite"))
    audit = AuditLog(
        store, tmp_path / "r.audit", origin_of("xa-police"), agencies.signer("xa-police")
    )
    leaves = [hash_leaf(bytes.fromhex(x)) for x in ref["leaves_hex"]]
    audit._append_leaves([(i + 1, f"r{i}", h) for i, h in enumerate(leaves)])
    assert [audit.root(n).hex() for n in range(len(leaves) + 1)] == ref["roots"]
    for v in ref["inclusion"]:
        p = audit.inclusion_proof(f"r{v['index']}", v["size"])
        assert [h.hex() for h in p.proof] == v["proof"]
    audit.close()
    store.close()


def test_a_crash_mid_batch_leaves_tree_and_leaf_table_together(police: Node) -> None:
    record(police.store, case_story("case-aaaaaaaa", T0), "xa-police")
    police.audit.catch_up()
    before = police.audit.root()
    with pytest.raises(sqlite3.IntegrityError):  # a duplicate position: the batch fails whole
        police.audit._append_leaves([(99, "x", b"\x00" * 32), (99, "y", b"\x01" * 32)])
    assert police.audit.size == 3 and police.audit.root() == before
    assert len(police.audit.leaves(0, 10)) == 3
