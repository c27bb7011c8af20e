"""The notifier's HTTP API: delivery status and attempts, replay, the SSE stream, health.

An agency sees only its own subscriptions and notifications; the registry operator
(national coordinator), when configured, sees all (`notifier.callers`). Answers carry
metadata only (ids, types, status codes, times): never a personal field. The routes are
defined at module level and reach the notifier through `app.state.notifier`, anything
that offers the `Notifier` protocol (the runtime does); errors are problems
(`contracts.problems`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from contracts import openapi_auth
from contracts.agency_token import AuthError, TokenVerifier
from contracts.envelope import AGENCY_ID_PATTERN
from contracts.problems import (
    ProblemError,
    framework_translations,
    install,
    openapi_responses,
    problem,
)
from notifier.callers import Caller
from notifier.store import NotifierStore, StoredSubscription

SubscriptionId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
DeliveryStatus = Literal["pending", "delivered", "dead", "gone"]
AgencyFilter = Annotated[str | None, Query(pattern=AGENCY_ID_PATTERN)]


class Notifier(Protocol):
    """What the routes need of the notifier they serve."""

    @property
    def store(self) -> NotifierStore: ...

    @property
    def agencies(self) -> Mapping[str, object]:
        """The agencies served, by id."""
        ...

    @property
    def errors(self) -> Mapping[str, str]:
        """The last failure of each loop, by what failed."""
        ...

    @property
    def operator_id(self) -> str | None: ...

    @property
    def sse_poll_seconds(self) -> float: ...

    def now(self) -> datetime: ...

    def wake(self) -> None:
        """Deliveries became due: do not wait for the next poll."""
        ...


def notifier_of(request: Request) -> Notifier:
    notifier: Notifier = request.app.state.notifier
    return notifier


TheNotifier = Annotated[Notifier, Depends(notifier_of)]


def caller(
    request: Request,
    notifier: TheNotifier,
    authorization: Annotated[str | None, Header()] = None,
    dpop: Annotated[str | None, Header(alias="DPoP", max_length=4096)] = None,
) -> Caller:
    """An agency this notifier serves, or the operator; 401/403 otherwise. A DPoP-bound
    token's proof names this request's method and URL."""
    verifier: TokenVerifier = request.app.state.verifier
    agency_id = verifier.authenticate(
        authorization,
        proof=dpop,
        method=request.method,
        url=str(request.url.replace(query="", fragment="")),
    ).agency_id
    if agency_id == notifier.operator_id:
        return Caller(agency_id, True)
    if agency_id not in notifier.agencies:
        raise AuthError(403, f"this notifier does not serve {agency_id}")
    return Caller(agency_id, False)


Who = Annotated[Caller, Depends(caller)]
_REFUSALS = openapi_responses(400, 401, 403, 404, 422)
deliveries_api = APIRouter(prefix="/v1/subscriptions", tags=["deliveries"], responses=_REFUSALS)
deadlines_api = APIRouter(tags=["deadlines"], responses=_REFUSALS)
notifications_api = APIRouter(tags=["notifications"], responses=_REFUSALS)
health_api = APIRouter(tags=["health"], responses=openapi_responses(503))


def _subscription_for(notifier: Notifier, subscription_id: str, who: Caller) -> StoredSubscription:
    sub = notifier.store.subscription(subscription_id)
    if sub is None:
        raise ProblemError(problem("not-found", f"no subscription {subscription_id}"))
    if not who.may_see(sub.agency_id):
        raise AuthError(403, "not your subscription")
    return sub


def _summary(notifier: Notifier, sub: StoredSubscription) -> dict[str, Any]:
    return {
        "id": sub.id,
        "agency": sub.agency_id,
        "webhook_url": sub.webhook_url,
        "event_types": sorted(sub.event_types),
        "status": "active"
        if sub.active
        else sub.local_status
        if sub.registry_status == "active"
        else sub.registry_status,
        "registry_status": sub.registry_status,
        "local_status": sub.local_status,
        "local_reason": sub.local_reason,
        "deliveries": notifier.store.delivery_counts(sub.id),
    }


def _target(who: Caller, agency: str | None) -> str:
    """The agency a request is about: the caller's own unless it names one it may see."""
    target = agency or who.agency_id
    if not who.may_see(target):
        raise AuthError(403, "not your agency")
    return target


@deliveries_api.get("")
def list_subscriptions(notifier: TheNotifier, who: Who) -> dict[str, Any]:
    subs = notifier.store.subscriptions(None if who.operator else who.agency_id)
    return {"items": [_summary(notifier, s) for s in subs]}


@deliveries_api.get("/{subscription_id}/deliveries")
def deliveries(
    subscription_id: SubscriptionId,
    notifier: TheNotifier,
    who: Who,
    status: DeliveryStatus | None = None,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """The subscription's status, and each delivery with its attempt history."""
    sub = _subscription_for(notifier, subscription_id, who)
    items = notifier.store.deliveries(sub.id, status, after, limit)
    return {
        "subscription": _summary(notifier, sub),
        "items": items,
        "next_after": items[-1]["id"] if len(items) == limit else None,
    }


@deliveries_api.post("/{subscription_id}/replay")
def replay(subscription_id: SubscriptionId, notifier: TheNotifier, who: Who) -> dict[str, Any]:
    """Dead-lettered (and 410-disabled) deliveries are tried again, with a fresh attempt
    budget and the same idempotency keys; re-enables a disabled subscription."""
    sub = _subscription_for(notifier, subscription_id, who)
    count = notifier.store.replay(sub.id, notifier.now())
    notifier.wake()
    return {"subscription": sub.id, "replayed": count}


@deadlines_api.get("/v1/deadlines")
def deadlines(
    notifier: TheNotifier,
    who: Who,
    agency: AgencyFilter = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
) -> dict[str, Any]:
    """Deadlines this notifier watches for an agency, with what became of them."""
    target = _target(who, agency)
    return {"agency": target, "items": notifier.store.deadlines(target, status)}


@notifications_api.get(
    "/v1/notifications/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "An event stream: `id`, `event` (event or reminder) and `data` (a "
            "notification, JSON) per event; comments keep an idle connection alive.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def stream(
    request: Request,
    notifier: TheNotifier,
    who: Who,
    agency: AgencyFilter = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
    idle_timeout: Annotated[
        float,
        Query(
            ge=0,
            le=3600,
            description="Seconds the stream stays open with nothing new; then it ends and "
            "the client reconnects with Last-Event-ID (0: send what there is, then end).",
        ),
    ] = 300,
) -> StreamingResponse:
    """Server-Sent Events: the same notifications as the webhooks. `id` is a position
    in this notifier; reconnect with `Last-Event-ID` to resume after it."""
    target = _target(who, agency)
    if target not in notifier.agencies:
        raise ProblemError(problem("not-found", f"this notifier does not serve {target}"))
    try:
        start = int(last_event_id) if last_event_id else 0
    except ValueError:
        raise ProblemError(problem("bad-request", "Last-Event-ID must be an integer")) from None
    return StreamingResponse(
        _events(request, notifier, target, start, idle_timeout),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@health_api.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@health_api.get("/readyz")
def readyz(notifier: TheNotifier) -> JSONResponse:
    """Ready once every served agency's subscriptions are loaded and the store answers."""
    try:
        notifier.store.ping()
        waiting = [a for a in notifier.agencies if not notifier.store.known(a)]
    except Exception as exc:  # readiness reports, it does not crash
        raise ProblemError(problem("not-ready", type(exc).__name__)) from exc
    if waiting:
        failures = "; ".join(f"{k}: {v}" for k, v in notifier.errors.items()) or "none"
        why = f"subscriptions of {', '.join(waiting)} not loaded yet (failures: {failures})"
        raise ProblemError(problem("not-ready", why))
    body = {
        "status": "ready",
        "cursors": {a: notifier.store.cursor(a) for a in notifier.agencies},
        "errors": dict(notifier.errors),
    }
    return JSONResponse(body)


def create_app(notifier: Notifier, verifier: TokenVerifier) -> FastAPI:
    """The API of `notifier`; `verifier` checks callers' tokens (audience: this API)."""
    app = FastAPI(
        title="NRM notifier",
        version="1",
        description="Webhook and SSE notifications of received case events (operational "
        "metadata only), delivery status, replay, deadlines and escalations.",
        # no framework spans, metrics or logs: they would carry raw paths and bodies
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.notifier = notifier
    app.state.verifier = verifier
    for router in (deliveries_api, deadlines_api, notifications_api, health_api):
        app.include_router(router)
    install_error_handlers(app)
    openapi_auth.install(app)
    return app


def install_error_handlers(app: FastAPI) -> None:
    """Every error of the notifier's `app` answered as a problem: its refusals are raised
    as problems or token errors already; the framework's map as on every service."""
    install(app, framework_translations(RequestValidationError, HTTPException), JSONResponse)


async def _events(
    request: Request, notifier: Notifier, agency: str, after: int, idle_timeout: float
) -> AsyncIterator[bytes]:
    yield b"retry: 2000\n\n"
    idle = quiet = 0.0
    poll = notifier.sse_poll_seconds
    while not await request.is_disconnected():
        batch = notifier.store.notifications_after(agency, after, 100)
        for seq, kind, body in batch:
            yield b"id: %d\nevent: %s\ndata: %s\n\n" % (seq, kind.encode(), body)
            after = seq
        if batch:
            idle = quiet = 0.0
            continue
        if quiet >= idle_timeout:
            return  # the client reconnects with Last-Event-ID
        await asyncio.sleep(poll)
        idle += poll
        quiet += poll
        if idle >= 15:
            idle = 0.0
            yield b": keep-alive\n\n"
