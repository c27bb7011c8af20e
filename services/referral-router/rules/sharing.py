"""R9 at the sender, for every event: what the person's consent lets go to each recipient.

The agreement (R5) says what a role may read; consent narrows it for consent-bound roles
(`contracts.need_to_know.CONSENT_BOUND_ROLES`: service providers). The scope of a consent
persists per recipient: every later event to that recipient shares only the categories
its active consents cover, and after `consent.withdrawn` nothing personal goes there
unless a referral to it recorded an override with a legal basis (which persists: the
legal basis does not depend on consent). A consented referral shares no more than the
consent it names. An agency with several roles is capped if any role is consent-bound.
Pure: the node intersects these caps with the agreement's entitlements.
"""

from __future__ import annotations

from collections.abc import Mapping

from contracts.need_to_know import consent_bound
from contracts.vocabulary import DataCategory, Role
from referral_router.rules.lifecycle import CaseState, Proposal

#: recipient -> the most it may receive; None: no cap beyond the agreement.
Caps = dict[str, frozenset[DataCategory] | None]


def consent_caps(state: CaseState, p: Proposal) -> Caps:
    """Per recipient of `p`, the personal categories the person's consent allows."""
    op = p.operational
    referred = str(op["to_agency"]) if p.event_type == "referral.requested" else None
    caps: Caps = {}
    for agency, roles in p.recipients.items():
        if agency == referred:
            caps[agency] = referral_cap(
                state, agency, roles, op.get("consent_id"), op.get("consent_override")
            )
        else:
            caps[agency] = standing_cap(state, agency, roles)
    return caps


def referral_cap(
    state: CaseState,
    agency: str,
    roles: frozenset[Role],
    consent_id: object,
    override: object,
) -> frozenset[DataCategory] | None:
    """What a referral (or a passing on, R10) to `agency` may share, on the consent or
    override it names: a consented one no more than that consent."""
    if not consent_bound(roles) or override:
        return None
    named = state.consents.get(str(consent_id))
    if named is not None and named.active and agency in named.recipients:
        return _categories(named.categories)
    return standing_cap(state, agency, roles)


def standing_cap(
    state: CaseState, agency: str, roles: frozenset[Role]
) -> frozenset[DataCategory] | None:
    """What any event may share with `agency`: its active consents' categories, unless
    an earlier referral to it recorded an override, or its roles need no consent."""
    if not consent_bound(roles) or agency in state.overrides:
        return None
    return _categories(state.consented(agency))


def capped(
    entitled: Mapping[str, frozenset[DataCategory]], caps: Caps
) -> dict[str, frozenset[DataCategory]]:
    """The agreement's entitlements, narrowed by consent."""
    out: dict[str, frozenset[DataCategory]] = {}
    for agency, categories in entitled.items():
        cap = caps.get(agency)
        out[agency] = categories if cap is None else categories & cap
    return out


def _categories(names: frozenset[str]) -> frozenset[DataCategory]:
    return frozenset(DataCategory(c) for c in names)
