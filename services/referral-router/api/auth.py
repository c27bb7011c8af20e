"""Who is calling: an agency, proven by a signed token (a DPoP-bound access token with a
fresh proof per request, or a one-time bearer token: `contracts.agency_token`); or the
node's notifier, a service with its own identity whose tokens are scoped to reading the
log's clear parts (`log:read`) and appending escalations (`escalate`), nothing else."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Protocol

from fastapi import Depends, Header, Request

from contracts.agency_token import AuthError, VerifiedToken, token_issuer
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
    return _verified(authenticator, request, authorization, proof).agency_id


def _verified(
    authenticator: Authenticator, request: Request, authorization: str | None, proof: str | None
) -> VerifiedToken:
    return authenticator.authenticate(
        authorization,
        proof=proof,
        method=request.method,
        url=request_url(request),
    )


async def _node(request: Request) -> AgencyNode:
    """`node_of` as a dependency: async, so FastAPI runs it on the event loop."""
    return node_of(request)


async def own_agency(
    request: Request, authorization: Authorization = None, proof: Proof = None
) -> str:
    """The caller must prove it is this node's own agency. Async, like every dependency
    of the hot routes: no thread hop per request."""
    return _own(request, authorization, proof)


def _own(request: Request, authorization: str | None, proof: str | None) -> str:
    return _own_token(request, authorization, proof).agency_id


def _own_token(request: Request, authorization: str | None, proof: str | None) -> VerifiedToken:
    verified = _verified(request.app.state.check_token, request, authorization, proof)
    if verified.agency_id != node_of(request).agency_id:
        served = node_of(request).agency_id
        raise AuthError(403, f"this node serves {served}, not {verified.agency_id}")
    return verified


def any_agency(request: Request, authorization: Authorization = None, proof: Proof = None) -> str:
    """Any authenticated agency; the route decides what it may see."""
    return authenticated_agency(request, authorization, proof)


LOG_READ, ESCALATE, ERASE_RETENTION = "log:read", "escalate", "erase:retention"


@dataclass(frozen=True)
class Submitter:
    """Who calls: the agency itself, or its notifier (scoped: see the routes)."""

    agency_id: str
    notifier: bool = False
    #: The notifier token's scopes (none for the agency itself).
    scopes: frozenset[str] = frozenset()
    #: When the caller's token expires: nothing it opened (a stream of the log) outlives it.
    expires_at: datetime | None = None


def _own_or_notifier(
    request: Request, authorization: str | None, proof: str | None, *scopes: str
) -> Submitter:
    """The node's notifier when the token claims to be its (then with one of `scopes`),
    else the node's own agency."""
    check: Authenticator | None = getattr(request.app.state, "check_notifier", None)
    notifier: str | None = getattr(request.app.state, "notifier_id", None)
    token = (authorization or "").partition(" ")[2].strip()
    if check is None or notifier is None or token_issuer(token) != notifier:
        own = _own_token(request, authorization, proof)
        return Submitter(own.agency_id, expires_at=own.expires_at)
    verified = _verified(check, request, authorization, proof)
    if verified.scope.isdisjoint(scopes):
        raise AuthError(403, f"the notifier's token lacks the scope {' or '.join(scopes)!r}")
    return Submitter(
        node_of(request).agency_id,
        notifier=True,
        scopes=verified.scope,
        expires_at=verified.expires_at,
    )


async def log_reader(
    request: Request, authorization: Authorization = None, proof: Proof = None
) -> Submitter:
    """The agency, or its notifier with `log:read`: the log holds clear parts only."""
    return _own_or_notifier(request, authorization, proof, LOG_READ)


async def submitter(
    request: Request, authorization: Authorization = None, proof: Proof = None
) -> Submitter:
    """The agency, or its notifier with `escalate` or `erase:retention` (the route allows
    it escalations, and erasure orders when a retention period ended, only)."""
    return _own_or_notifier(request, authorization, proof, ESCALATE, ERASE_RETENTION)


Caller = Annotated[str, Depends(own_agency)]
LogReader = Annotated[Submitter, Depends(log_reader)]
Appender = Annotated[Submitter, Depends(submitter)]
Node = Annotated[AgencyNode, Depends(_node)]
