"""The verifiable log: RFC 9162 Merkle tree, proofs, verifiers, C2SP checkpoints, witness.

Free of I/O and of any other part of this project, so an outside auditor can take this
package alone and check a node's log: recompute roots, verify inclusion and consistency
proofs, verify signed checkpoints and witness cosignatures.
"""

from contracts.transparency.checkpoint import (
    SIG_TYPE_COSIGNATURE_V1,
    SIG_TYPE_ED25519,
    Checkpoint,
    Note,
    NoteSignature,
    NoteSigner,
    NoteVerifier,
    add_cosignature,
    cosign,
    cosigned_message,
    key_id,
    open_checkpoint,
    parse_note,
    sign_checkpoint,
    sign_note,
    verify_cosignature,
    verify_note,
)
from contracts.transparency.compact import CompactRange
from contracts.transparency.errors import (
    BadSignatureError,
    ConsistencyProofError,
    InclusionProofError,
    MalformedCheckpointError,
    MalformedNoteError,
    NoteError,
    OriginMismatchError,
    ProofError,
    RootMismatchError,
    TransparencyError,
    TreeRangeError,
    UnknownKeyError,
)
from contracts.transparency.hasher import EMPTY_ROOT, HASH_SIZE, hash_children, hash_leaf
from contracts.transparency.tree import LevelStore, MemoryLevelStore, MerkleTree
from contracts.transparency.verify import (
    consistency_proof_size,
    inclusion_proof_size,
    root_from_inclusion_proof,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
    verify_root,
)
from contracts.transparency.witness import FlagReason, Verdict, WitnessState, witness_checkpoint

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "SIG_TYPE_COSIGNATURE_V1",
    "SIG_TYPE_ED25519",
    "BadSignatureError",
    "Checkpoint",
    "CompactRange",
    "ConsistencyProofError",
    "FlagReason",
    "InclusionProofError",
    "LevelStore",
    "MalformedCheckpointError",
    "MalformedNoteError",
    "MemoryLevelStore",
    "MerkleTree",
    "Note",
    "NoteError",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "OriginMismatchError",
    "ProofError",
    "RootMismatchError",
    "TransparencyError",
    "TreeRangeError",
    "UnknownKeyError",
    "Verdict",
    "WitnessState",
    "add_cosignature",
    "consistency_proof_size",
    "cosign",
    "cosigned_message",
    "hash_children",
    "hash_leaf",
    "inclusion_proof_size",
    "key_id",
    "open_checkpoint",
    "parse_note",
    "root_from_inclusion_proof",
    "root_from_leaves",
    "sign_checkpoint",
    "sign_note",
    "verify_consistency",
    "verify_cosignature",
    "verify_inclusion",
    "verify_note",
    "verify_root",
    "witness_checkpoint",
]
