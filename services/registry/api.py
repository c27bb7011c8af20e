"""The registry's HTTP API: agencies, the agreement, subscriptions, the signed directory.

Writes need a token from the registry operator (the national coordinator); reads need a
token from any registered agency or the operator; the signed directory is public since
nodes verify it against their pinned anchor, not against the channel. Bad input is
answered with a precise 4xx problem and leaves the store untouched; handlers are plain
`def` because the eventsourcing library is synchronous (FastAPI runs them in a
threadpool). The routes are defined here at module level and read the registry from
`app.state` (`registry.callers`); `create_app` only assembles them.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, Path, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import StringConstraints

from contracts import openapi_auth
from contracts.directory import KEY_ID_PATTERN
from contracts.envelope import AGENCY_ID_PATTERN
from contracts.events import CATALOGUE
from contracts.need_to_know import CaseContext
from contracts.problems import ProblemError, openapi_responses, problem
from contracts.vocabulary import DataCategory
from registry.application import Registry
from registry.callers import (
    AgencyId,
    NotifierOrOperator,
    Operator,
    OwnOrOperator,
    Reader,
    TheRegistry,
)
from registry.errors import install_error_handlers
from registry.federation_api import router as federation_router
from registry.models import (
    AgencyRegistration,
    AgreementInput,
    EndpointsChange,
    KeyCompromise,
    KeyRotation,
    StatusChange,
    SubscriptionInput,
)
from registry.witness_api import router as witness_router

KeyId = Annotated[str, Path(pattern=KEY_ID_PATTERN, description="The key's id.")]
SubscriptionId = Annotated[
    str, Path(pattern=r"^sub-[0-9a-f]{16}$", description="The subscription id.")
]
_REFUSALS = openapi_responses(400, 401, 403, 404, 409, 422)

agencies = APIRouter(prefix="/v1/agencies", tags=["agencies"], responses=_REFUSALS)
agreement = APIRouter(prefix="/v1/agreement", tags=["agreement"], responses=_REFUSALS)
subscriptions = APIRouter(
    prefix="/v1/agencies/{agency_id}/subscriptions", tags=["subscriptions"], responses=_REFUSALS
)
every_subscription = APIRouter(
    prefix="/v1/subscriptions", tags=["subscriptions"], responses=_REFUSALS
)
history_router = APIRouter(responses=_REFUSALS)
#: Agencies one request may ask about (a country's bus registers tens to hundreds).
MAX_AGENCIES_ASKED = 500
AgencyIds = Annotated[
    list[Annotated[str, StringConstraints(pattern=AGENCY_ID_PATTERN)]],
    Query(
        alias="agency_id",
        min_length=1,
        max_length=MAX_AGENCIES_ASKED,
        description="The agencies whose subscriptions to list (the parameter repeated).",
    ),
]
public = APIRouter(responses=openapi_responses(422, 503))


# -- agencies: the operator writes, any registered agency reads --


@agencies.post("", status_code=201)
def register(body: AgencyRegistration, registry: TheRegistry, by: Operator) -> dict[str, Any]:
    return registry.register(body, by).model_dump(mode="json")


@agencies.post("/{agency_id}/keys")
def rotate_keys(
    body: KeyRotation, agency_id: AgencyId, registry: TheRegistry, by: Operator
) -> dict[str, Any]:
    """A planned rotation: new keys now, the old ones kept for the grace period."""
    grace = timedelta(hours=body.grace_hours)
    return registry.rotate_keys(agency_id, body.keys, by, grace).model_dump(mode="json")


@agencies.post("/{agency_id}/keys/{key_id}/compromise")
def report_compromise(
    body: KeyCompromise, agency_id: AgencyId, key_id: KeyId, registry: TheRegistry, by: Operator
) -> dict[str, Any]:
    """A compromised key: every node refuses what reaches the transport signed with it
    from `compromised_at` on. Rotate the agency's keys as well."""
    record = registry.report_compromise(agency_id, key_id, body.reason, by, body.compromised_at)
    return record.model_dump(mode="json")


@agencies.post("/{agency_id}/status")
def set_status(
    body: StatusChange, agency_id: AgencyId, registry: TheRegistry, by: Operator
) -> dict[str, Any]:
    return registry.set_status(agency_id, body, by).model_dump(mode="json")


@agencies.put("/{agency_id}/endpoints")
def change_endpoints(
    body: EndpointsChange, agency_id: AgencyId, registry: TheRegistry, by: Operator
) -> dict[str, Any]:
    endpoints = body.endpoints.model_dump(mode="json")
    return registry.change_endpoints(agency_id, endpoints, by).model_dump(mode="json")


@agencies.get("")
def list_agencies(registry: TheRegistry, _: Reader) -> dict[str, Any]:
    d = registry.directory()
    return {"serial": d.serial, "agencies": [a.model_dump(mode="json") for a in d.agencies]}


@agencies.get("/{agency_id}")
def get_agency(agency_id: AgencyId, registry: TheRegistry, _: Reader) -> dict[str, Any]:
    return registry.agency(agency_id).model_dump(mode="json")


# -- the data-sharing agreement --


@agreement.put("")
def put_agreement(body: AgreementInput, registry: TheRegistry, by: Operator) -> dict[str, Any]:
    changed = registry.set_agreement(body, by)
    return {"serial": registry.directory().serial, "agreement": changed.to_dict()}


@agreement.get("")
def get_agreement(registry: TheRegistry, _: Reader) -> dict[str, Any]:
    d = registry.directory()
    return {"serial": d.serial, "agreement": d.agreement}


@agreement.get("/query")
def query_agreement(
    registry: TheRegistry,
    _: Reader,
    agency: Annotated[str, Query(pattern=AGENCY_ID_PATTERN)],
    category: Annotated[DataCategory, Query()],
    event_type: Annotated[str, Query(max_length=100)],
    case_originator: Annotated[str, Query(max_length=63)] = "",
    service_provider: Annotated[list[str] | None, Query()] = None,
    no_origin_contact: Annotated[bool, Query()] = False,
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
        service_providers=frozenset(service_provider or ()),
        no_origin_contact=no_origin_contact,
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


# -- subscriptions: the operator writes; the agency itself or the operator reads --


@subscriptions.post("", status_code=201)
def add_subscription(
    body: SubscriptionInput, agency_id: AgencyId, registry: TheRegistry, by: Operator
) -> dict[str, Any]:
    """The answer carries `secret` once; hand it to the receiving system. It is never
    listed again (the notifier gets it sealed to the agency's encryption key)."""
    view, secret = registry.add_subscription(agency_id, body, by)
    return {**view, "secret": secret}


@subscriptions.get("")
def list_subscriptions(
    agency_id: AgencyId,
    registry: TheRegistry,
    _: OwnOrOperator,
    include_deleted: Annotated[bool, Query()] = False,
) -> dict[str, Any]:
    return {"items": registry.subscriptions(agency_id, include_deleted)}


@every_subscription.get("")
def subscriptions_of(
    agency_ids: AgencyIds,
    registry: TheRegistry,
    _: NotifierOrOperator,
    include_deleted: Annotated[bool, Query()] = False,
) -> dict[str, Any]:
    """Several agencies' subscriptions in one answer, for the notifier that serves them
    (or the operator). An agency the registry does not know is listed under `unknown`,
    so one stale name does not hide the others' subscriptions."""
    asked = list(dict.fromkeys(agency_ids))
    directory = registry.directory()
    known = [a for a in asked if directory.agency(a) is not None]
    return {
        "agencies": registry.subscriptions_of(known, include_deleted),
        "unknown": [a for a in asked if a not in known],
    }


@subscriptions.get("/{subscription_id}")
def get_subscription(
    agency_id: AgencyId, subscription_id: SubscriptionId, registry: TheRegistry, _: OwnOrOperator
) -> dict[str, Any]:
    return registry.subscription(agency_id, subscription_id)


@subscriptions.delete("/{subscription_id}")
def delete_subscription(
    agency_id: AgencyId,
    subscription_id: SubscriptionId,
    registry: TheRegistry,
    by: Operator,
    reason: Annotated[str, Query(min_length=1, max_length=1000)] = "deleted by the operator",
) -> dict[str, Any]:
    return registry.delete_subscription(agency_id, subscription_id, reason, by)


# -- the registry's history, the signed directory, health --


@history_router.get("/v1/history", tags=["audit"])
def history(
    registry: TheRegistry,
    _: Reader,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    items = registry.history(after, limit)
    return {"items": items, "next_after": items[-1]["serial"] if items else after}


@public.get("/v1/directory", tags=["directory"])
def directory(
    registry: TheRegistry, if_none_match: Annotated[str | None, Header()] = None
) -> Response:
    """The signed directory; verify it against the pinned anchor, not the channel."""
    body = registry.signed_directory().to_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest() + '"'
    if if_none_match == etag:
        return Response(status_code=304, headers={"ETag": etag})
    return Response(body, media_type="application/json", headers={"ETag": etag})


@public.get("/healthz", tags=["ops"])
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@public.get("/readyz", tags=["ops"])
def readyz(registry: TheRegistry) -> JSONResponse:
    try:
        serial = registry.directory().serial
    except Exception as exc:  # readiness reports, it does not crash
        raise ProblemError(problem("not-ready", type(exc).__name__)) from exc
    return JSONResponse({"status": "ready", "serial": serial})


def create_app(registry: Registry) -> FastAPI:
    app = FastAPI(
        title="NRM registry",
        version="1",
        description="Agencies, keys, endpoints and the data-sharing agreement of one "
        "country's referral bus; signs the directory every node verifies.",
        # no framework spans, metrics or logs: they would carry raw paths and bodies
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.registry = registry
    for router in (
        agencies,
        agreement,
        subscriptions,
        every_subscription,
        history_router,
        public,
        federation_router,
        witness_router,
    ):
        app.include_router(router)
    install_error_handlers(app)
    openapi_auth.install(app)
    return app
