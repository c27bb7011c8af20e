"""The node's side of witnessing: its checkpoints go to the registry's witness.

A checkpoint only the node signed proves little to an oversight body that fears a split
view; one the registry cosigned was checked, when cosigned, to extend every earlier one
the registry saw. After issuing a checkpoint the node asks the witness which size it last
cosigned, sends the note with a consistency proof from that size, checks the cosignature
it gets back and keeps it with the checkpoint, so the oversight API serves cosigned notes.
Never fatal: a witness that is down only delays cosigning to the next cycle.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import httpx

from contracts.agency_token import issue_token
from contracts.directory import KeyUse
from contracts.keystore import AgencyKeys
from contracts.transparency import NoteError, NoteVerifier, parse_note, verify_cosignature
from referral_router.audit.log import AuditLog, IssuedCheckpoint

log = logging.getLogger("nrm.witnessing")


class Outcome(StrEnum):
    COSIGNED = "cosigned"
    ALREADY = "already cosigned"
    BEHIND = "witness holds a larger log"
    FLAGGED = "flagged"
    FAILED = "failed"


@dataclass(frozen=True)
class WitnessResult:
    outcome: Outcome
    size: int
    detail: str = ""


class CheckpointWitnessing:
    """Sends this node's checkpoints to one witness (`witness_url`, the registry) and
    stores the cosignatures. Thread-safe: one submission at a time, so two cycles can
    never present an older checkpoint after a newer one (the witness flags that)."""

    def __init__(
        self,
        audit: AuditLog,
        witness_url: str,
        token: Callable[[], str],
        *,
        timeout: float = 10.0,
        http: httpx.Client | None = None,
    ) -> None:
        self.audit = audit
        self._token = token
        self._http = http or httpx.Client(base_url=witness_url.rstrip("/"), timeout=timeout)
        self._lock = threading.Lock()
        self._witness: NoteVerifier | None = None

    def close(self) -> None:
        self._http.close()

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token()}"}

    def witness_key(self) -> NoteVerifier:
        """The witness's key, fetched once: used only to check what it returns."""
        if self._witness is None:
            r = self._http.get("/v1/witness/key")
            r.raise_for_status()
            self._witness = NoteVerifier.from_vkey(r.json()["vkey"])
        return self._witness

    def _cosigned(self, note: str) -> bool:
        try:
            verify_cosignature(note, self.witness_key())
        except NoteError:
            return False
        return True

    def witness_latest(self) -> WitnessResult:
        """Issue a checkpoint (the latest again if the log did not grow) and have it
        cosigned, unless it already is."""
        with self._lock:
            issued = self.audit.issue_checkpoint()
            try:
                return self._submit(issued)
            except (httpx.HTTPError, NoteError, ValueError, KeyError) as exc:
                log.warning("witnessing checkpoint %d failed: %s", issued.size, exc)
                return WitnessResult(Outcome.FAILED, issued.size, str(exc))

    def _submit(self, issued: IssuedCheckpoint) -> WitnessResult:
        path = f"/v1/witness/{self.audit.agency_id}"
        for _ in range(2):  # once more if the witness moved on between the two calls
            r = self._http.get(path, headers=self._auth())
            r.raise_for_status()
            held = r.json().get("size")
            if held is not None and issued.size < held:
                # Our log is smaller than what the witness cosigned: restored from a backup?
                # Sending it would be flagged as a shrinking log; an operator must look.
                log.error("witness holds size %d, this log is %d", held, issued.size)
                return WitnessResult(Outcome.BEHIND, issued.size, f"witness holds {held}")
            if held == issued.size and self._cosigned(issued.note):
                return WitnessResult(Outcome.ALREADY, issued.size)
            old = held or 0
            proof = self.audit.consistency_proof(old, issued.size) if held else []
            body = {
                "note": issued.note,
                "old_size": old,
                "consistency_proof": [base64.b64encode(h).decode() for h in proof],
            }
            r = self._http.post(path, json=body, headers=self._auth())
            flagged = r.status_code == 409 and r.json().get("error") == "checkpoint-flagged"
            if r.status_code == 409 and not flagged:
                continue  # a stale size or a concurrent submission: ask the witness again
            if flagged:
                detail = str(r.json().get("detail"))
                log.error("the witness FLAGGED checkpoint %d: %s", issued.size, detail)
                return WitnessResult(Outcome.FLAGGED, issued.size, detail)
            r.raise_for_status()
            return self._keep(issued, str(r.json()["note"]))
        return WitnessResult(Outcome.FAILED, issued.size, "the witness kept moving")

    def _keep(self, issued: IssuedCheckpoint, cosigned: str) -> WitnessResult:
        """Store the cosigned note only if it is our very checkpoint, validly cosigned."""
        if parse_note(cosigned).text != parse_note(issued.note).text:
            raise ValueError("the witness returned a note for another checkpoint")
        verify_cosignature(cosigned, self.witness_key())
        self.audit.attach_cosignatures(issued.seq, cosigned)
        return WitnessResult(Outcome.COSIGNED, issued.size)

    async def run(self, interval: float, stop: asyncio.Event) -> None:
        """Every `interval` seconds until `stop`: checkpoint, then witness (in a thread).
        Replaces `AuditLog.run` when witnessing is on."""
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.witness_latest)
            except Exception:  # the store or the log failed: next cycle retries
                log.exception("checkpoint cycle failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)


def witnessing_for(
    audit: AuditLog | None,
    keys: AgencyKeys,
    witness_url: str | None,
    audience: str | None,
    verify: ssl.SSLContext | bool = True,
) -> CheckpointWitnessing | None:
    """Witnessing for a node, or None when it has no audit log or no witness configured.
    The node authenticates to the registry with its own signing key, one token a call."""
    if audit is None or witness_url is None:
        return None
    agency_id = audit.agency_id
    aud = audience or f"nrm-registry:{audit.origin.split('/')[-2]}"

    def token() -> str:
        pair = keys.current(KeyUse.SIGNING)
        return issue_token(agency_id, pair.key_id, pair.ed25519(), aud)

    http = httpx.Client(base_url=witness_url.rstrip("/"), timeout=10.0, verify=verify)
    return CheckpointWitnessing(audit, witness_url, token, http=http)
