"""Event forms are read from the published JSON Schemas: every field of every event type
has an input (or is an officer field the session fills), what is posted becomes the
payload the API would get, and the contract's own model judges it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts.events import CATALOGUE, latest_version
from referral_router.console.forms import form_for, payload_of, validate

SCHEMAS = Path(__file__).resolve().parents[2] / "contracts" / "schemas"


@pytest.mark.parametrize("event_type", sorted(CATALOGUE))
def test_every_field_of_the_schema_has_an_input_or_is_the_officer(event_type: str) -> None:
    schema = json.loads((SCHEMAS / f"{event_type}.v{latest_version(event_type)}.json").read_text())
    form = form_for(event_type)
    rendered = {f.name for f in form.fields}
    assert rendered | set(form.officer_fields) == set(schema["properties"])
    assert not rendered & set(form.officer_fields)
    assert all(name.endswith("_by_officer") for name in form.officer_fields)
    for f in form.fields:
        assert f.category == form.labels[f.name][1] and f.category is not None
        assert f.sealed == (f.category != "operational")
    # clear fields come first: what routing and rules read is filled in first
    sealed = [f.sealed for f in form.fields]
    assert sealed == sorted(sealed)


def test_a_screening_form_round_trips_to_the_contract_model() -> None:
    posted = {
        "forms_of_exploitation": ["forced-labour", "domestic-servitude"],
        "age_status": ["adult"],
        "full_name": ["  A. Person "],
        "date_of_birth": ["1999-04-01"],
        "nationality": ["XB"],
        "languages": ["xb-lang\n\nen\n"],
        "found_at": ["Market"],
        "indicators.0.form": ["forced-labour"],
        "indicators.0.strength": ["strong"],
        "indicators.0.observation": ["no pay"],
        "indicators.1.form": [""],
        "indicators.1.strength": [""],
        "indicators.1.observation": [""],
        "screened_by_officer": ["someone-else"],  # a forged officer field is ignored
    }
    payload, errors = payload_of(form_for("case.screened"), posted, "bp-0042")
    assert errors == []
    model, problems = validate("case.screened", payload)
    assert problems == [] and model is not None
    assert model.screened_by_officer == "bp-0042"
    assert model.full_name == "A. Person" and model.languages == ["xb-lang", "en"]
    assert len(model.indicators) == 1 and str(model.date_of_birth) == "1999-04-01"


def test_a_consent_override_is_authorised_by_the_signed_in_officer() -> None:
    form = form_for("referral.requested")
    base = {"referral_id": ["r1"], "to_agency": ["child-protection"], "service": ["shelter"]}
    payload, _ = payload_of(form, base, "bp-0042")
    assert "consent_override" not in payload  # left empty: none
    forged = {
        **base,
        "consent_override.legal_basis": ["child-protection"],
        "consent_override.authorised_by_officer": ["someone-else"],
    }
    payload, _ = payload_of(form, forged, "bp-0042")
    assert payload["consent_override"] == {
        "legal_basis": "child-protection",
        "authorised_by_officer": "bp-0042",
    }
    model, problems = validate("referral.requested", payload)
    assert problems == [] and model is not None


def test_errors_name_the_field_they_belong_to() -> None:
    form = form_for("reflection.extended")
    _, errors = payload_of(form, {"extra_days": ["soon"]}, "im-0033")
    assert [(e.name, e.message) for e in errors] == [
        ("extra_days", "Input should be a whole number")
    ]
    payload, _ = payload_of(form, {"extra_days": ["400"]}, "im-0033")
    _, problems = validate("reflection.extended", payload)
    assert [p.name for p in problems] == ["extra_days"]
    assert "less than or equal to 365" in problems[0].message
    payload, _ = payload_of(form_for("case.screened"), {}, "bp-1")
    _, problems = validate("case.screened", payload)
    missing = {p.name for p in problems}
    assert {"forms_of_exploitation", "age_status", "full_name", "indicators"} <= missing


def test_an_unknown_event_type_has_no_form() -> None:
    with pytest.raises(KeyError):
        form_for("case.invented")
