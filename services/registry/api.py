"""The registry's HTTP API.

Writes need a token from the registry operator (the national coordinator); reads need a
token from any registered agency or the operator; the signed directory is public since
nodes verify it against their pinned anchor, not against the channel. Bad input is
answered with a precise 4xx and leaves the store untouched; handlers are plain `def`
because the eventsourcing library is synchronous (FastAPI runs them in a threadpool).
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from contracts.agency_token import AuthError
from contracts.envelope import AGENCY_ID_PATTERN
from contracts.events import CATALOGUE
from contracts.need_to_know import CaseContext
from contracts.vocabulary import DataCategory
from registry.application import Registry, RegistryError
from registry.federation_api import router as federation_router
from registry.models import (
    AgencyRegistration,
    AgreementInput,
    EndpointsChange,
    KeyRotation,
    StatusChange,
    SubscriptionInput,
)
from registry.witness_api import router as witness_router

AgencyId = Path(pattern=AGENCY_ID_PATTERN, description="The agency id.")
SubscriptionId = Path(pattern=r"^sub-[0-9a-f]{16}$", description="The subscription id.")


def _errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Field path, message and type only: never echo the offending input back."""
    return [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type", "")}
        for e in exc.errors()
    ]


def create_app(registry: Registry) -> FastAPI:
    app = FastAPI(
        title="NRM registry",
        version="1",
        description="Agencies, keys, endpoints and the data-sharing agreement of one "
        "country's referral bus; signs the directory every node verifies.",
    )
    app.state.registry = registry

    @app.exception_handler(AuthError)
    def _auth(_: Request, exc: AuthError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"detail": exc.reason}, status_code=exc.status, headers=headers)

    @app.exception_handler(RegistryError)
    def _registry(_: Request, exc: RegistryError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _errors(exc)}, status_code=422)

    def operator(authorization: str | None = Header(default=None)) -> str:
        """Authenticated as anyone known, then authorized only if it is the operator."""
        agency_id = registry.token_verifier.authenticate(authorization).agency_id
        if agency_id != registry.config.operator_id:
            raise AuthError(403, "only the registry operator may change the registry")
        return agency_id

    def reader(authorization: str | None = Header(default=None)) -> str:
        return registry.token_verifier.authenticate(authorization).agency_id

    # -- writes (operator) --

    @app.post("/v1/agencies", status_code=201, tags=["agencies"])
    def register(body: AgencyRegistration, by: str = Depends(operator)) -> dict[str, Any]:
        return registry.register(body, by).model_dump(mode="json")

    @app.post("/v1/agencies/{agency_id}/keys", tags=["agencies"])
    def rotate_keys(
        body: KeyRotation, agency_id: str = AgencyId, by: str = Depends(operator)
    ) -> dict[str, Any]:
        return registry.rotate_keys(agency_id, body.keys, by).model_dump(mode="json")

    @app.post("/v1/agencies/{agency_id}/status", tags=["agencies"])
    def set_status(
        body: StatusChange, agency_id: str = AgencyId, by: str = Depends(operator)
    ) -> dict[str, Any]:
        return registry.set_status(agency_id, body, by).model_dump(mode="json")

    @app.put("/v1/agencies/{agency_id}/endpoints", tags=["agencies"])
    def change_endpoints(
        body: EndpointsChange, agency_id: str = AgencyId, by: str = Depends(operator)
    ) -> dict[str, Any]:
        endpoints = body.endpoints.model_dump(mode="json")
        return registry.change_endpoints(agency_id, endpoints, by).model_dump(mode="json")

    @app.put("/v1/agreement", tags=["agreement"])
    def put_agreement(body: AgreementInput, by: str = Depends(operator)) -> dict[str, Any]:
        agreement = registry.set_agreement(body, by)
        return {"serial": registry.directory().serial, "agreement": agreement.to_dict()}

    def own_or_operator(
        agency_id: str = AgencyId, authorization: str | None = Header(default=None)
    ) -> str:
        """Subscriptions are read by the agency itself (its notifier) or the operator."""
        caller = registry.token_verifier.authenticate(authorization).agency_id
        if caller not in (agency_id, registry.config.operator_id):
            raise AuthError(403, "only the agency itself or the operator may read this")
        return caller

    # -- subscriptions (operator writes; the agency itself or the operator reads) --

    @app.post("/v1/agencies/{agency_id}/subscriptions", status_code=201, tags=["subscriptions"])
    def add_subscription(
        body: SubscriptionInput, agency_id: str = AgencyId, by: str = Depends(operator)
    ) -> dict[str, Any]:
        """The answer carries `secret` once; hand it to the receiving system. It is never
        listed again (the notifier gets it sealed to the agency's encryption key)."""
        view, secret = registry.add_subscription(agency_id, body, by)
        return {**view, "secret": secret}

    @app.get("/v1/agencies/{agency_id}/subscriptions", tags=["subscriptions"])
    def list_subscriptions(
        agency_id: str = AgencyId,
        include_deleted: bool = Query(default=False),
        _: str = Depends(own_or_operator),
    ) -> dict[str, Any]:
        return {"items": registry.subscriptions(agency_id, include_deleted)}

    @app.get("/v1/agencies/{agency_id}/subscriptions/{subscription_id}", tags=["subscriptions"])
    def get_subscription(
        agency_id: str = AgencyId,
        subscription_id: str = SubscriptionId,
        _: str = Depends(own_or_operator),
    ) -> dict[str, Any]:
        return registry.subscription(agency_id, subscription_id)

    @app.delete("/v1/agencies/{agency_id}/subscriptions/{subscription_id}", tags=["subscriptions"])
    def delete_subscription(
        agency_id: str = AgencyId,
        subscription_id: str = SubscriptionId,
        reason: str = Query(default="deleted by the operator", min_length=1, max_length=1000),
        by: str = Depends(operator),
    ) -> dict[str, Any]:
        return registry.delete_subscription(agency_id, subscription_id, reason, by)

    # -- reads (any registered agency) --

    @app.get("/v1/agencies", tags=["agencies"])
    def list_agencies(_: str = Depends(reader)) -> dict[str, Any]:
        d = registry.directory()
        return {"serial": d.serial, "agencies": [a.model_dump(mode="json") for a in d.agencies]}

    @app.get("/v1/agencies/{agency_id}", tags=["agencies"])
    def get_agency(agency_id: str = AgencyId, _: str = Depends(reader)) -> dict[str, Any]:
        return registry.agency(agency_id).model_dump(mode="json")

    @app.get("/v1/agreement", tags=["agreement"])
    def get_agreement(_: str = Depends(reader)) -> dict[str, Any]:
        d = registry.directory()
        return {"serial": d.serial, "agreement": d.agreement}

    @app.get("/v1/agreement/query", tags=["agreement"])
    def query_agreement(
        agency: str = Query(pattern=AGENCY_ID_PATTERN),
        category: DataCategory = Query(),
        event_type: str = Query(max_length=100),
        case_originator: str = Query(default="", max_length=63),
        service_provider: list[str] = Query(default=[]),
        asylum_lodged: bool = Query(default=False),
        _: str = Depends(reader),
    ) -> dict[str, Any]:
        """May agency X read category C of an event of type T (in this case context)?"""
        if event_type not in CATALOGUE:
            raise RequestValidationError(
                [
                    {
                        "loc": ("query", "event_type"),
                        "msg": f"unknown event type {event_type!r}",
                        "type": "value_error",
                    }
                ]
            )
        d = registry.directory()
        record = registry.agency(agency)
        ctx = CaseContext(
            event_type=event_type,
            case_originator=case_originator,
            service_providers=frozenset(service_provider),
            asylum_lodged=asylum_lodged,
        )
        grants = d.parsed_agreement.grants.get(category, {})
        return {
            "agency": agency,
            "status": str(record.status),
            "category": str(category),
            "event_type": event_type,
            "may_read": d.may_read(agency, category, ctx),
            "conditions": {str(r): str(grants[r]) for r in record.roles if r in grants},
            "serial": d.serial,
        }

    @app.get("/v1/history", tags=["audit"])
    def history(
        after: int = Query(default=0, ge=0),
        limit: int = Query(default=100, ge=1, le=1000),
        _: str = Depends(reader),
    ) -> dict[str, Any]:
        items = registry.history(after, limit)
        return {"items": items, "next_after": items[-1]["serial"] if items else after}

    # -- public --

    @app.get("/v1/directory", tags=["directory"])
    def directory(if_none_match: str | None = Header(default=None)) -> Response:
        """The signed directory; verify it against the pinned anchor, not the channel."""
        body = registry.signed_directory().to_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest() + '"'
        if if_none_match == etag:
            return Response(status_code=304, headers={"ETag": etag})
        return Response(body, media_type="application/json", headers={"ETag": etag})

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    def readyz() -> JSONResponse:
        try:
            serial = registry.directory().serial
        except Exception as exc:  # readiness reports, it does not crash
            return JSONResponse({"status": "unready", "reason": type(exc).__name__}, 503)
        return JSONResponse({"status": "ready", "serial": serial})

    app.include_router(federation_router)
    app.include_router(witness_router)
    return app
