"""What travels in clear, and why: every clear field of every event type and every clear
envelope attribute is justified, none is free text, and the facts the who-reads-what
table denies some recipients travel sealed, with routing restrictions in their place.

A canary typed into every free-text field of every event type never appears in the
clear part of the sealed envelope (nor anywhere in its bytes), while an entitled reader
opens it."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from contracts.envelope import Envelope, dataschema_for, source_for
from contracts.events import (
    CATALOGUE,
    OLDER_VERSIONS,
    AsylumLodged,
    BestInterestsDetermined,
    CaseScreened,
    ConsentOverride,
    ErasureOrdered,
    EventPayload,
    ReferralRequested,
    ReturnPlanningStarted,
    RiskAssessed,
    categories_of,
    clear,
)
from contracts.examples import EXAMPLES
from contracts.justification import WHY_KEY, unjustified, why_of
from contracts.legal_basis import MEANINGS, ErasureBasis, OverrideBasis
from contracts.restrictions import PROTECTIVE, RELAXING, Restrictions, set_by
from contracts.sealing import SigningKey, new_case_key, open_envelope, seal
from contracts.vocabulary import DataCategory

MARK = "CANARY-c1ea7"
VERSIONS: list[tuple[str, type[EventPayload]]] = [
    *CATALOGUE.items(),
    *((t, m) for (t, _), m in OLDER_VERSIONS.items()),
]


def clear_names(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(n for n, c in categories_of(model).items() if c is DataCategory.OPERATIONAL)


@pytest.mark.parametrize(("event_type", "model"), VERSIONS, ids=[f"{t}" for t, _ in VERSIONS])
def test_every_clear_field_says_who_needs_it_to_decide_what(
    event_type: str, model: type[EventPayload]
) -> None:
    assert unjustified(model, clear_names(model)) == [], event_type
    schema = model.model_json_schema()
    for name in clear_names(model):
        assert len(schema["properties"][name][WHY_KEY]) >= 12, (event_type, name)
    for name in set(model.model_fields) - clear_names(model):  # sealed: no clear reason
        assert WHY_KEY not in schema["properties"][name], (event_type, name)


def test_every_clear_envelope_attribute_and_restriction_is_justified() -> None:
    assert unjustified(Envelope, frozenset(Envelope.model_fields) - {"sealed"}) == []
    assert unjustified(Restrictions) == []
    assert set(PROTECTIVE) | set(RELAXING) == set(Restrictions.model_fields)


def test_an_unjustified_clear_field_is_caught() -> None:
    """The check itself can fail: a clear field added without a reason is named, and the
    catalogue's own helper refuses one without a real justification."""

    class Careless(EventPayload):
        note: str = clear(description="x", why="R7: oversight reads it")
        tag: str = CaseScreened.model_fields["age_status"].__class__(
            default="", json_schema_extra={"x-category": "operational"}
        )

    assert unjustified(Careless, clear_names(Careless)) == ["tag"]
    assert why_of(Careless.model_fields["note"]) == "R7: oversight reads it"
    with pytest.raises(TypeError):
        clear(description="no reason given")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="justification"):
        clear(description="x", why="because")


def _free_text(schema: dict[str, Any], defs: dict[str, Any], path: str) -> list[str]:
    """Paths of string values in `schema` that are free text (no pattern, code list,
    constant or format)."""
    if "$ref" in schema:
        return _free_text(defs[schema["$ref"].split("/")[-1]], defs, path)
    out: list[str] = []
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key, []):
            out += _free_text(sub, defs, path)
    if schema.get("type") == "string" and not (
        {"pattern", "enum", "const", "format"} & set(schema)
    ):
        out.append(path)
    if schema.get("type") == "array" and "items" in schema:
        out += _free_text(schema["items"], defs, f"{path}[]")
    for name, sub in schema.get("properties", {}).items():
        out += _free_text(sub, defs, f"{path}.{name}")
    return out


@pytest.mark.parametrize(("event_type", "model"), VERSIONS, ids=[f"{t}" for t, _ in VERSIONS])
def test_no_clear_field_is_free_text(event_type: str, model: type[EventPayload]) -> None:
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    found = [
        p
        for name in clear_names(model)
        for p in _free_text(schema["properties"][name], defs, name)
        if (event_type, model.version) != ("referral.declined", 1)  # v1: read only
    ]
    assert found == [], event_type


def test_the_free_text_check_finds_free_text() -> None:
    schema = CaseScreened.model_json_schema()
    found = _free_text(schema["properties"]["indicators"], schema["$defs"], "indicators")
    assert found == ["indicators[].observation", "indicators[].code"]


def test_facts_behind_restrictions_are_sealed_in_their_categories() -> None:
    assert categories_of(AsylumLodged)["refugee"] is DataCategory.LEGAL_STATUS
    assert categories_of(RiskAssessed)["serious_risk"] is DataCategory.DECISION
    assert categories_of(BestInterestsDetermined)["return_in_best_interests"] is (
        DataCategory.DECISION
    )
    assert categories_of(ReturnPlanningStarted)["destination_country"] is DataCategory.IDENTITY
    assert categories_of(ReferralRequested)["override_explanation"] is DataCategory.DECISION
    # a legal basis is a code from a closed list, each with its meaning
    assert ConsentOverride.model_fields["legal_basis"].annotation is OverrideBasis
    assert ErasureOrdered.model_fields["legal_basis"].annotation is ErasureBasis
    assert set(MEANINGS) == set(OverrideBasis) | set(ErasureBasis)
    with pytest.raises(ValueError):
        ConsentOverride(legal_basis="Child Protection Act s.12", authorised_by_officer="o")


def test_the_sender_sets_restrictions_from_facts_it_seals() -> None:
    assert set_by(AsylumLodged(refugee=True)) == Restrictions(no_origin_contact=True)
    assert set_by(RiskAssessed(serious_risk=True, assessed_by_officer="o")).no_origin_contact
    assert set_by(RiskAssessed(serious_risk=False, assessed_by_officer="o")) == Restrictions()
    against = set_by(
        BestInterestsDetermined(
            decided_by_officer="o", return_in_best_interests=False, child_heard="in-person"
        )
    )
    assert against == Restrictions(no_return=True, best_interests_determined=True)
    child = CaseScreened.model_validate({**EXAMPLES["case.screened"][1], "age_status": "disputed"})
    assert set_by(child) == Restrictions(presumed_child=True)


# --- the canary, in every free-text field of every event type ---------------------------

#: Sealed strings checked against a published list (the indicator list and its codes):
#: not typed freely, so the canary cannot go there.
LISTED = frozenset({"indicator_list", "code"})


def _marked(value: Any, schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    """`value` with the canary in every free-text string `schema` describes."""
    if "$ref" in schema:
        return _marked(value, defs[schema["$ref"].split("/")[-1]], defs)
    for key in ("anyOf", "oneOf"):
        for sub in schema.get(key, []):
            if sub.get("type") != "null":
                return _marked(value, sub, defs)
    kind = schema.get("type")
    if kind == "string" and not ({"pattern", "enum", "const", "format"} & set(schema)):
        return f"{MARK} {value or ''}"[: schema.get("maxLength", 10_000)]
    if kind == "array":
        items = value if value else ([""] if schema["items"].get("type") == "string" else [])
        return [_marked(v, schema["items"], defs) for v in items]
    if kind == "object" and isinstance(value, dict):
        props = schema.get("properties", {})
        return {
            k: _marked(v, props[k], defs) if k in props and k not in LISTED else v
            for k, v in value.items()
        }
    return value


def marked_payload(event_type: str) -> EventPayload:
    """The catalogue's example of `event_type`, with the canary typed into every
    free-text field (sealed or clear: the contract decides which it is)."""
    model = CATALOGUE[event_type]
    schema = model.model_json_schema()
    data = dict(EXAMPLES[event_type][1])
    for name, info in schema["properties"].items():
        if name in LISTED:
            continue
        default = model.model_fields[name].get_default(call_default_factory=True)
        data[name] = _marked(data.get(name, default), info, schema.get("$defs", {}))
    return model.model_validate(data)


@pytest.mark.parametrize("event_type", sorted(CATALOGUE))
def test_a_canary_in_every_free_text_field_never_appears_in_clear(event_type: str) -> None:
    payload = marked_payload(event_type)
    typed = json.dumps(payload.model_dump(mode="json"))
    texts = typed.count(MARK)
    sender = SigningKey.generate("agency-a", "agency-a-sig-1")
    own = new_case_key("case-canary0001", "agency-a", "agency-a")
    clear = {
        n: v for n, v in payload.model_dump(mode="json").items() if n in clear_names(type(payload))
    }
    env = Envelope(
        id=uuid.uuid4(),
        source=source_for("XA", "agency-a"),
        type=event_type,
        subject="case-canary0001",
        time=datetime.now(UTC),
        dataschema=dataschema_for(event_type),
        sender="agency-a",
        recipients=("agency-b",),
        restrictions=set_by(payload),
        operational=clear,
    )
    sealed = seal(env, payload, signer=sender, entitlements={}, case_keys={"agency-a": own})
    wire = sealed.canonical_bytes()
    assert MARK.encode() not in wire, event_type
    assert MARK not in json.dumps(sealed.model_dump(mode="json", exclude={"sealed"}))
    # positive control: the canary was typed in wherever text is free, and opens again
    opened = open_envelope(
        sealed, "agency-a", lambda *a: own, lambda *a: sender.public_key()
    ).to_json()
    assert json.dumps(opened).count(MARK) == texts
    free = [
        p
        for n in categories_of(type(payload))
        for p in _free_text(
            type(payload).model_json_schema()["properties"][n],
            type(payload).model_json_schema().get("$defs", {}),
            n,
        )
    ]
    fields = {p.split(".")[0].split("[")[0] for p in free} - LISTED
    assert texts >= len(fields) >= (1 if free else 0)
