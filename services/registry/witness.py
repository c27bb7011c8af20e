"""The registry as witness of every node's audit log.

A node could show one log to one auditor and another to the next, or quietly rewrite
history; a witness that remembers each log's latest checkpoint and cosigns only what
extends it makes both visible. Per node log (origin) the registry keeps, as events in its
own event store, the last checkpoint it cosigned and every flag: a second root for a size
it saw, a smaller log, or a consistency proof that does not link the two. Being events,
the witness's memory is audited like any registry change and survives a restart (the
aggregate is rebuilt from the store).

Witness key: an Ed25519 key derived from the registry's directory-signing key with HKDF
(info `nrm-witness-key/v1`), named `witness.<domain>/<COUNTRY>`. Derived, so there is no
second secret to store and it comes back after a restart; separate, so a cosignature can
never be confused with a directory signature. `GET /v1/witness/key` serves its verifier
key with a signature by the directory key, so whoever holds the anchor can check it.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError

from contracts.audit_verification import WITNESS_KEY_STATEMENT
from contracts.directory import KeyUse, b64url_encode
from contracts.transparency import (
    SIG_TYPE_COSIGNATURE_V1,
    Note,
    NoteError,
    NoteSigner,
    NoteVerifier,
    parse_note,
)
from contracts.transparency.witness import FlagReason, Verdict, WitnessState, witness_checkpoint
from registry.application import Registry, RegistryConflict, RegistryError

DEFAULT_LOG_DOMAIN = "nrm.example"
WITNESS_KEY_INFO = b"nrm-witness-key/v1"

#: Misbehaviour the node signed for: recorded as a flag. Anything else is only refused.
FLAGGED = frozenset({FlagReason.FORK, FlagReason.SHRINKING, FlagReason.INCONSISTENT})
_REFUSAL_CODE = {
    FlagReason.MALFORMED: "malformed-checkpoint",
    FlagReason.BAD_SIGNATURE: "checkpoint-refused",
    FlagReason.WRONG_ORIGIN: "forbidden",
}


class WitnessRefused(RegistryError):
    """Not cosigned, nothing recorded: the note proves nothing about the node."""

    def __init__(
        self, reason: FlagReason | str, detail: str, code: str = "checkpoint-refused"
    ) -> None:
        super().__init__(f"{reason}: {detail}" if detail else str(reason))
        self.reason = str(reason)
        self.code = code


class StaleSize(RegistryConflict):
    """The proof starts from a size the witness no longer holds: fetch it and retry."""

    code = "stale-size"

    def __init__(self, old_size: int, size: int) -> None:
        super().__init__(f"the proof is from size {old_size}; the witness holds size {size}")
        self.size = size


class WitnessFlagged(RegistryConflict):
    """The node presented a fork, a shrinking log or an inconsistent proof: its log did
    not stay whole (R7)."""

    code = "checkpoint-flagged"
    rule = "R7"

    def __init__(self, flag: dict[str, Any], size: int) -> None:
        super().__init__(f"{flag['reason']}: {flag['detail']}")
        self.flag = flag
        self.size = size


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class WitnessedLog(Aggregate):
    """What the witness knows of one node log: the last checkpoint it cosigned, and the
    flags raised against it (each with the signed notes that are the evidence)."""

    #: Witnessing is not a directory change: its events must not re-sign the directory.
    in_directory: ClassVar[bool] = False

    @staticmethod
    def create_id(origin: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"nrm:registry:witness:{origin}")

    @event("FirstWitnessed")
    def __init__(self, origin: str, agency_id: str, size: int, root: str, note: str, at: str):
        self.origin, self.agency_id = origin, agency_id
        self.size, self.root, self.note, self.at = size, root, note, at
        self.flags: list[dict[str, Any]] = []

    @event("Witnessed")
    def witness(self, size: int, root: str, note: str, at: str) -> None:
        self.size, self.root, self.note, self.at = size, root, note, at

    @event("Flagged")
    def flag(
        self, reason: str, detail: str, note: str, old_size: int, proof: list[str], at: str
    ) -> None:
        self.flags.append(
            {
                "reason": reason,
                "detail": detail,
                "note": note,
                "witnessed_size": self.size,
                "witnessed_root": self.root,
                "witnessed_note": self.note,
                "old_size": old_size,
                "proof": list(proof),
                "at": at,
            }
        )

    def state(self) -> WitnessState:
        return WitnessState(self.origin, self.size, base64.b64decode(self.root))

    def view(self) -> dict[str, Any]:
        return {
            "agency_id": self.agency_id,
            "origin": self.origin,
            "size": self.size,
            "root": self.root,
            "note": self.note,
            "witnessed_at": self.at,
            "flags": len(self.flags),
        }


def derive_witness_key(registry_key: Ed25519PrivateKey) -> Ed25519PrivateKey:
    """The witness's Ed25519 key: HKDF-SHA256 of the directory key's seed."""
    seed = registry_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    okm = HKDF(hashes.SHA256(), 32, salt=None, info=WITNESS_KEY_INFO).derive(seed)
    return Ed25519PrivateKey.from_private_bytes(okm)


@dataclass(frozen=True)
class Cosigned:
    note: str
    size: int
    root: bytes
    timestamp: int


class WitnessBook:
    """The registry's witness: checks and cosigns node checkpoints, over its event store."""

    def __init__(
        self,
        registry: Registry,
        *,
        log_domain: str = DEFAULT_LOG_DOMAIN,
        witness_key: Ed25519PrivateKey | None = None,
    ) -> None:
        self.registry = registry
        self.log_domain = log_domain
        country = registry.config.country
        key = witness_key or derive_witness_key(registry.config.signing_key)
        self.signer = NoteSigner(f"witness.{log_domain}/{country}", key, SIG_TYPE_COSIGNATURE_V1)
        self._lock = threading.Lock()

    # -- keys and names -------------------------------------------------------------------

    @property
    def verifier(self) -> NoteVerifier:
        return self.signer.verifier()

    def key_document(self) -> dict[str, Any]:
        vkey = self.verifier.vkey()
        signature = self.registry.config.signing_key.sign(WITNESS_KEY_STATEMENT + vkey.encode())
        return {
            "name": self.signer.name,
            "vkey": vkey,
            "registry_key_id": self.registry.config.signing_key_id,
            "signature": b64url_encode(signature),
        }

    def origin_of(self, agency_id: str) -> str:
        return f"{self.log_domain}/{self.registry.config.country}/{agency_id}"

    # -- reads ----------------------------------------------------------------------------

    def _log(self, origin: str) -> WitnessedLog | None:
        try:
            aggregate = self.registry.repository.get(WitnessedLog.create_id(origin))
        except AggregateNotFoundError:
            return None
        assert isinstance(aggregate, WitnessedLog)
        return aggregate

    def witnessed(self, agency_id: str) -> dict[str, Any]:
        """The last checkpoint cosigned for the agency's log; size null if none yet."""
        self.registry.agency(agency_id)  # 404 for an unknown agency
        origin = self.origin_of(agency_id)
        log = self._log(origin)
        if log is None:
            return {"agency_id": agency_id, "origin": origin, "size": None, "root": None}
        return log.view()

    def flags(self) -> list[dict[str, Any]]:
        """Every flag against every agency's log, oldest first."""
        out = []
        for agency in self.registry.directory().agencies:
            log = self._log(self.origin_of(agency.id))
            if log is not None:
                out += [{"agency_id": agency.id, "origin": log.origin, **f} for f in log.flags]
        return sorted(out, key=lambda f: (f["at"], f["agency_id"]))

    # -- the witness's one command --------------------------------------------------------

    def _log_verifier(self, agency_id: str, origin: str, note: Note) -> NoteVerifier:
        """The agency's signing key, valid now in the registry's own directory, that signed
        the note (a rotation's grace period included); else its newest, which refuses."""
        record = self.registry.agency(agency_id)  # 404 for an unknown agency
        now = self.registry.clock().astimezone(UTC)
        live = [
            NoteVerifier(origin, k.ed25519())
            for k in record.keys_for(KeyUse.SIGNING)
            if k.valid_at(now)
        ]
        if not live:
            raise WitnessRefused(FlagReason.BAD_SIGNATURE, f"{agency_id} has no valid signing key")
        lines = {(s.name, s.key_id) for s in note.signatures}
        return next((v for v in live if (v.name, v.key_id) in lines), live[-1])

    def submit(
        self, agency_id: str, note_text: str, old_size: int, proof: Sequence[bytes]
    ) -> Cosigned:
        """Cosign the agency's checkpoint if it extends the last one witnessed (first
        sight is taken on trust); record a flag and raise WitnessFlagged if it does not."""
        origin = self.origin_of(agency_id)
        try:
            note = parse_note(note_text)
        except NoteError as exc:
            raise WitnessRefused(FlagReason.MALFORMED, str(exc), "malformed-checkpoint") from None
        verifier = self._log_verifier(agency_id, origin, note)
        with self._lock:
            log = self._log(origin)
            state = log.state() if log is not None else None
            now = self.registry.clock().astimezone(UTC)
            verdict = witness_checkpoint(
                state,
                note,
                proof,
                verifier,
                origin=origin,
                cosigner=self.signer,
                timestamp=int(now.timestamp()),
            )
            if verdict.cosign:
                return self._cosigned(log, agency_id, origin, verdict, now)
            assert verdict.reason is not None
            stale = state is not None and old_size != state.size
            if stale and verdict.reason is FlagReason.INCONSISTENT:
                assert state is not None
                raise StaleSize(old_size, state.size)
            if verdict.reason not in FLAGGED or log is None:
                code = _REFUSAL_CODE.get(verdict.reason, "checkpoint-refused")
                raise WitnessRefused(verdict.reason, verdict.detail, code)
            flag = self._flag(log, verdict, note_text, old_size, proof, now)
            raise WitnessFlagged(flag, log.size)

    def _cosigned(
        self,
        log: WitnessedLog | None,
        agency_id: str,
        origin: str,
        verdict: Verdict,
        now: datetime,
    ) -> Cosigned:
        assert verdict.state is not None and verdict.cosigned_note is not None
        size, root, note = verdict.state.size, verdict.state.root, verdict.cosigned_note
        at = now.isoformat()
        if log is None:
            self._save(WitnessedLog(origin, agency_id, size, _b64(root), note, at))
        elif (log.size, log.root) != (size, _b64(root)):
            log.witness(size=size, root=_b64(root), note=note, at=at)
            self._save(log)
        # the same checkpoint again is cosigned anew but changes nothing worth an event
        return Cosigned(note, size, root, int(now.timestamp()))

    def _flag(
        self,
        log: WitnessedLog,
        verdict: Verdict,
        note: str,
        old_size: int,
        proof: Sequence[bytes],
        now: datetime,
    ) -> dict[str, Any]:
        reason = str(verdict.reason)
        for earlier in log.flags:  # a node repeating itself is one flag, not one a minute
            if earlier["reason"] == reason and earlier["note"] == note:
                return earlier
        log.flag(
            reason=reason,
            detail=verdict.detail,
            note=note,
            old_size=old_size,
            proof=[_b64(p) for p in proof],
            at=now.isoformat(),
        )
        self._save(log)
        return log.flags[-1]

    def _save(self, log: WitnessedLog) -> None:
        try:
            self.registry.save(log)
        except IntegrityError:
            raise RegistryConflict("concurrent witnessing of the same log; retry") from None
