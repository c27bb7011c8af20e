"""The routes an agency's own systems call: screen, append, pass a case on, read a case,
page the log."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse

from contracts.agency_token import AuthError
from contracts.envelope import CASE_PSEUDONYM_PATTERN
from contracts.examples import openapi_examples
from contracts.legal_basis import ErasureBasis
from contracts.node_api import (
    AppendEvent,
    CaseView,
    DeadLetterPage,
    EventReceipt,
    ForwardCase,
    ForwardReceipt,
    InboxPage,
    ScreenCase,
)
from contracts.policy import RETENTION_OFFICER
from referral_router.api.auth import (
    ERASE_RETENTION,
    ESCALATE,
    Appender,
    Caller,
    LogReader,
    Node,
    Submitter,
)
from referral_router.api.errors import ERROR_RESPONSES
from referral_router.sending.node import Submission
from referral_router.sending.passing_on import Forwarder, PassOn, pass_case_on

CasePseudonym = Annotated[str, Path(pattern=CASE_PSEUDONYM_PATTERN)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        pattern=r"^[\x21-\x7e]+$",
        description="Retries with the same key get the first answer; nothing is appended twice.",
    ),
]
#: Cursor paging: `after` is the last position seen (0 to start), `limit` a page size.
After = Annotated[int, Query(ge=0, le=2**62, description="Last position seen; 0 to start.")]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size.")]

#: Request bodies with an example of every event type (contracts.examples).
Screening = Annotated[ScreenCase, Body(openapi_examples=openapi_examples(screening=True))]
Appending = Annotated[AppendEvent, Body(openapi_examples=openapi_examples(screening=False))]

cases = APIRouter(prefix="/v1", tags=["cases"], responses=ERROR_RESPONSES)


@cases.post("/cases", status_code=201, response_model=EventReceipt)
def screen_case(body: Screening, node: Node, _: Caller, key: IdempotencyKey = None) -> Any:
    """Open a case with its first event, `case.screened` (R1: a presumed victim from now)."""
    sub = Submission("case.screened", body.payload, tuple(body.recipients))
    receipt = node.submit(sub, key)
    return JSONResponse(status_code=receipt.status_code, content=receipt.body)


@cases.post("/cases/{case}/events", status_code=201, response_model=EventReceipt)
def append_event(
    case: CasePseudonym,
    body: Appending,
    node: Node,
    caller: Appender,
    key: IdempotencyKey = None,
) -> Any:
    """Append one lifecycle event; the rules decide whether it may happen now. The
    node's notifier may append `case.escalated` (R8), and an erasure order when a closed
    case's retention period ended, and nothing else."""
    if caller.notifier:
        notifier_may_append(caller, body.type, body.payload)
    sub = Submission(body.type, body.payload, tuple(body.recipients), case)
    receipt = node.submit(sub, key)
    return JSONResponse(status_code=receipt.status_code, content=receipt.body)


def notifier_may_append(caller: Submitter, event_type: str, payload: object) -> None:
    """The notifier's events, each under its token's scope: escalations (`escalate`), and
    erasure orders on `retention-expired` by the retention's system id (`erase:retention`)."""
    if event_type == "case.escalated" and ESCALATE in caller.scopes:
        return
    retention = (
        getattr(payload, "legal_basis", None) == ErasureBasis.RETENTION_EXPIRED
        and getattr(payload, "ordered_by_officer", None) == RETENTION_OFFICER
    )
    if event_type == "case.erasure-ordered" and retention and ERASE_RETENTION in caller.scopes:
        return
    raise AuthError(
        403,
        "the notifier may append case.escalated (scope escalate) and case.erasure-ordered "
        "on retention-expired (scope erase:retention) only",
    )


def forwarder_of(request: Request) -> Forwarder:
    forwarder: Forwarder = request.app.state.forwarder
    return forwarder


@cases.post("/cases/{case}/forward", status_code=201, response_model=ForwardReceipt)
def forward_case(
    case: CasePseudonym,
    body: ForwardCase,
    node: Node,
    _: Caller,
    forwarder: Annotated[Forwarder, Depends(forwarder_of)],
    key: IdempotencyKey = None,
) -> Any:
    """Pass the case on to another agency (R10): the events this node received, each
    with the data keys it holds that the agreement lets the new recipient open, never
    re-encrypted; on the person's consent naming it, or an override (R9)."""
    req = PassOn(
        case,
        body.to,
        body.forwarded_by_officer,
        body.consent_id,
        body.consent_override,
        tuple(body.event_ids) if body.event_ids is not None else None,
    )
    receipt = pass_case_on(node, forwarder, req, key)
    return JSONResponse(status_code=receipt.status_code, content=receipt.body)


@cases.get("/cases/{case}", response_model=CaseView)
def read_case(case: CasePseudonym, node: Node, _: Caller) -> Any:
    """The case as this agency may see it: fields it may not open say `withheld`."""
    return node.case_view(case)


@cases.get("/inbox", response_model=InboxPage)
def inbox(
    node: Node,
    _: Caller,
    after: After = 0,
    limit: Limit = 100,
) -> Any:
    """Events received by this agency after the cursor `after`, oldest first."""
    return node.inbox(after, limit)


@cases.get("/log", response_model=InboxPage)
def node_log(
    node: Node,
    _: LogReader,
    after: After = 0,
    limit: Limit = 100,
    direction: Annotated[Literal["sent", "received"] | None, Query()] = None,
) -> Any:
    """Every event this node recorded (sent and received) after `after`: the clear
    parts a notifier needs to derive deadlines. Filter with `direction`."""
    return node.inbox(after, limit, direction)


@cases.get("/dead-letters", response_model=DeadLetterPage)
def dead_letters(
    node: Node,
    _: Caller,
    after: After = 0,
    limit: Limit = 100,
) -> Any:
    """Received messages that could never be applied, each with its reason."""
    letters = node.store.dead_letters(after, limit)
    items = [
        {
            "position": pos,
            "source": d.source,
            "source_position": d.position,
            "rule": d.rule,
            "reason": d.reason,
            "event_id": d.event_id,
            "event_type": d.event_type,
            "sender": d.sender,
            "received_at": d.received_at,
        }
        for pos, d in letters
    ]
    return {"items": items, "next_after": letters[-1][0] if len(letters) == limit else None}
