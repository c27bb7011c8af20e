"""The router node's HTTP API for its agency's own systems.

Error contract: 400 malformed JSON, 401/403 authentication, 404 unknown case, 409 a rule
or a concurrent write (with the rule id), 422 schema violations (with the field path),
unknown agencies (R6) and reused idempotency keys. Bad input never gets a 500.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from eventsourcing.persistence import IntegrityError
from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from contracts.envelope import CASE_PSEUDONYM_PATTERN
from referral_router.audit_log import AuditLog
from referral_router.lifecycle import RuleViolation, UnknownCase
from referral_router.node import AgencyNode, IdempotencyConflict, InvalidSubmission, Submission
from referral_router.oversight_api import oversight_router
from referral_router.requests import (
    AppendEvent,
    CaseView,
    DeadLetterPage,
    EventReceipt,
    InboxPage,
    Problem,
    ScreenCase,
)
from referral_router.roster import UnknownAgency

#: token -> verified agency id; raises an exception with `status` (401/403) and `reason`.
TokenCheck = Callable[[str], str]

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
_bearer = HTTPBearer(auto_error=False)
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (400, 401, 403, 404, 409, 422)
}


def problem(status: int, error: str, detail: str, **extra: Any) -> JSONResponse:
    body = Problem(error=error, detail=detail, **extra).model_dump(exclude_none=True)
    return JSONResponse(status_code=status, content=body)


class NotAuthenticated(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def node_of(request: Request) -> AgencyNode:
    node: AgencyNode = request.app.state.node
    return node


def own_agency(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The caller must prove it is this node's own agency (a short-lived signed token)."""
    if credentials is None:
        raise NotAuthenticated(401, "missing bearer token")
    check: TokenCheck = request.app.state.check_token
    try:
        agency = check(credentials.credentials)
    except Exception as exc:
        status = getattr(exc, "status", None)
        if status in (401, 403):
            raise NotAuthenticated(status, str(getattr(exc, "reason", exc))) from exc
        raise
    if agency != node_of(request).agency_id:
        raise NotAuthenticated(403, f"this node serves {node_of(request).agency_id}, not {agency}")
    return agency


Caller = Annotated[str, Depends(own_agency)]
Node = Annotated[AgencyNode, Depends(node_of)]

cases = APIRouter(prefix="/v1", tags=["cases"], responses=_ERRORS)


@cases.post("/cases", status_code=201, response_model=EventReceipt)
def screen_case(body: ScreenCase, node: Node, _: Caller, key: IdempotencyKey = None) -> Any:
    """Open a case with its first event, `case.screened` (R1: a presumed victim from now)."""
    sub = Submission("case.screened", body.payload, tuple(body.recipients))
    receipt = node.submit(sub, key)
    return JSONResponse(status_code=receipt.status_code, content=receipt.body)


@cases.post("/cases/{case}/events", status_code=201, response_model=EventReceipt)
def append_event(
    case: CasePseudonym, body: AppendEvent, node: Node, _: Caller, key: IdempotencyKey = None
) -> Any:
    """Append one lifecycle event; the rules decide whether it may happen now."""
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
    _: Caller,
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


health = APIRouter(tags=["health"])


@health.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@health.get("/readyz", responses={503: {"model": Problem}})
def readyz(request: Request) -> Any:
    """The store answers and a verified directory is loaded."""
    node = node_of(request)
    try:
        position = node.store.max_position()
        serial = node.roster.directory.serial
    except Exception as exc:  # readiness reports any dependency failure as 503
        return problem(503, "not-ready", f"{type(exc).__name__}: {exc}")
    return {"status": "ready", "agency": node.agency_id, "log_size": position, "directory": serial}


def create_app(node: AgencyNode, check_token: TokenCheck, audit: AuditLog | None = None) -> FastAPI:
    app = FastAPI(
        title=f"NRM referral router ({node.agency_id})",
        version="1",
        description="An agency's node on the NRM referral bus.",
    )
    app.state.node = node
    app.state.check_token = check_token
    app.state.directory = lambda: node.roster.directory
    app.include_router(cases)
    app.include_router(health)
    if audit is not None:  # the node's verifiable log, for oversight bodies (R7)
        app.state.audit = audit
        app.include_router(oversight_router)
    install_error_handlers(app)
    return app


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        if any(e["type"] == "json_invalid" for e in errors):
            return problem(400, "malformed-json", "the body is not valid JSON", errors=errors)
        where = ".".join(str(p) for p in errors[0]["loc"]) if errors else "body"
        return problem(
            422, "schema-violation", f"{where}: {errors[0]['msg'] if errors else ''}", errors=errors
        )

    @app.exception_handler(NotAuthenticated)
    async def _auth(request: Request, exc: NotAuthenticated) -> JSONResponse:
        code = "unauthenticated" if exc.status == 401 else "forbidden"
        resp = problem(exc.status, code, exc.reason)
        if exc.status == 401:
            resp.headers["WWW-Authenticate"] = "Bearer"
        return resp

    @app.exception_handler(RuleViolation)
    async def _rule(request: Request, exc: RuleViolation) -> JSONResponse:
        return problem(409, "rule-violation", exc.message, rule=exc.rule)

    @app.exception_handler(UnknownCase)
    async def _unknown_case(request: Request, exc: UnknownCase) -> JSONResponse:
        return problem(404, "unknown-case", f"no case {exc} at this node")

    @app.exception_handler(UnknownAgency)
    async def _unknown_agency(request: Request, exc: UnknownAgency) -> JSONResponse:
        return problem(422, "unknown-agency", exc.message, rule="R6")

    @app.exception_handler(IdempotencyConflict)
    async def _idem(request: Request, exc: IdempotencyConflict) -> JSONResponse:
        return problem(422, "idempotency-key-reused", str(exc))

    @app.exception_handler(IntegrityError)
    async def _conflict(request: Request, exc: IntegrityError) -> JSONResponse:
        return problem(
            409,
            "concurrent-write",
            "another event was appended to this case at the same time; read it and retry",
            rule="CONCURRENCY",
        )

    @app.exception_handler(InvalidSubmission)
    async def _invalid_submission(request: Request, exc: InvalidSubmission) -> JSONResponse:
        return problem(422, "invalid-request", str(exc))
