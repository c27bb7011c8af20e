"""The contracts of the whole process: older versions upcast, the indicator list by
version, every deadline named once across contracts, router, notifier and AsyncAPI, and
the clear fields of the new events say why they are clear."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from importlib import resources
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from contracts.events import (
    CATALOGUE,
    OLDER_VERSIONS,
    UNRECORDED,
    WHY_KEY,
    CaseScreened,
    EscalationKind,
    categories_of,
)
from contracts.indicators import CURRENT_INDICATOR_LIST, INDICATOR_LISTS
from contracts.policy import DEADLINE_NAMES, load_policy
from contracts.versions import model_for, upcast
from contracts.vocabulary import DataCategory

#: One payload of every older version, as a sender of that version wrote it.
OLD: dict[tuple[str, int], dict[str, Any]] = {
    ("case.screened", 1): {
        "forms_of_exploitation": ["forced-labour"],
        "age_status": "adult",
        "screened_by_officer": "bp-1",
        "full_name": "A. Example",
        "nationality": "XB",
        "found_at": "a farm",
        "indicators": [{"form": "forced-labour", "strength": "strong", "observation": "o"}],
    },
    ("referral.declined", 1): {"referral_id": "r", "reason": "full"},
    ("referral.declined", 2): {"referral_id": "r", "reason_code": "capacity"},
    ("identification.decided", 1): {
        "stage": "conclusive",
        "decided_by_officer": "o",
        "outcome": "negative",
    },
    ("reflection.ended", 1): {"reason_code": "expired"},
    ("residence.granted", 1): {
        "decided_by_officer": "o",
        "permit_type": "victim",
        "valid_until": "2027-01-01",
    },
    ("return.completed", 1): {"voluntary": True},
    ("case.closed", 1): {"reason_code": "not-a-victim"},
}


def test_every_older_version_has_a_sample() -> None:
    assert set(OLD) == set(OLDER_VERSIONS)


@pytest.mark.parametrize(("key"), sorted(OLD))
def test_every_older_version_upcasts_to_a_valid_latest(key: tuple[str, int]) -> None:
    event_type, version = key
    old = model_for(event_type, version).model_validate(OLD[key]).model_dump(mode="json")
    new = CATALOGUE[event_type].model_validate(upcast(event_type, version, old))
    for name, value in old.items():  # nothing an older sender wrote is lost
        if name in type(new).model_fields and value is not None:
            assert new.model_dump(mode="json")[name] == value, name


def test_an_upcast_decision_says_its_officer_was_not_recorded() -> None:
    """R7: a decision from before the officer was required does not invent one."""
    old = OLD[("referral.declined", 2)]
    assert upcast("referral.declined", 2, old)["answered_by_officer"] == UNRECORDED
    named = {**old, "answered_by_officer": "sh-7"}
    assert upcast("referral.declined", 2, named)["answered_by_officer"] == "sh-7"
    assert upcast("case.closed", 1, OLD[("case.closed", 1)])["decided_by_officer"] == UNRECORDED


@pytest.mark.parametrize(
    ("event_type", "version"),
    [
        ("referral.requested", 1),
        ("referral.requested", 2),
        ("best-interests.determined", 1),
        ("best-interests.determined", 2),
    ],
)
def test_a_version_that_carried_a_fact_or_free_text_in_clear_is_refused(
    event_type: str, version: int
) -> None:
    """The free-text legal basis of an override, a best-interests finding: not upcast."""
    with pytest.raises(ValueError, match="has no version"):
        model_for(event_type, version)


def _screening(**changes: Any) -> dict[str, Any]:
    indicator = {
        "form": "domestic-servitude",
        "strength": "strong",
        "observation": "o",
        "code": "domestic-servitude/confined-or-isolated",
    }
    return {**OLD[("case.screened", 1)], "indicators": [indicator], **changes}


def test_indicators_are_coded_against_a_named_version_of_the_list() -> None:
    ok = CaseScreened.model_validate(_screening())
    assert ok.indicator_list == CURRENT_INDICATOR_LIST in INDICATOR_LISTS
    common = {
        "form": "organ-removal",
        "strength": "weak",
        "observation": "o",
        "code": "common/threats-or-violence",
    }
    CaseScreened.model_validate(_screening(indicators=[common]))  # common: any form
    wrong_form = {**common, "code": "domestic-servitude/no-private-space"}
    with pytest.raises(ValidationError, match="not an indicator of organ-removal"):
        CaseScreened.model_validate(_screening(indicators=[wrong_form]))
    with pytest.raises(ValidationError, match="unknown indicator list"):
        CaseScreened.model_validate(_screening(indicator_list="bali-2099.9"))
    uncoded = {"form": "slavery", "strength": "medium", "observation": "o"}
    assert CaseScreened.model_validate(_screening(indicators=[uncoded])).indicators[0].code is None


def test_sex_and_the_list_version_are_sealed() -> None:
    cats = categories_of(CaseScreened)
    assert cats["sex"] is DataCategory.IDENTITY
    assert cats["indicator_list"] is DataCategory.EXPLOITATION_ACCOUNT


NEW_TYPES = (
    "identification.review-requested",
    "residence.renewed",
    "residence.ended",
    "age.assessed",
    "family.traced",
    "cooperation.decided",
    "witness-protection.decided",
    "proceedings.opened",
    "proceedings.concluded",
    "non-punishment.decided",
    "rights.explained",
    "complaint.lodged",
    "complaint.answered",
    "compensation.decided",
    "compensation.paid",
    "case.linked",
)


@pytest.mark.parametrize("event_type", NEW_TYPES)
def test_every_clear_field_of_a_new_event_says_why_and_no_free_text_is_clear(
    event_type: str,
) -> None:
    schema = CATALOGUE[event_type].model_json_schema()
    for name, prop in schema["properties"].items():
        if prop.get("x-category") != "operational":
            continue
        assert prop.get(WHY_KEY), (event_type, name)
        text = prop.get("type") == "string" and "pattern" not in prop and "format" not in prop
        assert not (text and prop.get("maxLength", 0) > 64), (event_type, name)


def test_every_deadline_is_named_once_everywhere() -> None:
    from notifier.deadlines import ERASURES, ESCALATIONS, REMINDERS
    from referral_router.rules.admission import DEADLINE_RULES

    assert set(DEADLINE_RULES) == set(DEADLINE_NAMES)
    assert set(ESCALATIONS) | set(REMINDERS) | set(ERASURES) == set(DEADLINE_NAMES)
    assert set(ESCALATIONS.values()) == set(EscalationKind)
    doc = yaml.safe_load(resources.files("contracts").joinpath("asyncapi.yaml").read_text())
    schemas = doc["components"]["schemas"]
    assert schemas["caseEventHeaders"]["properties"]["ce_type"]["enum"] == list(CATALOGUE)
    deadlines = schemas["envelopeValue"]["properties"]["deadlines"]
    assert deadlines["propertyNames"]["enum"] == list(DEADLINE_NAMES)


@pytest.mark.parametrize("country", ["XA", "XB"])
def test_the_policy_files_carry_every_deadline(country: str) -> None:
    policy = load_policy(country)
    t = datetime(2026, 3, 1, 9, tzinfo=UTC)
    assert policy.re_referral_due(t) == t + timedelta(hours=policy.re_referral_hours)
    assert policy.guardian_due(t) > t and policy.review_due(t) > t
    assert policy.complaint_answer_due(t) > t and policy.outcome_information_due(t) > t
    far = date(2030, 1, 1)
    due = policy.residence_renewal_due(t, far)
    assert due == datetime(2030, 1, 1, tzinfo=UTC) - timedelta(
        days=policy.residence_renewal_notice_days
    )
    assert policy.residence_renewal_due(t, date(2026, 3, 2)) == t  # already in its notice
