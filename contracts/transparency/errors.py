"""Errors of the verifiable-log library.

Every check raises a precise subclass instead of returning False, so that an auditor's
report can say *what* failed (which proof, which hash, which signature) and a caller
cannot silently ignore a failed verification.
"""

from __future__ import annotations


class TransparencyError(ValueError):
    """Base of every error raised by `contracts.transparency`."""


class TreeRangeError(TransparencyError):
    """A size or index asked of a tree lies outside what the tree holds."""


class ProofError(TransparencyError):
    """A Merkle proof or a root does not verify."""


class InclusionProofError(ProofError):
    """An inclusion proof is malformed or does not lead to the expected root."""


class ConsistencyProofError(ProofError):
    """A consistency proof is malformed or does not link the two roots."""


class RootMismatchError(ProofError):
    """A root recomputed from all leaves differs from the claimed one."""


class NoteError(TransparencyError):
    """A signed note or checkpoint cannot be accepted."""


class MalformedNoteError(NoteError):
    """The text is not a well-formed C2SP signed note."""


class MalformedCheckpointError(NoteError):
    """The note text is not a well-formed C2SP checkpoint body."""


class UnknownKeyError(NoteError):
    """No signature line carries the expected key name and key ID."""


class BadSignatureError(NoteError):
    """A signature line from the expected key does not verify."""


class OriginMismatchError(NoteError):
    """The checkpoint's origin is not the log the caller expected."""
