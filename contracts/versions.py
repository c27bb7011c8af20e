"""Event versioning: older payload versions stay readable by upcasting to the latest.

An envelope names its payload version in `dataschema`; a node that reads an older one
upcasts the clear and opened fields step by step (v1 -> v2 -> ...), never rewrites the log.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model

from contracts.events import CATALOGUE, OLDER_VERSIONS, EventPayload, categories_of
from contracts.vocabulary import DataCategory

Fields = dict[str, Any]


def _referral_declined_v1_to_v2(fields: Fields) -> Fields:
    """v1 had only free text: its reason is kept, the closed code says 'other'."""
    return {**fields, "reason_code": "other"}


#: (type, from_version) -> step to from_version + 1
UPCASTERS: Mapping[tuple[str, int], Callable[[Fields], Fields]] = {
    ("referral.declined", 1): _referral_declined_v1_to_v2,
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
