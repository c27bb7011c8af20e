"""Witness verdicts: cosign what extends the last checkpoint, flag everything else."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contracts.transparency import (
    SIG_TYPE_COSIGNATURE_V1,
    Checkpoint,
    FlagReason,
    MerkleTree,
    NoteSigner,
    WitnessState,
    open_checkpoint,
    sign_checkpoint,
    verify_cosignature,
    witness_checkpoint,
)

ORIGIN = "nrm.example/xa/shelter-node"
LOG = NoteSigner(ORIGIN, Ed25519PrivateKey.from_private_bytes(b"\x07" * 32))
WITNESS = NoteSigner(
    "registry.example/xa/w1",
    Ed25519PrivateKey.from_private_bytes(b"\x08" * 32),
    SIG_TYPE_COSIGNATURE_V1,
)


@pytest.fixture
def tree() -> MerkleTree:
    t = MerkleTree()
    t.extend(b"ev-%d" % i for i in range(30))
    return t


def _note(tree: MerkleTree, size: int, signer: NoteSigner = LOG, origin: str = ORIGIN) -> str:
    return sign_checkpoint(Checkpoint(origin, size, tree.root(size)), signer)


def _state(tree: MerkleTree, size: int) -> WitnessState:
    return WitnessState(ORIGIN, size, tree.root(size))


def test_first_checkpoint_is_accepted_and_cosigned(tree: MerkleTree) -> None:
    v = witness_checkpoint(
        None, _note(tree, 10), [], LOG.verifier(), origin=ORIGIN, cosigner=WITNESS, timestamp=5
    )
    assert v.cosign and v.message == "cosign" and v.state == _state(tree, 10)
    assert v.cosigned_note is not None
    assert verify_cosignature(v.cosigned_note, WITNESS.verifier()) == 5
    assert open_checkpoint(v.cosigned_note, LOG.verifier()).size == 10


def test_consistent_growth_is_cosigned(tree: MerkleTree) -> None:
    v = witness_checkpoint(
        _state(tree, 10), _note(tree, 30), tree.consistency_proof(10, 30), LOG.verifier()
    )
    assert v.cosign and v.state == _state(tree, 30) and v.cosigned_note is None


def test_same_checkpoint_again_is_cosigned(tree: MerkleTree) -> None:
    v = witness_checkpoint(_state(tree, 10), _note(tree, 10), [], LOG.verifier())
    assert v.cosign and v.state == _state(tree, 10)


def test_shrinking_log_is_flagged(tree: MerkleTree) -> None:
    state = _state(tree, 20)
    v = witness_checkpoint(state, _note(tree, 12), [], LOG.verifier())
    assert not v.cosign and v.reason is FlagReason.SHRINKING and v.state == state
    assert v.message == "shrinking log: size 12 after size 20"


def test_fork_is_flagged(tree: MerkleTree) -> None:
    forked = MerkleTree()
    forked.extend(b"other-%d" % i for i in range(20))
    v = witness_checkpoint(_state(tree, 20), _note(forked, 20), [], LOG.verifier())
    assert not v.cosign and v.reason is FlagReason.FORK
    assert v.message == "fork: two roots for size 20"
    assert v.state == _state(tree, 20)


def test_inconsistent_growth_is_flagged(tree: MerkleTree) -> None:
    rewritten = MerkleTree()
    rewritten.extend(b"ev-%d" % i if i != 3 else b"rewritten" for i in range(30))
    note = _note(rewritten, 30)
    v = witness_checkpoint(
        _state(tree, 10), note, rewritten.consistency_proof(10, 30), LOG.verifier()
    )
    assert not v.cosign and v.reason is FlagReason.INCONSISTENT
    assert "rebuilds old root" in v.message
    missing = witness_checkpoint(_state(tree, 10), _note(tree, 30), [], LOG.verifier())
    assert missing.reason is FlagReason.INCONSISTENT and "need" in missing.detail


def test_bad_signature_is_flagged(tree: MerkleTree) -> None:
    impostor = NoteSigner(ORIGIN, Ed25519PrivateKey.from_private_bytes(b"\x09" * 32))
    v = witness_checkpoint(_state(tree, 10), _note(tree, 30, impostor), [], LOG.verifier())
    assert not v.cosign and v.reason is FlagReason.BAD_SIGNATURE
    tampered = _note(tree, 30).replace("\n30\n", "\n31\n")
    v = witness_checkpoint(_state(tree, 10), tampered, [], LOG.verifier())
    assert v.reason is FlagReason.BAD_SIGNATURE and "does not verify" in v.detail


def test_malformed_and_wrong_origin_are_flagged(tree: MerkleTree) -> None:
    v = witness_checkpoint(None, "not a note", [], LOG.verifier())
    assert v.reason is FlagReason.MALFORMED and v.state is None
    other = NoteSigner("nrm.example/xb/node", LOG.private_key)
    v = witness_checkpoint(
        _state(tree, 5), _note(tree, 6, other, "nrm.example/xb/node"), [], other.verifier()
    )
    assert v.reason is FlagReason.WRONG_ORIGIN


def test_cosigner_needs_a_timestamp(tree: MerkleTree) -> None:
    with pytest.raises(ValueError, match="timestamp"):
        witness_checkpoint(None, _note(tree, 3), [], LOG.verifier(), cosigner=WITNESS)
