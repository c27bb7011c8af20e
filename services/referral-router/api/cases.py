"""The routes an agency's own systems call: screen, append, read a case, page the log."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Path, Query
from fastapi.responses import JSONResponse

from contracts.agency_token import AuthError
from contracts.envelope import CASE_PSEUDONYM_PATTERN
from contracts.examples import openapi_examples
from contracts.node_api import (
    AppendEvent,
    CaseView,
    DeadLetterPage,
    EventReceipt,
    InboxPage,
    ScreenCase,
)
from referral_router.api.auth import Appender, Caller, LogReader, Node
from referral_router.api.errors import ERROR_RESPONSES
from referral_router.sending.node import Submission

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
    node's notifier may append `case.escalated` (R8) and nothing else."""
    if caller.notifier and body.type != "case.escalated":
        raise AuthError(403, "the notifier may append case.escalated only")
    sub = Submission(body.type, body.payload, tuple(body.recipients), case)
    receipt = node.submit(sub, key)
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
