"""The wire shapes of sealing that are not the `Envelope` itself: forwarding records and
the marker of a withheld field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from contracts.envelope import AGENCY_ID_PATTERN, Envelope
from contracts.events import LOCAL_ID_PATTERN, OFFICER_ID_PATTERN, ConsentOverride
from contracts.sealing.canonical import canonical_json
from contracts.timestamps import UtcDateTime
from contracts.vocabulary import DataCategory

SEAL_FORMAT = "nrm-seal/1"
FORWARD_FORMAT = "nrm-forward/2"


class ForwardingBasis(BaseModel):
    """On what an agency passed a case on (R9, as for a referral, and R7): the person's
    consent naming the new recipient, or an override with a legal-basis code, and the
    officer who decided. Clear and signed: the disclosure record lists it. A border
    gateway's forwardings carry none: the federation agreement is their basis."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    consent_id: str | None = Field(default=None, pattern=LOCAL_ID_PATTERN)
    consent_override: ConsentOverride | None = None
    by_officer: str = Field(min_length=1, max_length=64, pattern=OFFICER_ID_PATTERN)


class Forwarding(BaseModel):
    """R10: an event passed on by a node that received it, to one new recipient.

    It embeds the original signed envelope unchanged (its ciphertexts are reused, never
    re-encrypted) and adds wraps, under the pairwise case key (case, forwarder,
    recipient), of only the data keys the forwarder could itself unwrap. The forwarder
    signs the whole record, original included. `parent` names the forwarding through
    which the forwarder received the event, if any (chains stay traceable); `basis` says
    on what it was passed on (none for a border gateway's).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["nrm-forward/2"] = FORWARD_FORMAT
    id: UUID
    time: UtcDateTime
    forwarder: str = Field(pattern=AGENCY_ID_PATTERN)
    recipient: str = Field(pattern=AGENCY_ID_PATTERN)
    parent: UUID | None = None
    basis: ForwardingBasis | None = None
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
