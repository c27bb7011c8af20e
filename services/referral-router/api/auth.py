"""Who is calling: an agency, proven by a signed token (a DPoP-bound access token with a
fresh proof per request, or a one-time bearer token: `contracts.agency_token`)."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends, Header, Request

from contracts.agency_token import AuthError, VerifiedToken
from contracts.dpop import HEADER as PROOF_HEADER
from referral_router.sending.node import AgencyNode


class Authenticator(Protocol):
    """What the routes need to check a caller (contracts.agency_token.TokenVerifier)."""

    def authenticate(
        self, authorization: str | None, *, proof: str | None, method: str, url: str
    ) -> VerifiedToken: ...


#: The token; `contracts.openapi_auth` documents it as the bus's two security schemes.
Authorization = Annotated[str | None, Header()]
Proof = Annotated[
    str | None,
    Header(
        alias=PROOF_HEADER,
        max_length=4096,
        description="DPoP proof for this request (with `Authorization: DPoP`).",
    ),
]


def node_of(request: Request) -> AgencyNode:
    node: AgencyNode = request.app.state.node
    return node


def request_url(request: Request) -> str:
    """The URL as the client addressed it: the configured public base URL (behind a
    proxy) or the one the request itself names, without the query."""
    base: str | None = getattr(request.app.state, "public_url", None)
    if base:
        return base.rstrip("/") + request.url.path
    return str(request.url.replace(query="", fragment=""))


def authenticated_agency(request: Request, authorization: str | None, proof: str | None) -> str:
    """The calling agency; an AuthError (401/403, answered as a problem with its
    challenge) otherwise."""
    authenticator: Authenticator = request.app.state.check_token
    verified = authenticator.authenticate(
        authorization,
        proof=proof,
        method=request.method,
        url=request_url(request),
    )
    return verified.agency_id


async def _node(request: Request) -> AgencyNode:
    """`node_of` as a dependency: async, so FastAPI runs it on the event loop."""
    return node_of(request)


async def own_agency(
    request: Request, authorization: Authorization = None, proof: Proof = None
) -> str:
    """The caller must prove it is this node's own agency. Async, like every dependency
    of the hot routes: no thread hop per request."""
    agency = authenticated_agency(request, authorization, proof)
    if agency != node_of(request).agency_id:
        raise AuthError(403, f"this node serves {node_of(request).agency_id}, not {agency}")
    return agency


def any_agency(request: Request, authorization: Authorization = None, proof: Proof = None) -> str:
    """Any authenticated agency; the route decides what it may see."""
    return authenticated_agency(request, authorization, proof)


Caller = Annotated[str, Depends(own_agency)]
Node = Annotated[AgencyNode, Depends(_node)]
