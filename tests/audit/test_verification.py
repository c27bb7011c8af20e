"""The pure verifier, exhaustively: signatures and keys, cosignatures, forks, shrinking,
inconsistent or missing proofs, leaf problems, history, cross-node completeness, R7."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contracts.audit_verification import (
    CheckpointRejected,
    FindingKind,
    LeafEntry,
    LogReport,
    SeenLog,
    accountability_findings,
    consistency_pairs,
    decision_of,
    envelope_leaf_hash,
    open_node_checkpoint,
    report_json,
    sizes_to_prove,
    verify_exchange,
    verify_log,
)
from contracts.transparency import (
    SIG_TYPE_COSIGNATURE_V1,
    Checkpoint,
    MerkleTree,
    NoteSigner,
    NoteVerifier,
    add_cosignature,
    sign_checkpoint,
)
from tests.audit.conftest import T0, Agencies, case_story, envelope, origin_of

ORIGIN = origin_of("xa-police")


class FakeLog:
    """An honest log in memory, signed with the agency's directory key."""

    def __init__(self, agencies: Agencies, envelopes: Sequence[Any], agency: str = "xa-police"):
        self.origin = origin_of(agency)
        self.signer = NoteSigner(self.origin, agencies.signer(agency))
        self.envs = [e.model_dump(mode="json") for e in envelopes]
        self.tree = MerkleTree()
        self.tree.extend_hashes(envelope_leaf_hash(e) for e in self.envs)

    def note(self, size: int | None = None, signer: NoteSigner | None = None) -> str:
        n = self.tree.size if size is None else size
        return sign_checkpoint(Checkpoint(self.origin, n, self.tree.root(n)), signer or self.signer)

    def leaves(self, size: int | None = None) -> list[LeafEntry]:
        n = self.tree.size if size is None else size
        return [
            LeafEntry(i, e["id"], self.tree.leaf_hash(i), e) for i, e in enumerate(self.envs[:n])
        ]

    def proofs(self, notes: Sequence[str], seen: SeenLog | None = None) -> dict:
        return {(a, b): self.tree.consistency_proof(a, b) for a, b in sizes_to_prove(notes, seen)}

    def verify(self, notes: Sequence[str], agencies: Agencies, **kw: Any) -> LogReport:
        lines = notes[-1].split("\n") if notes else []
        size = int(lines[1]) if len(lines) > 1 and lines[1].isdigit() else None
        return verify_log(
            notes, self.leaves(size), self.proofs(notes, kw.get("seen")), agencies.directory, **kw
        )


def story(n: int = 3) -> list[Any]:
    return [e for c in range(n) for e in case_story(f"case-{c:08d}", T0 + timedelta(days=c))]


def test_an_honest_log_with_history_verifies(agencies: Agencies) -> None:
    log = FakeLog(agencies, story())
    notes = [log.note(2), log.note(5), log.note()]
    report = log.verify(notes, agencies)
    assert report.ok and report.agency_id == "xa-police"
    assert report.seen is not None and set(report.seen.checkpoints) == {2, 5, 9}
    again = log.verify([log.note()], agencies, seen=report.seen)
    assert again.ok


def test_signatures_keys_and_origin(agencies: Agencies) -> None:
    log = FakeLog(agencies, story(1))
    stranger = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
    report = log.verify([log.note(signer=stranger)], agencies)
    assert report.findings[0].kind is FindingKind.BAD_SIGNATURE and report.checkpoint is None
    # signed by the CA's key under the police origin: not the police's key
    wrong = NoteSigner(ORIGIN, agencies.signer("xa-ca"))
    assert log.verify([log.note(signer=wrong)], agencies).findings[0].kind is (
        FindingKind.BAD_SIGNATURE
    )
    tampered = log.note().replace("\n3\n", "\n2\n", 1)
    assert log.verify([tampered], agencies).findings[0].kind is FindingKind.BAD_SIGNATURE
    assert log.verify(["garbage"], agencies).findings[0].kind is FindingKind.MALFORMED
    assert log.verify([], agencies).findings[0].kind is FindingKind.MALFORMED
    for origin, kind in (
        ("nrm.example/XB/xa-police", FindingKind.WRONG_ORIGIN),
        ("nrm.example/XA/xa-nobody", FindingKind.UNKNOWN_AGENCY),
        ("xa-police", FindingKind.WRONG_ORIGIN),
    ):
        with pytest.raises(CheckpointRejected) as exc:
            open_node_checkpoint(
                sign_checkpoint(Checkpoint(origin, 0, log.tree.root(0)), log.signer),
                agencies.directory,
            )
        assert exc.value.kind is kind
    seen = SeenLog(origin_of("xa-ca"), {})
    assert log.verify([log.note()], agencies, seen=seen).findings[0].kind is (
        FindingKind.WRONG_ORIGIN
    )


def test_cosignatures(agencies: Agencies) -> None:
    log = FakeLog(agencies, story(1))
    witness_key = Ed25519PrivateKey.generate()
    witness = NoteSigner("nrm.example/XA/registry", witness_key, SIG_TYPE_COSIGNATURE_V1)
    vkey = NoteVerifier(witness.name, witness_key.public_key(), SIG_TYPE_COSIGNATURE_V1)
    cosigned = add_cosignature(log.note(), witness, 1_700_000_000)
    report = log.verify([cosigned], agencies, witnesses=[vkey], min_cosignatures=1)
    assert report.ok and report.cosignatures == 1
    bare = log.verify([log.note()], agencies, witnesses=[vkey], min_cosignatures=1)
    assert bare.findings[0].kind is FindingKind.TOO_FEW_COSIGNATURES
    forged = cosigned[:-10] + ("A" if cosigned[-10] != "A" else "B") + cosigned[-9:]
    bad = log.verify([forged], agencies, witnesses=[vkey])
    assert [f.kind for f in bad.findings] == [FindingKind.BAD_COSIGNATURE]


def test_fork_shrinking_inconsistent_and_missing_proofs(agencies: Agencies) -> None:
    log = FakeLog(agencies, story())
    seen = log.verify([log.note(5)], agencies).seen
    assert seen is not None
    other = FakeLog(agencies, story())  # same sizes, other events: another root
    fork = other.verify([other.note(5)], agencies, seen=seen)
    assert (fork.findings[0].kind, fork.findings[0].checkpoint_size) == (FindingKind.FORK, 5)
    assert fork.first_bad_leaf is not None and fork.first_bad_leaf.leaf == 0
    grown = other.verify([other.note()], agencies, seen=seen)
    assert grown.findings[0].kind is FindingKind.INCONSISTENT
    assert grown.first_bad_checkpoint and grown.first_bad_checkpoint.checkpoint_size == 9
    shrunk = log.verify([log.note(9), log.note(4)], agencies)
    assert shrunk.findings[0].kind is FindingKind.SHRINKING
    notes = [log.note(5), log.note()]
    missing = verify_log(notes, log.leaves(), {}, agencies.directory)
    assert missing.findings[0].kind is FindingKind.MISSING_PROOF
    wrong = {(5, 9): log.tree.consistency_proof(4, 9)}
    bad = verify_log(notes, log.leaves(), wrong, agencies.directory)
    assert bad.findings[0].kind is FindingKind.INCONSISTENT


def test_leaf_problems_each_named(agencies: Agencies) -> None:
    log = FakeLog(agencies, story())
    note = log.note()
    leaves = log.leaves()
    short = verify_log([note], leaves[:-1], {}, agencies.directory)
    assert short.findings[0].kind is FindingKind.LEAF_RANGE
    changed = dict(leaves[2].envelope or {}, subject="case-zzzzzzzz")
    bad = [*leaves[:2], LeafEntry(2, leaves[2].event_id, leaves[2].leaf_hash, changed), *leaves[3:]]
    r = verify_log([note], bad, {}, agencies.directory)
    assert [(f.kind, f.leaf) for f in r.findings] == [(FindingKind.LEAF_HASH, 2)]
    # the operator also serves the matching hash: then the root gives it away
    forged = LeafEntry(2, leaves[2].event_id, envelope_leaf_hash(changed), changed)
    r = verify_log([note], [*leaves[:2], forged, *leaves[3:]], {}, agencies.directory)
    assert r.findings[0].kind is FindingKind.ROOT_MISMATCH
    dup = [*leaves[:4], LeafEntry(4, leaves[1].event_id, leaves[4].leaf_hash, leaves[4].envelope)]
    r = verify_log([log.note(5)], dup, {}, agencies.directory)
    kinds = {f.kind for f in r.findings}
    assert FindingKind.DUPLICATE_EVENT in kinds and FindingKind.LEAF_EVENT_ID in kinds
    gone = [*leaves[:3], LeafEntry(3, leaves[3].event_id, leaves[3].leaf_hash, None), *leaves[4:]]
    r = verify_log([note], gone, {}, agencies.directory)
    assert [(f.kind, f.leaf) for f in r.findings] == [(FindingKind.LEAF_MISSING, 3)]
    renumbered = [*leaves[:3], LeafEntry(7, *list(vars(leaves[3]).values())[1:]), *leaves[4:]]
    r = verify_log([note], renumbered, {}, agencies.directory)
    assert [(f.kind, f.leaf) for f in r.findings] == [(FindingKind.LEAF_RANGE, 3)]


def test_history_changed_names_the_rewritten_leaf(agencies: Agencies) -> None:
    log = FakeLog(agencies, story())
    seen = log.verify([log.note()], agencies).seen
    assert seen is not None
    hashes = list(seen.leaf_hashes)
    hashes[6] = b"\x07" * 32
    altered = SeenLog(seen.origin, seen.checkpoints, hashes)
    r = log.verify([log.note()], agencies, seen=altered)
    assert [(f.kind, f.leaf) for f in r.findings] == [(FindingKind.HISTORY_CHANGED, 6)]
    assert SeenLog.from_json(seen.to_json(), hashes).leaf_hashes[6] == b"\x07" * 32


def test_consistency_pairs() -> None:
    assert consistency_pairs([9, 0, 3, 3, 5]) == [(3, 5), (5, 9)]
    assert consistency_pairs([4]) == []


def _exchange(agencies: Agencies) -> tuple[list[Any], FakeLog, FakeLog]:
    envs = story(2)
    police = FakeLog(agencies, envs)
    ca = FakeLog(agencies, [e for e in envs if "xa-ca" in (e.sender, *e.recipients)], "xa-ca")
    return envs, police, ca


def test_cross_node_completeness(agencies: Agencies) -> None:
    envs, police, ca = _exchange(agencies)
    reports = {
        "xa-police": police.verify([police.note()], agencies),
        "xa-ca": ca.verify([ca.note()], agencies),
    }
    assert verify_exchange(reports) == []
    # CA's log lacks the police's screening of case 1 (leaf 3 at the police)
    ca_short = FakeLog(agencies, [e for e in ca_envs(envs) if e.id != envs[3].id], "xa-ca")
    reports["xa-ca"] = ca_short.verify([ca_short.note()], agencies)
    [f] = verify_exchange(reports)
    assert (f.kind, f.origin, f.leaf, f.event_id) == (
        FindingKind.NOT_RECEIVED,
        police.origin,
        3,
        str(envs[3].id),
    )
    # within the grace period it is only in transit
    late = verify_exchange(reports, now=T0 + timedelta(days=1), grace=timedelta(days=7))
    assert [x.kind for x in late] == [FindingKind.IN_TRANSIT] and not late[0].is_error
    # the police's log lacks a decision CA logged sending to it
    police_short = FakeLog(agencies, [e for e in envs if e.id != envs[2].id])
    reports = {
        "xa-police": police_short.verify([police_short.note()], agencies),
        "xa-ca": ca.verify([ca.note()], agencies),
    }
    kinds = sorted((f.kind, f.origin) for f in verify_exchange(reports))
    assert kinds == [(FindingKind.NOT_RECEIVED, ca.origin)]
    # one node stored a different envelope under the same event id
    other = [
        e.model_copy(update={"sealed": {"x": "y"}}) if e.id == envs[0].id else e
        for e in ca_envs(envs)
    ]
    ca_other = FakeLog(agencies, other, "xa-ca")
    reports = {
        "xa-police": police.verify([police.note()], agencies),
        "xa-ca": ca_other.verify([ca_other.note()], agencies),
    }
    found = verify_exchange(reports)
    assert [f.kind for f in found] == [FindingKind.EXCHANGE_MISMATCH]
    assert found[0].leaf == 0


def test_received_but_never_sent(agencies: Agencies) -> None:
    envs, police, _ = _exchange(agencies)
    invented = envelope(
        "referral.requested",
        "xa-police",
        ["xa-ca"],
        "case-00000000",
        T0,
        {"referral_id": "r9", "to_agency": "xa-ca", "service": "legal-aid"},
    )
    ca = FakeLog(agencies, [*ca_envs(envs), invented], "xa-ca")
    reports = {
        "xa-police": police.verify([police.note()], agencies),
        "xa-ca": ca.verify([ca.note()], agencies),
    }
    [f] = verify_exchange(reports)
    assert (f.kind, f.origin, f.event_id) == (FindingKind.NOT_SENT, ca.origin, str(invented.id))


def ca_envs(envs: Sequence[Any]) -> list[Any]:
    return [e for e in envs if "xa-ca" in (e.sender, *e.recipients)]


def test_decisions_and_accountability(agencies: Agencies) -> None:
    ok = envelope(
        "risk.assessed",
        "xa-ca",
        ["xa-police"],
        "case-00000001",
        T0,
        {"serious_risk": False, "assessed_by_officer": "ca-9"},
    )
    nameless = envelope(
        "residence.granted", "xa-immigration", ["xa-police"], "case-00000001", T0, {}
    )
    d = decision_of(ok.model_dump(mode="json"))
    assert d is not None and (d.agency, d.officer, d.details) == (
        "xa-ca",
        "ca-9",
        {"serious_risk": False},
    )
    assert decision_of(case_story("case-00000001", T0)[1].model_dump(mode="json")) is None
    log = FakeLog(agencies, [ok, nameless])
    report = log.verify([log.note()], agencies)
    [w] = accountability_findings(report)
    assert (w.kind, w.leaf, w.is_error) == (FindingKind.NO_OFFICER, 1, False)
    body = report_json([report], [w])
    assert '"ok": true' in body and "no officer" in body


def test_key_rotation_keeps_old_checkpoints_verifiable(agencies: Agencies) -> None:
    from contracts.keystore import rotated
    from tests.audit.conftest import build_agencies

    fresh = build_agencies(("xa-police", "xa-ca"))
    log = FakeLog(fresh, story(1))
    old_note = log.note()
    fresh.keys["xa-police"], _ = rotated(fresh.keys["xa-police"], now=datetime.now(UTC))
    # the directory lists both the old and the new signing key
    records = [p.public_record() for p in fresh.keys["xa-police"].pairs]
    directory = fresh.directory.model_copy(
        update={
            "agencies": [
                a.model_copy(update={"keys": records}) if a.id == "xa-police" else a
                for a in fresh.directory.agencies
            ]
        }
    )
    assert open_node_checkpoint(old_note, directory).size == 3
