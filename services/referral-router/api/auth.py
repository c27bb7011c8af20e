"""Who is calling: an agency, proven by a signed token (a DPoP-bound access token with a
fresh proof per request, or a one-time bearer token: `contracts.agency_token`)."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.http import HTTPBase

from contracts.agency_token import AuthError, VerifiedToken
from contracts.dpop import HEADER as PROOF_HEADER
from referral_router.sending.node import AgencyNode


class Authenticator(Protocol):
    """What the routes need to check a caller (contracts.agency_token.TokenVerifier)."""

    def authenticate(
        self, authorization: str | None, *, proof: str | None, method: str, url: str
    ) -> VerifiedToken: ...


# Both schemes appear in the OpenAPI document as alternatives; the check itself reads
# the headers (the DPoP proof needs the method and URL too).
_dpop = HTTPBase(
    scheme="DPoP",
    scheme_name="DPoP",
    description="A DPoP-bound access token (RFC 9449), reusable for up to 15 minutes, with "
    "a fresh proof in the `DPoP` header of every request. `nrm token --agency A` prints a "
    "token; `nrm dpop METHOD URL` makes a proof.",
    auto_error=False,
)
_bearer = HTTPBearer(
    scheme_name="OneTimeBearer",
    bearerFormat="JWT",
    description="A one-time token (at most 120 s, each `jti` accepted once): "
    "`nrm token --agency A --once`.",
    auto_error=False,
)
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


def authenticated_agency(request: Request, proof: str | None) -> str:
    """The calling agency; an AuthError (401/403, answered as a problem with its
    challenge) otherwise."""
    authenticator: Authenticator = request.app.state.check_token
    verified = authenticator.authenticate(
        request.headers.get("authorization"),
        proof=proof,
        method=request.method,
        url=request_url(request),
    )
    return verified.agency_id


def own_agency(
    request: Request,
    _dpop_scheme: Annotated[HTTPAuthorizationCredentials | None, Depends(_dpop)],
    _bearer_scheme: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    proof: Proof = None,
) -> str:
    """The caller must prove it is this node's own agency."""
    agency = authenticated_agency(request, proof)
    if agency != node_of(request).agency_id:
        raise AuthError(403, f"this node serves {node_of(request).agency_id}, not {agency}")
    return agency


def any_agency(
    request: Request,
    _dpop_scheme: Annotated[HTTPAuthorizationCredentials | None, Depends(_dpop)],
    _bearer_scheme: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    proof: Proof = None,
) -> str:
    """Any authenticated agency; the route decides what it may see."""
    return authenticated_agency(request, proof)


Caller = Annotated[str, Depends(own_agency)]
Node = Annotated[AgencyNode, Depends(node_of)]
