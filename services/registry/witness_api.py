"""The registry's witness endpoints, included by `registry.api.create_app`.

A node submits its own checkpoints (its own token); any registered party reads what was
witnessed and the flags; the witness key is public, like the directory, and vouched for
by the directory key so it can be checked against the anchor.
"""

from __future__ import annotations

import base64
import binascii
import threading
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from contracts.problems import openapi_responses
from contracts.transparency import HASH_SIZE
from registry.callers import AgencyId, Own, Reader, registry_of
from registry.witness import WitnessBook, WitnessRefused

router = APIRouter(tags=["witness"], responses=openapi_responses(400, 401, 403, 404, 409, 422))
_BOOK_LOCK = threading.Lock()


class CheckpointSubmission(BaseModel):
    """A signed checkpoint and the proof that it extends the witness's last one."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field(min_length=1, max_length=16_384)
    old_size: int = Field(ge=0)
    consistency_proof: list[str] = Field(default_factory=list, max_length=128)

    def proof(self) -> list[bytes]:
        out = []
        for i, h in enumerate(self.consistency_proof):
            try:
                raw = base64.b64decode(h, validate=True)
            except binascii.Error:
                raw = b""
            if len(raw) != HASH_SIZE:
                raise WitnessRefused(
                    "malformed proof", f"hash {i} is not base64 of 32 bytes", "malformed-checkpoint"
                )
            out.append(raw)
        return out


def _book(request: Request) -> WitnessBook:
    """One witness per app: its lock serializes the check-then-record of each log."""
    state = request.app.state
    with _BOOK_LOCK:
        if getattr(state, "witness", None) is None:
            state.witness = WitnessBook(registry_of(request))
    book = state.witness
    assert isinstance(book, WitnessBook)
    return book


@router.get("/v1/witness/key")
def witness_key(request: Request) -> dict[str, Any]:
    """The witness's verifier key (for `nrm audit verify --witness`), signed by the
    directory key; check it with `contracts.audit_verification.verify_witness_key`
    and the anchor."""
    return _book(request).key_document()


@router.get("/v1/witness/flags")
def flags(request: Request, _: Reader) -> dict[str, Any]:
    """Every fork, shrinking log or inconsistent proof a node presented, with evidence."""
    return {"items": _book(request).flags()}


@router.get("/v1/witness/{agency_id}")
def witnessed(request: Request, agency_id: AgencyId, _: Reader) -> dict[str, Any]:
    """The last checkpoint cosigned for the agency's log: prove consistency from `size`."""
    return _book(request).witnessed(agency_id)


@router.post("/v1/witness/{agency_id}")
def submit(body: CheckpointSubmission, request: Request, agency_id: Own) -> dict[str, Any]:
    """Cosign the checkpoint if it extends the last one witnessed. 409 `checkpoint-flagged`:
    a fork, a shrinking log or an inconsistent proof, now on record; 409 `stale-size`:
    the proof is from a stale size, fetch the witnessed size and retry."""
    book = _book(request)
    done = book.submit(agency_id, body.note, body.old_size, body.proof())
    return {
        "note": done.note,
        "size": done.size,
        "root": base64.b64encode(done.root).decode(),
        "witness": book.signer.name,
        "timestamp": done.timestamp,
    }
