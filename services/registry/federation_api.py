"""The registry's federation endpoints, included by `registry.api.create_app`.

The operator imports or removes a peer; the signed document is public, like the
directory, because gateways verify it against an anchor, never against the channel.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import Response

from contracts.agency_token import AuthError
from contracts.directory import COUNTRY_PATTERN
from registry.application import Registry
from registry.federation import FederationBook, PeerInput

router = APIRouter(tags=["federation"])
Country = Path(pattern=COUNTRY_PATTERN, description="The peer country (ISO 3166-1 alpha-2).")


def _registry(request: Request) -> Registry:
    registry = request.app.state.registry
    assert isinstance(registry, Registry)
    return registry


def _operator(request: Request, authorization: str | None = Header(default=None)) -> str:
    registry = _registry(request)
    agency_id = registry.token_verifier.authenticate(authorization).agency_id
    if agency_id != registry.config.operator_id:
        raise AuthError(403, "only the registry operator may change the federation")
    return agency_id


@router.put("/v1/federation/peers/{country}")
def import_peer(
    body: PeerInput, request: Request, country: str = Country, by: str = Depends(_operator)
) -> dict[str, Any]:
    """Import the peer's trust anchor and publish which of our agencies are counterparts."""
    book = FederationBook(_registry(request))
    federation = book.import_peer(country, body, by)
    return {"serial": book.document().serial, "federation": federation.model_dump(mode="json")}


@router.delete("/v1/federation/peers/{country}")
def remove_peer(
    request: Request,
    country: str = Country,
    reason: str = Query(min_length=1, max_length=1000),
    by: str = Depends(_operator),
) -> dict[str, Any]:
    """End the federation: remove the peer's anchor; the next event is refused."""
    book = FederationBook(_registry(request))
    book.remove_peer(country, reason, by)
    return {"serial": book.document().serial, "ended": country, "reason": reason}


@router.get("/v1/federation")
def federation(request: Request) -> Response:
    """The signed federation document; verify it against the registry's anchor."""
    body = FederationBook(_registry(request)).signed().to_bytes()
    return Response(body, media_type="application/json")
