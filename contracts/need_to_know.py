"""Rule R5 (need-to-know), R4 (non-refoulement), R9 (consent) and R10 (forwarding) as
pure functions.

A data-sharing agreement maps (data category, role) to a condition; the condition is
evaluated against the recipient and a small, clear case context. Nothing here reads a
personal field: entitlements are decided from the operational envelope alone.

An agency may hold several roles: what it may read is the union of its roles' grants,
but a bar on any one of its roles bars the agency (the strictest bar wins): R4 empties
the entitlements of every role of the country of origin's side once the case may not
contact it,
and R9 caps a consent-bound role at what the person consented to.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources

from contracts.vocabulary import PERSONAL_CATEGORIES, DataCategory, Role, ServiceKind

#: Return events: the "return only" condition opens them to the origin's side, and only
#: they cross a border. Family tracing is one: the counterpart in the country of origin
#: often traces the family, and a child's return waits for its complicity check (R2).
RETURN_EVENT_TYPES: frozenset[str] = frozenset(
    {
        "family.traced",
        "return.planning-started",
        "return.plan-agreed",
        "return.completed",
        "reintegration.monitored",
    }
)


#: R4: the country of origin's side. The directory does not say which state a consulate or
#: counterpart represents, so every one of them counts as the origin's (fail safe): once
#: the case may not contact the country of origin (an asylum claim, refugee status, a
#: serious risk found) none of them may open anything of it, return events included.
ORIGIN_SIDE_ROLES: frozenset[Role] = frozenset({Role.CONSULATE, Role.COUNTERPART})

#: R9: roles that receive personal data only with the person's consent (for the
#: categories consented) or an override with a recorded legal basis. Statutory bodies
#: receive what the agreement grants them; an NGO service provider needs consent.
CONSENT_BOUND_ROLES: frozenset[Role] = frozenset({Role.SERVICE_PROVIDER})


class Condition(StrEnum):
    """On what condition a role may read a category."""

    ALWAYS = "always"
    OWN_CASES = "own-cases"
    OWN_SERVICE = "own-service"
    RETURN_ONLY = "return-only"
    MEDICAL_ONLY = "medical-only"
    PROTECTION_UNIT = "protection-unit"


class AgreementError(ValueError):
    """An agreement that names an unknown category, role or condition."""


@dataclass(frozen=True)
class Agreement:
    """A data-sharing agreement: category -> role -> condition."""

    name: str
    grants: Mapping[DataCategory, Mapping[Role, Condition]]

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Agreement:
        """Parse and validate; every name must be a known category, role and condition."""
        name = data.get("name")
        raw = data.get("grants")
        if not isinstance(name, str) or not name:
            raise AgreementError("agreement needs a non-empty 'name'")
        if not isinstance(raw, Mapping):
            raise AgreementError("agreement needs a 'grants' object")
        grants: dict[DataCategory, dict[Role, Condition]] = {}
        for cat_name, by_role in raw.items():
            try:
                category = DataCategory(cat_name)
            except ValueError:
                raise AgreementError(f"unknown data category {cat_name!r}") from None
            if category is DataCategory.OPERATIONAL:
                raise AgreementError("the operational category is readable by all; do not grant it")
            if not isinstance(by_role, Mapping):
                raise AgreementError(f"grants of {cat_name!r} must be an object")
            grants[category] = {}
            for role_name, cond_name in by_role.items():
                try:
                    role = Role(role_name)
                except ValueError:
                    raise AgreementError(f"unknown role {role_name!r} in {cat_name!r}") from None
                try:
                    grants[category][role] = Condition(cond_name)
                except ValueError:
                    raise AgreementError(
                        f"unknown condition {cond_name!r} for {role_name!r} in {cat_name!r}"
                    ) from None
        return cls(name=name, grants=grants)

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "grants": {
                str(c): {str(r): str(cond) for r, cond in sorted(by_role.items())}
                for c, by_role in sorted(self.grants.items())
            },
        }


def load_default_agreement() -> Agreement:
    """The agreement of the 'who reads what' table in docs/domain.md, shipped as data."""
    text = resources.files("contracts").joinpath("agreements/default.json").read_text()
    return Agreement.from_dict(json.loads(text))


@dataclass(frozen=True)
class Recipient:
    """What the rules need to know about a receiving agency."""

    agency_id: str
    role: Role
    services: frozenset[ServiceKind] = frozenset()
    country: str = ""


@dataclass(frozen=True)
class CaseContext:
    """Clear facts about the case that entitlement depends on."""

    event_type: str
    case_originator: str = ""
    service_providers: frozenset[str] = frozenset()
    #: R4's restriction on the case (an asylum claim, refugee status, a serious risk).
    no_origin_contact: bool = False
    #: R10: what the forwarding agency itself could open; None when not forwarding.
    forwarding_limit: frozenset[DataCategory] | None = field(default=None)


def _condition_holds(cond: Condition, who: Recipient, ctx: CaseContext) -> bool:
    match cond:
        case Condition.ALWAYS:
            return True
        case Condition.OWN_CASES:
            return who.agency_id == ctx.case_originator
        case Condition.OWN_SERVICE:
            return who.agency_id in ctx.service_providers
        case Condition.RETURN_ONLY:
            return ctx.event_type in RETURN_EVENT_TYPES
        case Condition.MEDICAL_ONLY:
            return ServiceKind.MEDICAL in who.services
        case Condition.PROTECTION_UNIT:
            return ServiceKind.PROTECTION in who.services
    return False  # pragma: no cover - exhaustive above


def origin_side(roles: Iterable[Role]) -> bool:
    """Whether an agency holding `roles` is on the country of origin's side (R4)."""
    return not ORIGIN_SIDE_ROLES.isdisjoint(roles)


def consent_bound(roles: Iterable[Role]) -> bool:
    """Whether an agency holding `roles` needs consent or an override for personal data."""
    return not CONSENT_BOUND_ROLES.isdisjoint(roles)


def origin_barred(who: Recipient, ctx: CaseContext) -> bool:
    """R4: once the case may not contact the country of origin (asylum lodged, refugee
    status, a serious risk found), nothing personal of it reaches a consulate or a
    counterpart (or a gateway, which holds the counterpart role)."""
    return who.role in ORIGIN_SIDE_ROLES and ctx.no_origin_contact


def entitled_categories(
    agreement: Agreement, who: Recipient, ctx: CaseContext
) -> frozenset[DataCategory]:
    """The personal categories `who` may open in an event of this case.

    Operational data is always readable and is not listed. R4 empties the set for the
    origin's side once the case may not contact the country of origin; R10 intersects
    it with what a forwarder could open.
    """
    if origin_barred(who, ctx):
        return frozenset()
    allowed = frozenset(
        cat
        for cat in PERSONAL_CATEGORIES
        if (cond := agreement.grants.get(cat, {}).get(who.role)) is not None
        and _condition_holds(cond, who, ctx)
    )
    if ctx.forwarding_limit is not None:
        allowed &= ctx.forwarding_limit
    return allowed
