"""Pure witness logic: cosign a log's new checkpoint only if it extends the last one seen.

A witness is what stops a node operator from showing different logs to different
auditors (a split view) or rewriting history: it remembers, per origin, the latest
checkpoint it cosigned, and refuses to cosign one that is smaller, that gives a second
root for the same size, or that a consistency proof does not link to the old one. The
caller owns persistence: the state goes in, the verdict carries the state to keep.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from contracts.transparency.checkpoint import (
    Checkpoint,
    Note,
    NoteSigner,
    NoteVerifier,
    add_cosignature,
    open_checkpoint,
    parse_note,
)
from contracts.transparency.errors import (
    MalformedCheckpointError,
    MalformedNoteError,
    NoteError,
    ProofError,
)
from contracts.transparency.verify import verify_consistency


class FlagReason(StrEnum):
    """Why a witness refused to cosign."""

    BAD_SIGNATURE = "bad signature"
    MALFORMED = "malformed checkpoint"
    WRONG_ORIGIN = "wrong origin"
    SHRINKING = "shrinking log"
    FORK = "fork"
    INCONSISTENT = "inconsistent"


@dataclass(frozen=True)
class WitnessState:
    """The latest checkpoint a witness accepted for one origin."""

    origin: str
    size: int
    root: bytes


@dataclass(frozen=True)
class Verdict:
    """What the witness decided. `state` is what to persist (unchanged when flagged);
    `cosigned_note` is the checkpoint note with the witness's line, when cosigned."""

    cosign: bool
    state: WitnessState | None
    reason: FlagReason | None = None
    detail: str = ""
    checkpoint: Checkpoint | None = None
    cosigned_note: str | None = None

    @property
    def message(self) -> str:
        """Human-readable: 'cosign', or the reason, e.g. 'fork: two roots for size 7'."""
        if self.cosign:
            return "cosign"
        return f"{self.reason}: {self.detail}" if self.detail else str(self.reason)


def _flag(
    state: WitnessState | None, reason: FlagReason, detail: str, cp: Checkpoint | None = None
) -> Verdict:
    return Verdict(False, state, reason, detail, cp)


def witness_checkpoint(
    state: WitnessState | None,
    note: str | bytes | Note,
    proof: Sequence[bytes],
    log: NoteVerifier,
    *,
    origin: str | None = None,
    cosigner: NoteSigner | None = None,
    timestamp: int | None = None,
) -> Verdict:
    """Decide whether to cosign `note`, given the last accepted state (None: first sight,
    accepted on trust) and a consistency proof from the state's size to the note's.

    `origin` pins the log when there is no state yet. With `cosigner` and `timestamp`
    the verdict also carries the cosigned note.
    """
    expected_origin = state.origin if state is not None else origin
    try:
        parsed = note if isinstance(note, Note) else parse_note(note)
        cp = open_checkpoint(parsed, log)
    except (MalformedNoteError, MalformedCheckpointError) as e:
        return _flag(state, FlagReason.MALFORMED, str(e))
    except NoteError as e:  # unknown key or a signature that does not verify
        return _flag(state, FlagReason.BAD_SIGNATURE, str(e))
    if expected_origin is not None and cp.origin != expected_origin:
        return _flag(
            state, FlagReason.WRONG_ORIGIN, f"{cp.origin!r}, expected {expected_origin!r}", cp
        )
    if state is not None:
        if cp.size < state.size:
            return _flag(state, FlagReason.SHRINKING, f"size {cp.size} after size {state.size}", cp)
        if cp.size == state.size and cp.root != state.root:
            return _flag(state, FlagReason.FORK, f"two roots for size {cp.size}", cp)
        try:
            verify_consistency(state.size, cp.size, state.root, cp.root, proof)
        except ProofError as e:
            return _flag(state, FlagReason.INCONSISTENT, str(e), cp)
    new_state = WitnessState(cp.origin, cp.size, cp.root)
    cosigned = None
    if cosigner is not None:
        if timestamp is None:
            raise ValueError("a cosigner needs a timestamp (POSIX seconds)")
        cosigned = add_cosignature(parsed, cosigner, timestamp)
    return Verdict(True, new_state, None, "", cp, cosigned)
