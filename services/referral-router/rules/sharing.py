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
from contracts.vocabulary import DataCategory
from referral_router.rules.lifecycle import CaseState, Proposal

#: recipient -> the most it may receive; None: no cap beyond the agreement.
Caps = dict[str, frozenset[DataCategory] | None]


def consent_caps(state: CaseState, p: Proposal) -> Caps:
    """Per recipient of `p`, the personal categories the person's consent allows."""
    op = p.operational
    referred = str(op["to_agency"]) if p.event_type == "referral.requested" else None
    caps: Caps = {}
    for agency, roles in p.recipients.items():
        if not consent_bound(roles):
            caps[agency] = None
            continue
        if agency == referred:
            if op.get("consent_override"):
                caps[agency] = None
                continue
            named = state.consents.get(str(op.get("consent_id")))
            if named is not None and named.active and agency in named.recipients:
                caps[agency] = _categories(named.categories)
                continue
        if agency in state.overrides:
            caps[agency] = None
            continue
        caps[agency] = _categories(state.consented(agency))
    return caps


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
