"""The gateway's two HTTP doors.

- The border door (`create_border_app`): the peer's gateway posts forwardings. It is
  served with mutual TLS pinned to the one certificate the federation agreement names for
  the peer's gateway, so nothing else completes a handshake; each delivery is also
  stamped, fresh and once (`Gateway.receive`). What is believed of a forwarding comes
  from its signatures, checked against the peer's directory through the anchor our
  registry imported.
- The local door (`create_gateway_app`): the crossings ledger, for the gateway agency
  itself and for oversight bodies (a short-lived agency token, as every API of the bus).

Handlers are plain `def`: the gateway's checks ask registries over HTTP and must not block
the event loop. Errors are problems (`contracts.problems`); the runtime installs the
node's error table on both apps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse

from contracts import openapi_auth
from contracts.agency_token import AuthError, VerifiedToken
from contracts.directory import AgencyStatus, Directory
from contracts.problems import MEDIA_TYPE, openapi_responses
from contracts.vocabulary import Role
from referral_router import telemetry
from referral_router.federation.gateway import Gateway
from referral_router.federation.ledgers import CrossingLedger

#: The Authorization header (and for DPoP: proof, method, URL) -> the verified token
#: (raises AuthError 401/403): contracts.agency_token.TokenVerifier.authenticate.
Authenticate = Callable[..., VerifiedToken]


def _health(app: FastAPI) -> None:
    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}


def create_border_app(gateway: Gateway) -> FastAPI:
    app = FastAPI(
        title=f"NRM cross-border gateway {gateway.country} <- {gateway.peer} (border door)",
        version="1",
        description="Takes forwardings from the peer's gateway (mutual TLS, pinned).",
        telemetry=telemetry.FRAMEWORK_TELEMETRY_OFF,
    )

    @app.post(
        "/v1/federation/inbound",
        tags=["federation"],
        status_code=202,
        responses=openapi_responses(400, 403, 422, 503),
    )
    def inbound(body: dict[str, Any] = Body()) -> JSONResponse:
        """A stamped forwarding from the peer's gateway: 202 delivered; a refusal is a
        problem naming the rule."""
        status, answer = gateway.receive(body)
        media_type = MEDIA_TYPE if status >= 400 else None
        return JSONResponse(answer, status_code=status, media_type=media_type)

    _health(app)
    return app


def gateway_or_oversight(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> str:
    """The gateway agency itself, or an active agency with the oversight role."""
    state = request.app.state
    gateway: Gateway = state.gateway
    url = str(request.url.replace(query="", fragment=""))
    proof = request.headers.get("DPoP")
    caller = state.authenticate(
        authorization, proof=proof, method=request.method, url=url
    ).agency_id
    if caller == gateway.agency_id:
        return str(caller)
    record = state.directory().agency(caller)
    if record is None or record.status is not AgencyStatus.ACTIVE:
        raise AuthError(403, f"{caller} is not an active agency of {gateway.country}")
    if Role.OVERSIGHT not in record.roles:
        raise AuthError(403, "the crossings are for the gateway itself and oversight")
    return str(caller)


def create_gateway_app(
    gateway: Gateway,
    ledger: CrossingLedger,
    authenticate: Authenticate,
    directory: Callable[[], Directory],
) -> FastAPI:
    app = FastAPI(
        title=f"NRM cross-border gateway {gateway.country} <-> {gateway.peer}",
        version="1",
        description="The crossings between two federated NRM buses, for the gateway "
        "agency and oversight bodies.",
    )

    app.state.gateway, app.state.authenticate, app.state.directory = (
        gateway,
        authenticate,
        directory,
    )

    @app.get(
        "/v1/federation/crossings",
        tags=["federation"],
        responses=openapi_responses(401, 403, 422),
    )
    def crossings(
        _: Annotated[str, Depends(gateway_or_oversight)],
        after: int = Query(default=0, ge=0, le=2**62),
        limit: int = Query(default=100, ge=1, le=1000),
    ) -> dict[str, Any]:
        items = [c.as_json() for c in ledger.list(after, limit)]
        return {"items": items, "next_after": items[-1]["seq"] if items else after}

    @app.get("/readyz", tags=["ops"])
    def readyz() -> dict[str, Any]:
        """Ready, with the return events received and not yet carried across (`pending`)."""
        return {"status": "ready", "peer": gateway.peer, "pending": gateway.pending()}

    _health(app)
    openapi_auth.install(app)
    return app
