"""Who is calling: the node's own agency, proven by a short-lived signed token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from referral_router.api.errors import NotAuthenticated
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
        raise NotAuthenticated(401, "missing bearer token")
    check: TokenCheck = request.app.state.check_token
    try:
        agency = check(credentials.credentials)
    except Exception as exc:
        status = getattr(exc, "status", None)
        if status in (401, 403):
            raise NotAuthenticated(status, str(getattr(exc, "reason", exc))) from exc
        raise
    if agency != node_of(request).agency_id:
        raise NotAuthenticated(403, f"this node serves {node_of(request).agency_id}, not {agency}")
    return agency


Caller = Annotated[str, Depends(own_agency)]
Node = Annotated[AgencyNode, Depends(node_of)]
