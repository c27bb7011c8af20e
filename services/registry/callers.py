"""Who calls the registry's API, from the short-lived agency token every API of the bus
takes: the operator (the national coordinator, who alone changes the registry), an
agency about itself, or any registered party. Each is a FastAPI dependency that answers
401/403 as a problem (`contracts.problems`) when the caller is not the one it needs.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Path, Request

from contracts.agency_token import AuthError, VerifiedToken
from contracts.envelope import AGENCY_ID_PATTERN
from registry.application import Registry

AgencyId = Annotated[str, Path(pattern=AGENCY_ID_PATTERN, description="The agency id.")]
Authorization = Annotated[str | None, Header()]
Proof = Annotated[str | None, Header(alias="DPoP", max_length=4096)]


def registry_of(request: Request) -> Registry:
    """The registry the app serves (`app.state.registry`)."""
    registry = request.app.state.registry
    assert isinstance(registry, Registry)
    return registry


TheRegistry = Annotated[Registry, Depends(registry_of)]


def reader(
    request: Request,
    registry: TheRegistry,
    authorization: Authorization = None,
    proof: Proof = None,
) -> str:
    """Any registered agency, or the operator (a DPoP proof names this request)."""
    return registry.token_verifier.authenticate(
        authorization,
        proof=proof,
        method=request.method,
        url=str(request.url.replace(query="", fragment="")),
    ).agency_id


def operator(registry: TheRegistry, caller: Annotated[str, Depends(reader)]) -> str:
    """Only the registry operator changes the registry."""
    if caller != registry.config.operator_id:
        raise AuthError(403, "only the registry operator may change the registry")
    return caller


def own_or_operator(
    registry: TheRegistry, agency_id: AgencyId, authorization: Authorization = None
) -> str:
    """The agency the path names, the operator, or the notifier (its own identity, with
    the scope subscriptions:read)."""
    token = registry.token_verifier.authenticate(authorization)
    if _is_notifier(registry, token):
        return token.agency_id
    if token.agency_id not in (agency_id, registry.config.operator_id):
        raise AuthError(403, "only the agency itself or the operator may read this")
    return token.agency_id


def notifier_or_operator(registry: TheRegistry, authorization: Authorization = None) -> str:
    """The notifier (its own identity, with the scope subscriptions:read) or the
    operator: whoever may read every agency's subscriptions."""
    token = registry.token_verifier.authenticate(authorization)
    if _is_notifier(registry, token):
        return token.agency_id
    if token.agency_id != registry.config.operator_id:
        raise AuthError(403, "only the notifier or the operator may read these")
    return token.agency_id


def _is_notifier(registry: Registry, token: VerifiedToken) -> bool:
    """Whether the token is the notifier's; refused (403) if it lacks the scope."""
    notifier = registry.config.notifier
    if notifier is None or token.agency_id != notifier.id:
        return False
    if "subscriptions:read" not in token.scope:
        raise AuthError(403, "the notifier's token lacks the scope subscriptions:read")
    return True


def own(agency_id: AgencyId, caller: Annotated[str, Depends(reader)]) -> str:
    """The agency the path names, and nobody else."""
    if caller != agency_id:
        raise AuthError(403, f"only {agency_id} itself may do this, not {caller}")
    return caller


Reader = Annotated[str, Depends(reader)]
Operator = Annotated[str, Depends(operator)]
OwnOrOperator = Annotated[str, Depends(own_or_operator)]
NotifierOrOperator = Annotated[str, Depends(notifier_or_operator)]
Own = Annotated[str, Depends(own)]
