"""The event catalogue: complete, categorised, versioned, and its schemas committed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from contracts.events import CATALOGUE, ReferralDeclined, categories_of
from contracts.schema_export import SCHEMA_DIR, all_schemas, render
from contracts.versions import model_for, upcast
from contracts.vocabulary import DataCategory

DOMAIN = Path(__file__).resolve().parents[2] / "docs" / "domain.md"


def test_the_lifecycle_of_domain_md_is_the_catalogue() -> None:
    if not DOMAIN.exists():
        pytest.fail(f"docs/domain.md not found at {DOMAIN}")
    lifecycle = DOMAIN.read_text().split("## The case lifecycle")[1].split("## Rules")[0]
    named = set(re.findall(r"`([a-z-]+\.[a-z-]+)`", lifecycle))
    assert named == set(CATALOGUE), named ^ set(CATALOGUE)


@pytest.mark.parametrize("event_type", sorted(CATALOGUE))
def test_every_field_has_a_category(event_type: str) -> None:
    cats = categories_of(CATALOGUE[event_type])
    assert cats, event_type
    assert all(isinstance(c, DataCategory) for c in cats.values())


def test_the_most_dangerous_field_is_sealed_as_location() -> None:
    from contracts.events import ReferralAccepted

    assert categories_of(ReferralAccepted)["shelter_address"] is DataCategory.LOCATION


def test_committed_schemas_match_the_models() -> None:
    expected = all_schemas()
    committed = {p.name for p in SCHEMA_DIR.glob("*.json")}
    assert committed == set(expected), "run: python -m contracts.schema_export"
    for name, schema in expected.items():
        assert (SCHEMA_DIR / name).read_text() == render(schema), f"{name} drifted"


def test_schemas_carry_categories() -> None:
    schema = all_schemas()["case.screened.v1.json"]
    assert schema["properties"]["full_name"]["x-category"] == "identity"
    assert schema["properties"]["found_at"]["x-category"] == "location"


def test_v1_referral_declined_upcasts_to_v2() -> None:
    v1 = model_for("referral.declined", 1)
    old = v1.model_validate({"referral_id": "r1", "reason": "no beds"}).model_dump(mode="json")
    new = ReferralDeclined.model_validate(upcast("referral.declined", 1, old))
    assert new.reason_code == "other" and new.reason == "no beds"
    with pytest.raises(ValidationError):
        ReferralDeclined.model_validate(old)  # v1 alone is not a valid v2
    with pytest.raises(ValueError, match="no version 7"):
        model_for("referral.declined", 7)


def test_every_event_type_has_a_valid_example() -> None:
    from contracts.examples import EXAMPLES

    assert list(EXAMPLES) == list(CATALOGUE)
    for event_type, (recipients, payload) in EXAMPLES.items():
        CATALOGUE[event_type].model_validate(payload)  # raises if it went stale
        assert recipients and all(isinstance(r, str) for r in recipients)


README = DOMAIN.parents[1] / "README.md"
ABBREVIATIONS = {
    "FR": "first-responder",
    "CA": "competent-authority",
    "SP": "service-provider",
    "CP": "child-protection",
    "IM": "immigration",
    "AS": "asylum",
    "LE": "law-enforcement",
    "CO": "consulate",
    "CT": "counterpart",
    "NC": "national-coordinator",
}


def _rows(text: str, heading: str) -> list[list[str]]:
    section = text.split(heading, 1)[1]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    out, started = [], False
    for line in section.splitlines():
        if line.startswith("|"):
            started = True
            out.append([c.strip() for c in line.strip("|").split("|")])
        elif started:
            break
    assert lines, heading
    return out[2:]  # without the header and the |---| line


def test_the_readme_catalogue_is_the_catalogue_with_its_senders() -> None:
    from contracts.authority import AUTHORITY

    rows = _rows(README.read_text(), "## Event catalogue")
    assert [r[0].strip("`") for r in rows] == list(CATALOGUE)
    for name, version, senders, records in rows:
        event_type = name.strip("`")
        assert int(version) == CATALOGUE[event_type].version, event_type
        roles = {ABBREVIATIONS[a] for a in senders.split()}
        assert roles == {str(r) for r in AUTHORITY[event_type].emitters}, event_type
        assert records, event_type


def test_the_deadline_table_names_every_escalation_kind_and_policy_key() -> None:
    from contracts.events import EscalationKind
    from contracts.policy import CountryPolicy

    rows = _rows(DOMAIN.read_text(), "### Deadlines and escalations")
    kinds = [re.findall(r"`([a-z-]+)`", r[0])[0] for r in rows]
    assert sorted(kinds) == sorted(EscalationKind)
    for row in rows:
        for key in re.findall(r"`([a-z_]+)`", row[2]):
            assert key in CountryPolicy.model_fields, key
        for event_type in re.findall(r"`([a-z-]+\.[a-z-]+)`", row[1] + row[5]):
            assert event_type in CATALOGUE, event_type
