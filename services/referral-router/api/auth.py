"""Who is calling: the node's own agency, proven by a short-lived signed token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from contracts.agency_token import AuthError
from referral_router.sending.node import AgencyNode

#: token -> verified agency id; raises an exception with `status` (401/403) and `reason`.
TokenCheck = Callable[[str], str]

_bearer = HTTPBearer(auto_error=False)


def node_of(request: Request) -> AgencyNode:
    node: AgencyNode = request.app.state.node
    return node


def own_agency(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The caller must prove it is this node's own agency (a short-lived signed token)."""
    if credentials is None:
        raise AuthError(401, "missing bearer token")
    agency = verified_agency(request, credentials.credentials)
    if agency != node_of(request).agency_id:
        raise AuthError(403, f"this node serves {node_of(request).agency_id}, not {agency}")
    return agency


def verified_agency(request: Request, token: str) -> str:
    """The agency that signed `token`; a refusal of the check becomes an AuthError."""
    check: TokenCheck = request.app.state.check_token
    try:
        return check(token)
    except Exception as exc:
        status = getattr(exc, "status", None)
        if status in (401, 403):
            raise AuthError(status, str(getattr(exc, "reason", exc))) from exc
        raise


Caller = Annotated[str, Depends(own_agency)]
Node = Annotated[AgencyNode, Depends(node_of)]
