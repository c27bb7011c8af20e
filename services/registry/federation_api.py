"""The registry's federation endpoints, included by `registry.api.create_app`.

The operator imports or removes a peer; the signed document is public, like the
directory, because gateways verify it against an anchor, never against the channel.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from contracts.directory import COUNTRY_PATTERN
from contracts.problems import openapi_responses
from registry.callers import Operator, TheRegistry
from registry.federation import FederationBook, PeerInput

router = APIRouter(tags=["federation"], responses=openapi_responses(400, 401, 403, 404, 409, 422))
Country = Annotated[
    str, Path(pattern=COUNTRY_PATTERN, description="The peer country (ISO 3166-1 alpha-2).")
]


@router.put("/v1/federation/peers/{country}")
def import_peer(
    body: PeerInput, country: Country, registry: TheRegistry, by: Operator
) -> dict[str, Any]:
    """Import the peer's trust anchor and publish which of our agencies are counterparts."""
    book = FederationBook(registry)
    federation = book.import_peer(country, body, by)
    return {"serial": book.document().serial, "federation": federation.model_dump(mode="json")}


@router.delete("/v1/federation/peers/{country}")
def remove_peer(
    country: Country,
    registry: TheRegistry,
    by: Operator,
    reason: Annotated[str, Query(min_length=1, max_length=1000)],
) -> dict[str, Any]:
    """End the federation: remove the peer's anchor; the next event is refused."""
    book = FederationBook(registry)
    book.remove_peer(country, reason, by)
    return {"serial": book.document().serial, "ended": country, "reason": reason}


@router.get("/v1/federation")
def federation(registry: TheRegistry) -> Response:
    """The signed federation document; verify it against the registry's anchor."""
    body = FederationBook(registry).signed().to_bytes()
    return Response(body, media_type="application/json")
