"""The routes an agency's own systems call: screen, append (one event or a batch), pass a
case on, read a case, page (or long-poll) the log; its stream is `api.log_stream`.

Every route is async: commands are decided on the event loop and appended through the
node's group commit (`sending.intake`), reads of the store and passing a case on run on
the node's store thread, and the log is served from memory when it holds what is asked
(`store.feed`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from contracts.agency_token import AuthError
from contracts.envelope import CASE_PSEUDONYM_PATTERN
from contracts.examples import openapi_examples
from contracts.legal_basis import ErasureBasis
from contracts.node_api import (
    AppendEvent,
    BatchAnswer,
    BatchRequest,
    CaseView,
    DeadLetterPage,
    EventReceipt,
    ForwardCase,
    ForwardReceipt,
    InboxPage,
    ScreenCase,
)
from contracts.policy import RETENTION_OFFICER
from contracts.problems import openapi_responses
from referral_router import telemetry
from referral_router.api.auth import (
    ERASE_RETENTION,
    ESCALATE,
    Appender,
    Caller,
    LogReader,
    Node,
    Submitter,
)
from referral_router.api.batch import batch_item
from referral_router.api.errors import ERROR_RESPONSES, problem_of_exception
from referral_router.sending.intake import BatchItem, Intake
from referral_router.sending.node import AgencyNode, Receipt, Submission
from referral_router.sending.passing_on import Forwarder, PassOn, pass_case_on
from referral_router.store.feed import FeedEntry, LogFeed

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
Wait = Annotated[
    float,
    Query(
        ge=0,
        le=30,
        description="Seconds to wait for an entry after `after` when there is none yet "
        "(a long poll: the answer comes as soon as one is recorded); 0 answers at once.",
    ),
]
Direction = Annotated[
    Literal["sent", "received"] | None,
    Query(description="Only the events this node sent, or only those it received."),
]

#: Request bodies with an example of every event type (contracts.examples).
Screening = Annotated[ScreenCase, Body(openapi_examples=openapi_examples(screening=True))]
Appending = Annotated[AppendEvent, Body(openapi_examples=openapi_examples(screening=False))]

cases = APIRouter(prefix="/v1", tags=["cases"], responses=ERROR_RESPONSES)
_OVERLOAD_RESPONSES = openapi_responses(503)


async def _intake(request: Request) -> Intake:
    intake: Intake = request.app.state.intake
    return intake


Taking = Annotated[Intake, Depends(_intake)]


def _created(receipt: Receipt) -> JSONResponse:
    return JSONResponse(status_code=receipt.status_code, content=receipt.body)


@cases.post("/cases", status_code=201, response_model=EventReceipt, responses=_OVERLOAD_RESPONSES)
async def screen_case(
    body: Screening, intake: Taking, _: Caller, key: IdempotencyKey = None
) -> Any:
    """Open a case with its first event, `case.screened` (R1: a presumed victim from now)."""
    sub = Submission("case.screened", body.payload, tuple(body.recipients))
    return _created(await intake.submit(sub, key))


@cases.post(
    "/cases/{case}/events",
    status_code=201,
    response_model=EventReceipt,
    responses=_OVERLOAD_RESPONSES,
)
async def append_event(
    case: CasePseudonym,
    body: Appending,
    intake: Taking,
    caller: Appender,
    key: IdempotencyKey = None,
) -> Any:
    """Append one lifecycle event; the rules decide whether it may happen now. The
    node's notifier may append `case.escalated` (R8), and an erasure order when a closed
    case's retention period ended, and nothing else."""
    if caller.notifier:
        notifier_may_append(caller, body.type, body.payload)
    sub = Submission(body.type, body.payload, tuple(body.recipients), case)
    return _created(await intake.submit(sub, key))


@cases.post("/events:batch", response_model=BatchAnswer, responses=_OVERLOAD_RESPONSES)
async def append_batch(body: BatchRequest, intake: Taking, _: Caller) -> Any:
    """Up to 500 events in one request (a bulk import, a raid's screenings): each is
    checked on its own, in order (an event may continue the case an earlier one of the
    batch opened, with `case_of`), and all that pass are appended in one transaction.
    Each event is appended whole or not at all; `results` says which, one per event, in
    order: its receipt (status 201) or its problem (the status it would have had alone)."""
    items: list[BatchItem | Exception] = [batch_item(raw) for raw in body.events]
    ready = [i for i in items if isinstance(i, BatchItem)]
    outcomes = iter(await intake.submit_batch(ready))
    results: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        outcome = next(outcomes) if isinstance(item, BatchItem) else item
        if isinstance(outcome, Receipt):
            results.append({"index": index, "status": outcome.status_code, **outcome.body})
        else:
            found = problem_of_exception(outcome)
            results.append({"index": index, "status": found.status, "problem": found.body()})
    accepted = sum(1 for r in results if r["status"] == 201)
    return {"accepted": accepted, "refused": len(results) - accepted, "results": results}


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
async def forward_case(
    case: CasePseudonym,
    body: ForwardCase,
    node: Node,
    intake: Taking,
    _: Caller,
    forwarder: Annotated[Forwarder, Depends(forwarder_of)],
    key: IdempotencyKey = None,
) -> Any:
    """Pass the case on to another agency (R10): the events this node received, each
    with the data keys it holds that the agreement lets the new recipient open, never
    re-encrypted; on the person's consent naming it, or an override (R9). Runs on the
    node's store thread, as every write does: never beside a group commit."""
    req = PassOn(
        case,
        body.to,
        body.forwarded_by_officer,
        body.consent_id,
        body.consent_override,
        tuple(body.event_ids) if body.event_ids is not None else None,
    )
    return _created(await intake.thread.run(pass_case_on, node, forwarder, req, key))


@cases.get("/cases/{case}", response_model=CaseView)
async def read_case(case: CasePseudonym, node: Node, intake: Taking, _: Caller) -> Any:
    """The case as this agency may see it: fields it may not open say `withheld`."""
    return await intake.thread.run(node.case_view, case)


@cases.get("/inbox", response_model=InboxPage)
async def inbox(
    request: Request,
    node: Node,
    intake: Taking,
    _: Caller,
    after: After = 0,
    limit: Limit = 100,
    wait: Wait = 0,
) -> Any:
    """Events received by this agency after the cursor `after`, oldest first."""
    return await _log_page(request, node, intake, after, limit, "received", wait)


@cases.get("/log", response_model=InboxPage)
async def node_log(
    request: Request,
    node: Node,
    intake: Taking,
    _: LogReader,
    after: After = 0,
    limit: Limit = 100,
    direction: Direction = None,
    wait: Wait = 0,
) -> Any:
    """Every event this node recorded (sent and received) after `after`: the clear
    parts a notifier needs to derive deadlines. Filter with `direction`; follow the
    log without polling with `wait`."""
    return await _log_page(request, node, intake, after, limit, direction, wait)


async def _log_page(
    request: Request,
    node: AgencyNode,
    intake: Intake,
    after: int,
    limit: int,
    direction: str | None,
    wait: float,
) -> Any:
    """A page of the log from memory when the feed holds it (its items encoded when they
    were committed, sent as they are), else from the store; with `wait`, held until an
    entry (of `direction`) is recorded after `after`."""
    feed: LogFeed | None = request.app.state.feed
    if feed is None:
        return await intake.thread.run(node.inbox, after, limit, direction)
    clock = asyncio.get_running_loop().time
    seen, left = after, wait
    deadline = clock() + wait
    while True:
        page = feed.after(after, limit)
        if page is None:
            return await intake.thread.run(node.inbox, after, limit, direction)
        entries, end = page
        items = [
            e
            for e in entries
            if e.forwarding is None and (direction is None or e.direction == direction)
        ]
        if items or left <= 0 or len(entries) == limit:
            next_after = entries[-1].position if len(entries) == limit else None
            return Response(_page_json(node.agency_id, items, next_after), media_type=_JSON)
        seen = max(seen, end)
        await feed.wait_beyond(seen, left)
        left = 0 if feed.closed else deadline - clock()


_JSON = "application/json"


def _page_json(agency_id: str, items: list[FeedEntry], next_after: int | None) -> bytes:
    """The page as `InboxPage` JSON: each item as encoded at commit, with its trace."""
    return (
        b'{"items":['
        + b",".join(item_json(agency_id, e) for e in items)
        + b'],"next_after":'
        + json.dumps(next_after).encode()
        + b"}"
    )


def item_json(agency_id: str, e: FeedEntry) -> bytes:
    """A log item as encoded at commit, with its trace."""
    trace = telemetry.trace_of(agency_id, e.event_id, e.direction)
    return e.item + b',"traceparent":' + json.dumps(trace).encode() + b"}"


@cases.get("/dead-letters", response_model=DeadLetterPage)
async def dead_letters(
    node: Node,
    intake: Taking,
    _: Caller,
    after: After = 0,
    limit: Limit = 100,
) -> Any:
    """Received messages that could never be applied, each with its reason."""
    letters = await intake.thread.run(node.store.dead_letters, after, limit)
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
