"""The wire shapes of sealing that are not the `Envelope` itself: forwarding records and
the marker of a withheld field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from contracts.envelope import AGENCY_ID_PATTERN, Envelope
from contracts.sealing.canonical import canonical_json
from contracts.timestamps import UtcDateTime
from contracts.vocabulary import DataCategory

SEAL_FORMAT = "nrm-seal/1"
FORWARD_FORMAT = "nrm-forward/1"


class Forwarding(BaseModel):
    """R10: an event passed on by a node that received it, to one new recipient.

    It embeds the original signed envelope unchanged (its ciphertexts are reused, never
    re-encrypted) and adds wraps, under the pairwise case key (case, forwarder,
    recipient), of only the data keys the forwarder could itself unwrap. The forwarder
    signs the whole record, original included. `parent` names the forwarding through
    which the forwarder received the event, if any (chains stay traceable).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["nrm-forward/1"] = FORWARD_FORMAT
    id: UUID
    time: UtcDateTime
    forwarder: str = Field(pattern=AGENCY_ID_PATTERN)
    recipient: str = Field(pattern=AGENCY_ID_PATTERN)
    parent: UUID | None = None
    original: Envelope
    wraps: dict[str, Any] = Field(default_factory=dict)
    signature: dict[str, Any] | None = None

    def signing_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json", exclude={"signature"}))

    def canonical_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))


@dataclass(frozen=True)
class Withheld:
    """Stands in for a field the reader may not (or can no longer) open.

    Never empty, never missing: the reader sees that the field exists and its category.
    """

    category: DataCategory
    reason: Literal["not-entitled", "key-unavailable"] = "not-entitled"

    def to_json(self) -> dict[str, str]:
        return {"withheld": str(self.category), "reason": self.reason}
