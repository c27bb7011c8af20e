"""The gateway's HTTP door: the peer's gateway posts forwardings; operators list crossings.

No token: what is believed comes from the signatures, checked against the peer's
directory through the anchor our registry imported (in production this door sits behind
mutual TLS between the two national coordinators). Handlers are plain `def`: the
gateway's checks ask registries over HTTP and must not block the event loop. Errors are
problems (`contracts.problems`); the runtime installs the node's error table on this app.
"""

from __future__ import annotations

from typing import Any

from fastapi import Body, FastAPI, Query
from fastapi.responses import JSONResponse

from contracts.problems import MEDIA_TYPE, openapi_responses
from referral_router import telemetry
from referral_router.federation.gateway import Gateway
from referral_router.federation.ledgers import CrossingLedger


def create_gateway_app(gateway: Gateway, ledger: CrossingLedger) -> FastAPI:
    app = FastAPI(
        title=f"NRM cross-border gateway {gateway.country} <-> {gateway.peer}",
        version="1",
        description="Relays return-planning events between two federated NRM buses.",
        telemetry=telemetry.FRAMEWORK_TELEMETRY_OFF,
    )

    @app.post(
        "/v1/federation/inbound",
        tags=["federation"],
        status_code=202,
        responses=openapi_responses(400, 403, 422, 503),
    )
    def inbound(body: dict[str, Any] = Body()) -> JSONResponse:
        """A forwarding from the peer's gateway: 202 delivered; a refusal is a problem
        naming the rule."""
        status, answer = gateway.receive(body)
        media_type = MEDIA_TYPE if status >= 400 else None
        return JSONResponse(answer, status_code=status, media_type=media_type)

    @app.get("/v1/federation/crossings", tags=["federation"], responses=openapi_responses(422))
    def crossings(
        after: int = Query(default=0, ge=0, le=2**62),
        limit: int = Query(default=100, ge=1, le=1000),
    ) -> dict[str, Any]:
        items = [c.as_json() for c in ledger.list(after, limit)]
        return {"items": items, "next_after": items[-1]["seq"] if items else after}

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    def readyz() -> dict[str, Any]:
        """Ready, with the return events received and not yet carried across (`pending`)."""
        return {"status": "ready", "peer": gateway.peer, "pending": gateway.pending()}

    return app
