"""The notifier's HTTP API: delivery status and attempts, replay, the SSE stream, health.

Callers authenticate with the same short-lived agency tokens as every API of the bus
(audience: this notifier). An agency sees only its own subscriptions and notifications;
the registry operator (national coordinator), when configured, sees all. Answers carry
metadata only (ids, types, status codes, times): never a personal field.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from contracts.agency_token import AuthError, ReplayCache, TokenVerifier
from contracts.directory import AgencyStatus, PublicKeyRecord
from contracts.envelope import AGENCY_ID_PATTERN

if TYPE_CHECKING:
    from notifier.runtime import NotifierRuntime

SubscriptionId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
DeliveryStatus = Literal["pending", "delivered", "dead", "gone"]


@dataclass(frozen=True)
class _Operator:
    status: AgencyStatus
    keys: list[PublicKeyRecord]


class _Parties:
    """The directory's agencies plus the registry operator (not in the directory)."""

    def __init__(self, runtime: NotifierRuntime) -> None:
        self._rt = runtime
        s = runtime.settings
        self._operator = _Operator(AgencyStatus.ACTIVE, list(s.operator_keys))

    def agency(self, agency_id: str) -> Any:
        if agency_id == self._rt.settings.operator_id:
            return self._operator
        return self._rt.directory().agency(agency_id)

    def signing_key(self, agency_id: str, key_id: str, at_time: datetime) -> Any:
        if agency_id == self._rt.settings.operator_id:
            return next(
                (
                    k
                    for k in self._operator.keys
                    if k.key_id == key_id and k.use == "signing" and k.valid_at(at_time)
                ),
                None,
            )
        return self._rt.directory().signing_key(agency_id, key_id, at_time)


@dataclass(frozen=True)
class Caller:
    agency_id: str
    operator: bool

    def may_see(self, agency_id: str) -> bool:
        return self.operator or self.agency_id == agency_id


def caller(request: Request, authorization: str | None = Header(default=None)) -> Caller:
    """An agency this notifier serves, or the operator; 401/403 otherwise."""
    runtime: NotifierRuntime = request.app.state.runtime
    agency_id = request.app.state.verifier.authenticate(authorization).agency_id
    if agency_id == runtime.settings.operator_id:
        return Caller(agency_id, True)
    if agency_id not in runtime.agencies:
        raise AuthError(403, f"this notifier does not serve {agency_id}")
    return Caller(agency_id, False)


Who = Annotated[Caller, Depends(caller)]


def create_app(runtime: NotifierRuntime) -> FastAPI:
    app = FastAPI(
        title="NRM notifier",
        version="1",
        description="Webhook and SSE notifications of received case events (operational "
        "metadata only), delivery status, replay, deadlines and escalations.",
    )
    app.state.runtime = runtime
    parties = _Parties(runtime)
    app.state.verifier = TokenVerifier(
        lambda: parties, runtime.settings.audience, replay_cache=ReplayCache()
    )

    @app.exception_handler(AuthError)
    async def _auth(_: Request, exc: AuthError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"detail": exc.reason}, status_code=exc.status, headers=headers)

    def subscription_for(subscription_id: str, who: Caller) -> Any:
        sub = runtime.store.subscription(subscription_id)
        if sub is None:
            raise HTTPException(404, f"no subscription {subscription_id}")
        if not who.may_see(sub.agency_id):
            raise AuthError(403, "not your subscription")
        return sub

    def summary(sub: Any) -> dict[str, Any]:
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
            "deliveries": runtime.store.delivery_counts(sub.id),
        }

    @app.get("/v1/subscriptions", tags=["deliveries"])
    def list_subscriptions(who: Who) -> dict[str, Any]:
        subs = runtime.store.subscriptions(None if who.operator else who.agency_id)
        return {"items": [summary(s) for s in subs]}

    @app.get("/v1/subscriptions/{subscription_id}/deliveries", tags=["deliveries"])
    def deliveries(
        subscription_id: SubscriptionId,
        who: Who,
        status: DeliveryStatus | None = None,
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> dict[str, Any]:
        """The subscription's status, and each delivery with its attempt history."""
        sub = subscription_for(subscription_id, who)
        items = runtime.store.deliveries(sub.id, status, after, limit)
        return {
            "subscription": summary(sub),
            "items": items,
            "next_after": items[-1]["id"] if len(items) == limit else None,
        }

    @app.post("/v1/subscriptions/{subscription_id}/replay", tags=["deliveries"])
    def replay(subscription_id: SubscriptionId, who: Who) -> dict[str, Any]:
        """Dead-lettered (and 410-disabled) deliveries are tried again, with a fresh
        attempt budget and the same idempotency keys; re-enables a disabled subscription."""
        sub = subscription_for(subscription_id, who)
        count = runtime.store.replay(sub.id, runtime.now())
        runtime.wake()
        return {"subscription": sub.id, "replayed": count}

    @app.get("/v1/deadlines", tags=["deadlines"])
    def deadlines(
        who: Who,
        agency: Annotated[str | None, Query(pattern=AGENCY_ID_PATTERN)] = None,
        status: Annotated[str | None, Query(max_length=20)] = None,
    ) -> dict[str, Any]:
        """Deadlines this notifier watches for an agency, with what became of them."""
        target = agency or who.agency_id
        if not who.may_see(target):
            raise AuthError(403, "not your agency")
        return {"agency": target, "items": runtime.store.deadlines(target, status)}

    @app.get("/v1/notifications/stream", tags=["notifications"])
    async def stream(
        request: Request,
        who: Who,
        agency: Annotated[str | None, Query(pattern=AGENCY_ID_PATTERN)] = None,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
    ) -> StreamingResponse:
        """Server-Sent Events: the same notifications as the webhooks. `id` is a position
        in this notifier; reconnect with `Last-Event-ID` to resume after it."""
        target = agency or who.agency_id
        if not who.may_see(target):
            raise AuthError(403, "not your agency")
        if target not in runtime.agencies:
            raise HTTPException(404, f"this notifier does not serve {target}")
        try:
            start = int(last_event_id) if last_event_id else 0
        except ValueError:
            raise HTTPException(400, "Last-Event-ID must be an integer") from None
        return StreamingResponse(
            _events(request, runtime, target, start),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        """Ready once every served agency's subscriptions are loaded and the store answers."""
        try:
            runtime.store.ping()
            waiting = [a for a in runtime.agencies if not runtime.store.known(a)]
        except Exception as exc:  # readiness reports, it does not crash
            return JSONResponse({"status": "unready", "reason": type(exc).__name__}, 503)
        body = {
            "status": "unready" if waiting else "ready",
            "cursors": {a: runtime.store.cursor(a) for a in runtime.agencies},
            "errors": dict(runtime.errors),
        }
        return JSONResponse(body, 503 if waiting else 200)

    return app


async def _events(
    request: Request, runtime: NotifierRuntime, agency: str, after: int
) -> AsyncIterator[bytes]:
    yield b"retry: 2000\n\n"
    idle = 0.0
    poll = runtime.settings.sse_poll_seconds
    while not await request.is_disconnected():
        batch = runtime.store.notifications_after(agency, after, 100)
        for seq, kind, body in batch:
            yield b"id: %d\nevent: %s\ndata: %s\n\n" % (seq, kind.encode(), body)
            after = seq
        if batch:
            idle = 0.0
            continue
        await asyncio.sleep(poll)
        idle += poll
        if idle >= 15:
            idle = 0.0
            yield b": keep-alive\n\n"
