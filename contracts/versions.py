"""Event versioning: older payload versions stay readable by upcasting to the latest.

An envelope names its payload version in `dataschema`; a node that reads an older one
upcasts the clear and opened fields step by step (v1 -> v2 -> ...), never rewrites the log.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model

from contracts.events import CATALOGUE, OLDER_VERSIONS, UNRECORDED, EventPayload, categories_of
from contracts.indicators import CURRENT_INDICATOR_LIST
from contracts.vocabulary import DataCategory

Fields = dict[str, Any]


def _referral_declined_v1_to_v2(fields: Fields) -> Fields:
    """v1 had only free text: its reason is kept, the closed code says 'other'."""
    return {**fields, "reason_code": "other"}


def _adding(**defaults: Any) -> Callable[[Fields], Fields]:
    """A step that adds fields a version introduced, with the values older records
    stand for."""

    def step(fields: Fields) -> Fields:
        return {**defaults, **fields}

    return step


def _officer(name: str) -> Callable[[Fields], Fields]:
    """A decision that named no officer (R7 did not yet require it) says so: 'unrecorded'."""
    return lambda fields: {**fields, name: fields.get(name) or UNRECORDED}


def _screened_v1_to_v2(fields: Fields) -> Fields:
    """v1 had no sex and uncoded indicators: not stated, and the current list (no code in
    a v1 indicator can contradict it)."""
    return {**fields, "sex": "not-stated", "indicator_list": CURRENT_INDICATOR_LIST}


#: (type, from_version) -> step to from_version + 1
UPCASTERS: Mapping[tuple[str, int], Callable[[Fields], Fields]] = {
    ("case.screened", 1): _screened_v1_to_v2,
    ("referral.declined", 1): _referral_declined_v1_to_v2,
    ("referral.declined", 2): _officer("answered_by_officer"),
    ("identification.decided", 1): _adding(review_id=None),
    ("reflection.ended", 1): _officer("decided_by_officer"),
    ("residence.granted", 1): lambda fields: dict(fields),  # valid_until is clear from v2
    ("return.completed", 1): _officer("confirmed_by_officer"),
    ("case.closed", 1): _officer("decided_by_officer"),
}


def model_for(event_type: str, version: int) -> type[EventPayload]:
    latest = CATALOGUE[event_type]
    if version == latest.version:
        return latest
    try:
        return OLDER_VERSIONS[(event_type, version)]
    except KeyError:
        raise ValueError(f"{event_type} has no version {version}") from None


@cache
def clear_part_model(event_type: str, version: int) -> type[BaseModel]:
    """The operational (clear) fields of a payload version: what a receiver can validate
    before it opens anything, and all that routing and rules read."""
    model = model_for(event_type, version)
    fields: dict[str, Any] = {
        name: (info.annotation, info)
        for name, info in model.model_fields.items()
        if categories_of(model)[name] is DataCategory.OPERATIONAL
    }
    return create_model(  # type: ignore[call-overload,no-any-return]
        f"{model.__name__}Clear", __config__=ConfigDict(extra="forbid"), **fields
    )


def upcast(event_type: str, version: int, fields: Fields) -> Fields:
    """Fields of `version` turned into fields of the latest version."""
    latest = CATALOGUE[event_type].version
    while version < latest:
        fields = UPCASTERS[(event_type, version)](fields)
        version += 1
    return fields
