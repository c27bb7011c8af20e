"""The read-only oversight API of a node's audit log, mounted at /v1/audit.

Only agencies whose directory record holds the `oversight` role, and the node's own
agency, may call it. What it serves is what an independent verifier needs and nothing
more: signed checkpoints, inclusion and consistency proofs, the stored envelopes (clear
attributes and ciphertext: the store holds no plaintext), the decisions with the
deciding agency and officer (R7), and the erasures upcoming and executed (retention).
A competent authority's node also serves the victim statistics it alone can count
(aggregates, small cells suppressed). Errors are problems with precise 4xx codes,
answered by the node's error table (`install_error_handlers`), which an app mounting it
installs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse

from contracts.agency_token import AuthError
from contracts.directory import Directory
from contracts.problems import openapi_responses
from contracts.retention import erasures
from contracts.vocabulary import Role
from referral_router.api.auth import any_agency
from referral_router.audit.log import AuditLog, AuditRangeError
from referral_router.audit.victim_statistics import NotPublished

MAX_PAGE = 1000


def audit_of(request: Request) -> AuditLog:
    audit: AuditLog = request.app.state.audit
    return audit


def oversight_caller(request: Request, agency: Annotated[str, Depends(any_agency)]) -> str:
    """The caller's agency, if it is an oversight body or this node's own agency."""
    own = audit_of(request).agency_id
    if agency == own:
        return str(agency)
    directory: Directory = request.app.state.directory()
    record = directory.agency(agency)
    if record is None or Role.OVERSIGHT not in record.roles:
        raise AuthError(403, f"{agency} is not an oversight body (role 'oversight') nor {own}")
    return str(agency)


Caller = Annotated[str, Depends(oversight_caller)]
Audit = Annotated[AuditLog, Depends(audit_of)]
Start = Annotated[int, Query(ge=0, le=2**62, description="First index (0-based).")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size.")]
Size = Annotated[int, Query(ge=0, le=2**62)]

oversight_router = APIRouter(
    prefix="/v1/audit", tags=["audit"], responses=openapi_responses(401, 403, 404, 422)
)


@oversight_router.get("/checkpoint", response_class=PlainTextResponse)
def latest_checkpoint(audit: Audit, _: Caller) -> PlainTextResponse:
    """The latest signed checkpoint, as a C2SP signed note (text/plain)."""
    note = audit.latest_checkpoint().note
    return PlainTextResponse(note, media_type="text/plain; charset=utf-8")


@oversight_router.post("/checkpoints", status_code=201)
def issue_checkpoint(audit: Audit, _: Caller) -> dict[str, Any]:
    """Catch up with the store and sign a checkpoint now (the same one if nothing new)."""
    return audit.issue_checkpoint().as_json()


@oversight_router.get("/checkpoints")
def checkpoint_history(audit: Audit, _: Caller, start: Start = 0, limit: Limit = 100) -> Any:
    """Every checkpoint the node signed, in issue order."""
    items = audit.checkpoints(start, limit)
    total = audit.checkpoint_count()
    nxt = start + len(items) if start + len(items) < total else None
    return {"total": total, "items": [c.as_json() for c in items], "next": nxt}


@oversight_router.get("/inclusion")
def inclusion(
    audit: Audit,
    _: Caller,
    event_id: Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")],
    size: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> Any:
    """Inclusion proof of the event's leaf in the tree of `size` leaves (default: all)."""
    return audit.inclusion_proof(event_id, size).as_json()


@oversight_router.get("/consistency")
def consistency(audit: Audit, _: Caller, old: Size, new: Size) -> Any:
    """Proof that the log of `new` leaves extends the log of `old` leaves."""
    if old > new:
        raise AuditRangeError(f"old size {old} exceeds new size {new}")
    proof = audit.consistency_proof(old, new)
    return {"old": old, "new": new, "proof": [p.hex() for p in proof]}


@oversight_router.get("/leaves")
def leaves(audit: Audit, _: Caller, start: Start = 0, limit: Limit = 100) -> Any:
    """Leaves with their stored envelopes (clear attributes and ciphertext)."""
    size = audit.size
    if start > size:
        raise AuditRangeError(f"start {start} is beyond the log's size {size}")
    items = audit.leaves(start, limit) if start < size else []
    nxt = start + len(items) if start + len(items) < size else None
    return {"size": size, "start": start, "items": [i.as_json() for i in items], "next": nxt}


@oversight_router.get("/decisions")
def decisions(audit: Audit, _: Caller, start: Start = 0, limit: Limit = 100) -> Any:
    """Decisions (R7) with the deciding agency and officer, from leaf index `start` on."""
    found = audit.decisions(start, limit)
    items = [{"leaf": idx, **d.as_json()} for idx, d in found]
    nxt = found[-1][0] + 1 if len(found) == limit else None
    return {"items": items, "next": nxt}


@oversight_router.get("/erasures")
def erasure_list(audit: Audit, _: Caller) -> Any:
    """Erasures from this node's log: closed cases whose retention period runs (upcoming,
    or overdue once it passed) and the erasure orders executed, with their legal basis.
    Clear parts only: the same list before and after an erasure."""
    envelopes = (e.envelope.model_dump(mode="json") for e in _every_envelope(audit))
    return erasures(envelopes, datetime.now(UTC))


def _every_envelope(audit: AuditLog) -> Any:
    after = 0
    while batch := audit.store.log(after=after, limit=MAX_PAGE):
        yield from batch
        after = batch[-1].position


@oversight_router.get("/victim-statistics")
def victim_statistics(request: Request, _: Caller) -> Any:
    """Presumed and identified victims by stage, outcome, form of exploitation, age group,
    sex, nationality and month, with re-trafficking: aggregates only, every count under 5
    suppressed. Served by a competent authority's node (404 elsewhere)."""
    publish: Callable[[], dict[str, Any]] | None = getattr(
        request.app.state, "victim_statistics", None
    )
    if publish is None:
        raise NotPublished("this node publishes no victim statistics")
    return publish()
