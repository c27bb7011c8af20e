"""The HTTP bodies of a router node's API, derived from the event catalogue: what agency
systems send and read. A contract, so the node and the client library (`nrm_client`)
share one definition of the wire format.

One body model per event type, joined into a union discriminated by `type`, so the
OpenAPI document spells out every event's payload and a schema violation names its path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

from contracts.envelope import AGENCY_ID_PATTERN, CASE_PSEUDONYM_PATTERN
from contracts.events import (
    CATALOGUE,
    EVENT_ID_PATTERN,
    LOCAL_ID_PATTERN,
    OFFICER_ID_PATTERN,
    CaseScreened,
    ConsentOverride,
)
from contracts.problems import Problem
from contracts.restrictions import Restrictions

AgencyId = Annotated[str, Field(pattern=AGENCY_ID_PATTERN)]
Recipients = Annotated[list[AgencyId], Field(min_length=1, max_length=50)]


class ScreenCase(BaseModel):
    """Open a new case: the first event of every case is `case.screened`."""

    model_config = ConfigDict(extra="forbid")
    recipients: Recipients
    payload: CaseScreened


def _event_body(event_type: str) -> type[BaseModel]:
    name = "".join(part.capitalize() for part in event_type.replace("-", ".").split(".")) + "Body"
    return create_model(  # type: ignore[call-overload,no-any-return]
        name,
        __config__=ConfigDict(extra="forbid"),
        type=(Literal[event_type], ...),  # type: ignore[valid-type]
        recipients=(Recipients, ...),
        payload=(CATALOGUE[event_type], ...),
    )


_BODIES = tuple(_event_body(t) for t in CATALOGUE if t != "case.screened")
AppendEvent = Annotated[Union[_BODIES], Field(discriminator="type")]  # type: ignore[valid-type]  # noqa: UP007


class EventReceipt(BaseModel):
    """What a node recorded: clear facts only."""

    case: str
    event_id: str
    type: str
    time: datetime
    recipients: list[str]
    deadlines: dict[str, datetime]
    restrictions: Restrictions
    shared: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Per recipient, the personal categories it can open (R5, R4, R9).",
    )
    position: int | None = None


class ForwardCase(BaseModel):
    """Pass a case on to another agency (R10), as a referral would: on the person's
    consent naming it, or an override with a legal-basis code (R9)."""

    model_config = ConfigDict(extra="forbid")
    to: AgencyId = Field(description="The agency the case is passed on to.")
    forwarded_by_officer: str = Field(
        min_length=1,
        max_length=64,
        pattern=OFFICER_ID_PATTERN,
        description="The officer who decided to pass it on (R7).",
    )
    consent_id: str | None = Field(
        default=None, pattern=LOCAL_ID_PATTERN, description="R9: the consent relied on."
    )
    consent_override: ConsentOverride | None = Field(
        default=None, description="R9: the legal basis when passing on without consent."
    )
    event_ids: list[Annotated[str, Field(pattern=EVENT_ID_PATTERN)]] | None = Field(
        default=None,
        max_length=1000,
        description="Only these events; default: every event of the case this node received "
        "that the new recipient lacks.",
    )


class ForwardedEvent(BaseModel):
    forwarding_id: str
    event_id: str
    type: str
    time: datetime
    shared: list[str] = Field(
        description="The personal categories the new recipient can open (R5, R9, R10)."
    )


class ForwardReceipt(BaseModel):
    """What was passed on, event by event."""

    case: str
    to: str
    basis: dict[str, Any] | None
    forwardings: list[ForwardedEvent]


class WithheldField(BaseModel):
    withheld: str = Field(description="The data category this reader is not entitled to.")


class EventView(BaseModel):
    event_id: str
    type: str
    time: datetime
    sender: str
    recipients: list[str]
    direction: Literal["sent", "received"]
    operational: dict[str, Any]
    deadlines: dict[str, datetime]
    fields: dict[str, Any] = Field(
        description="Personal fields this agency may open; others appear as {'withheld': category}."
    )
    forwarded_by: str | None = Field(
        default=None, description="The agency that passed this event on to this one (R10)."
    )

    @property
    def withheld(self) -> dict[str, str]:
        """field -> the data category this reader may not open."""
        return {
            name: value["withheld"]
            for name, value in self.fields.items()
            if isinstance(value, dict) and isinstance(value.get("withheld"), str)
        }


class ReferralView(BaseModel):
    referral_id: str
    from_agency: str
    to_agency: str
    service: str
    status: str
    answer_due: datetime | None


class PassedOnView(BaseModel):
    forwarding_id: str
    to: str
    event_id: str
    type: str
    time: datetime
    shared: list[str]


class CaseView(BaseModel):
    case: str
    restrictions: Restrictions
    identification: str | None
    reflection_ends: datetime | None
    return_stage: str | None
    closed: bool
    erased: bool
    referrals: list[ReferralView]
    events: list[EventView]
    forwarded: list[PassedOnView] = Field(
        default_factory=list, description="Events this agency passed on to others (R10)."
    )

    def referral(self, referral_id: str) -> ReferralView:
        return next(r for r in self.referrals if r.referral_id == referral_id)


class InboxItem(BaseModel):
    position: int
    direction: Literal["sent", "received"]
    event_id: str
    type: str
    case: str
    time: datetime
    sender: str
    recipients: list[str]
    operational: dict[str, Any]
    deadlines: dict[str, datetime]
    traceparent: str | None = Field(
        default=None,
        description="W3C trace context to continue the event's trace from (a notifier's "
        "webhook does); null when this node no longer remembers it.",
    )


class InboxPage(BaseModel):
    items: list[InboxItem]
    next_after: int | None = Field(
        description="Pass as `after` for the next page; null at the end."
    )


class DeadLetterView(BaseModel):
    position: int
    source: str
    source_position: int
    rule: str
    reason: str
    event_id: str
    event_type: str
    sender: str
    received_at: datetime


class DeadLetterPage(BaseModel):
    items: list[DeadLetterView]
    next_after: int | None


#: Events in one batch request, at most.
MAX_BATCH = 500


class BatchEvent(BaseModel):
    """One event of a batch. `case.screened` opens a new case (no `case`); any other type
    names its case, or with `case_of` the index of an earlier event of the same batch
    whose case it continues (a case opened in the batch has no pseudonym yet)."""

    model_config = ConfigDict(extra="forbid")
    type: str = Field(description="An event type of the catalogue.")
    recipients: Recipients
    payload: dict[str, Any] = Field(description="The event type's payload (see its schema).")
    case: str | None = Field(default=None, pattern=CASE_PSEUDONYM_PATTERN)
    case_of: int | None = Field(default=None, ge=0, lt=MAX_BATCH)
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=r"^[\x21-\x7e]+$",
        description="As the Idempotency-Key header of a single request, for this event.",
    )


class BatchRequest(BaseModel):
    """Events to append: each is checked on its own, and all that pass in one transaction."""

    model_config = ConfigDict(extra="forbid")
    events: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description="Each a BatchEvent; one that is malformed is refused alone (422).",
        json_schema_extra={"items": BatchEvent.model_json_schema()},
    )


class BatchResult(BaseModel):
    """One event's outcome: its receipt (status 201), or its problem."""

    model_config = ConfigDict(extra="allow")
    index: int
    status: int
    problem: Problem | None = None


class BatchAnswer(BaseModel):
    accepted: int
    refused: int
    results: list[BatchResult]
