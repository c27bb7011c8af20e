"""The node's side: each checkpoint goes to the witness with a proof from the witnessed
size, and the cosigned note is what the node's audit log serves from then on."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contracts.directory import KeyUse
from contracts.transparency import (
    Note,
    NoteVerifier,
    add_cosignature,
    hash_leaf,
    parse_note,
    verify_cosignature,
)
from contracts.transparency.checkpoint import NoteSigner
from referral_router.audit.log import AuditLog, AuditLogError, NoCheckpoint
from referral_router.audit.witnessing import CheckpointWitnessing, Outcome
from referral_router.store.case_store import CaseStore
from registry.witness import WitnessBook
from tests.registry.conftest import Bus
from tests.witness.conftest import NodeLog, origin_of, submit


@pytest.fixture
def audit(tmp_path: Path, node: NodeLog) -> Iterator[AuditLog]:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "s.db")}
    store = CaseStore(env=env)
    key = node.party.keys.current(KeyUse.SIGNING).ed25519()
    log = AuditLog(store, tmp_path / "audit.db", origin_of(node.party.id), key)
    yield log
    log.close()
    store.close()


def _grow(audit: AuditLog, to: int) -> None:
    start = audit.size
    leaf = [hash_leaf(hashlib.sha256(b"%d" % i).digest()) for i in range(start, to)]
    audit._append_leaves([(start + k + 1, f"event-{start + k}", h) for k, h in enumerate(leaf)])


def _witnessing(bus: Bus, node: NodeLog, audit: AuditLog) -> CheckpointWitnessing:
    return CheckpointWitnessing(audit, "http://unused", node.party.token, http=bus.client)


def test_checkpoints_are_cosigned_and_served_cosigned(
    bus: Bus, node: NodeLog, audit: AuditLog
) -> None:
    witness = WitnessBook(bus.registry).verifier
    w = _witnessing(bus, node, audit)
    _grow(audit, 3)
    assert w.witness_latest().outcome is Outcome.COSIGNED
    assert verify_cosignature(audit.latest_checkpoint().note, witness) > 0
    assert w.witness_latest().outcome is Outcome.ALREADY  # nothing grew: nothing sent

    for size in (4, 9, 10):
        _grow(audit, size)
        result = w.witness_latest()
        assert (result.outcome, result.size) == (Outcome.COSIGNED, size)
    # Every checkpoint in the history carries the cosignature, as oversight reads them.
    notes = [c.note for c in audit.checkpoints()]
    assert len(notes) == 4
    assert all(verify_cosignature(n, witness) > 0 for n in notes)
    assert bus.client.get("/v1/witness/flags", headers=node.party.auth()).json()["items"] == []


def test_a_witness_ahead_of_the_log_gets_nothing(bus: Bus, node: NodeLog, audit: AuditLog) -> None:
    """A node restored from an old backup must not present its smaller log (a flag)."""
    ahead = NodeLog(node.party).grow(20)
    assert submit(bus.client, node.party, ahead.note()).status_code == 200
    _grow(audit, 5)
    result = _witnessing(bus, node, audit).witness_latest()
    assert result.outcome is Outcome.BEHIND
    assert bus.client.get("/v1/witness/flags", headers=node.party.auth()).json()["items"] == []


def test_a_forked_log_is_flagged_and_left_uncosigned(
    bus: Bus, node: NodeLog, audit: AuditLog
) -> None:
    other = NodeLog(node.party, seed="other").grow(5)
    assert submit(bus.client, node.party, other.note()).status_code == 200
    _grow(audit, 5)  # same size, other root
    result = _witnessing(bus, node, audit).witness_latest()
    assert result.outcome is Outcome.FLAGGED and "fork" in result.detail
    assert len(parse_note(audit.latest_checkpoint().note).signatures) == 1


def test_an_unreachable_witness_is_not_fatal(node: NodeLog, audit: AuditLog) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    http = httpx.Client(base_url="http://witness", transport=httpx.MockTransport(down))
    w = CheckpointWitnessing(audit, "http://witness", node.party.token, http=http)
    _grow(audit, 2)
    assert w.witness_latest().outcome is Outcome.FAILED
    assert audit.latest_checkpoint().size == 2  # issued all the same, cosigned next time


def test_only_cosignature_lines_can_be_attached(node: NodeLog, audit: AuditLog) -> None:
    _grow(audit, 2)
    issued = audit.issue_checkpoint()
    _grow(audit, 3)
    other = audit.issue_checkpoint()
    with pytest.raises(AuditLogError):  # another checkpoint's note
        audit.attach_cosignatures(issued.seq, other.note)
    witness = NoteSigner("witness.nrm.example/XA", Ed25519PrivateKey.generate(), 4)
    cosigned = add_cosignature(issued.note, witness, 1_700_000_000)
    without_node = Note(parse_note(cosigned).text, parse_note(cosigned).signatures[1:])
    with pytest.raises(AuditLogError):  # the node's own signature dropped
        audit.attach_cosignatures(issued.seq, str(without_node))
    with pytest.raises(NoCheckpoint):
        audit.attach_cosignatures(99, cosigned)
    audit.attach_cosignatures(issued.seq, cosigned)
    assert audit.checkpoints()[0].note == cosigned


def test_verifier_keys_with_plus_in_their_base64_parse() -> None:
    """Regression: `from_vkey` split on every '+', and base64 often holds one."""
    for _ in range(32):
        v = NoteSigner("witness.nrm.example/XA", Ed25519PrivateKey.generate(), 4).verifier()
        assert NoteVerifier.from_vkey(v.vkey()).key_id == v.key_id


class _Racing:
    """The registry, where another submission of the same log lands between the node's
    read of the witnessed size and its own submission."""

    def __init__(self, client: httpx.Client, race: Callable[[], httpx.Response]) -> None:
        self._client = client
        self._race: Callable[[], httpx.Response] | None = race
        self.raced: list[int] = []

    def get(self, *args: Any, **kwargs: Any) -> httpx.Response:
        return self._client.get(*args, **kwargs)

    def post(self, *args: Any, **kwargs: Any) -> httpx.Response:
        if self._race is not None:
            self.raced.append(self._race().status_code)
            self._race = None
        return self._client.post(*args, **kwargs)


def test_a_stale_size_is_asked_again_not_flagged(bus: Bus, node: NodeLog, audit: AuditLog) -> None:
    _grow(audit, 4)
    assert _witnessing(bus, node, audit).witness_latest().outcome is Outcome.COSIGNED
    _grow(audit, 6)
    six = audit.issue_checkpoint().note
    proof = [base64.b64encode(h).decode() for h in audit.consistency_proof(4, 6)]
    racing = _Racing(bus.client, lambda: submit(bus.client, node.party, six, 4, proof))
    _grow(audit, 9)
    w = CheckpointWitnessing(audit, "http://unused", node.party.token, http=racing)  # type: ignore[arg-type]
    result = w.witness_latest()
    assert racing.raced == [200]  # the witness moved from 4 to 6 under the node's feet
    assert (result.outcome, result.size) == (Outcome.COSIGNED, 9)
    assert bus.client.get("/v1/witness/flags", headers=node.party.auth()).json()["items"] == []
