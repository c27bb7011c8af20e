"""Why a field travels in clear: every clear payload field and every clear envelope
attribute carries a justification, saying who needs it in clear to decide what.

The clear part of an envelope is read by every recipient, every node operator and every
oversight body; a fact that is there is disclosed to all of them. So nothing is clear
by default: a field is clear only with a stated reason, recorded in its JSON Schema as
`x-why` (a keyword published with its own meta-schema, like `x-category`), and a test
fails when a clear field has none. A clear field is also never free text: an officer
could type anything into one, so every clear text is an identifier (a pattern), a code
from a closed list, a number, a flag or a time.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

WHY_KEY = "x-why"
#: A justification long enough to name a reader and a decision.
MIN_WHY = 12


def justified(why: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """JSON Schema extras carrying `why` (and any other annotation in `extra`)."""
    if len(why.strip()) < MIN_WHY:
        raise ValueError(f"a clear field needs a justification (who decides what): {why!r}")
    return {**(extra or {}), WHY_KEY: why}


def why_of(info: FieldInfo) -> str | None:
    """The justification of a field, None when it has none."""
    extra = info.json_schema_extra
    if isinstance(extra, dict):
        why = extra.get(WHY_KEY)
        return why if isinstance(why, str) else None
    return None


def unjustified(model: type[BaseModel], names: frozenset[str] | None = None) -> list[str]:
    """Fields of `model` (all, or those in `names`) that travel without a justification."""
    return [
        name
        for name, info in model.model_fields.items()
        if (names is None or name in names) and why_of(info) is None
    ]
