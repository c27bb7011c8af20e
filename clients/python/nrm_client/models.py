"""What the node answers, as typed values (times are aware datetimes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def _time(value: Any) -> datetime:
    return datetime.fromisoformat(str(value))


def _times(values: Any) -> dict[str, datetime]:
    return {str(k): _time(v) for k, v in (values or {}).items()}


def _maybe_time(value: Any) -> datetime | None:
    return None if value is None else _time(value)


@dataclass(frozen=True)
class Receipt:
    """What the node recorded for an event it accepted (clear facts only)."""

    case: str
    event_id: str
    type: str
    time: datetime
    recipients: list[str]
    deadlines: dict[str, datetime]
    flags: dict[str, Any]
    position: int | None = None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Receipt:
        return cls(
            case=body["case"],
            event_id=body["event_id"],
            type=body["type"],
            time=_time(body["time"]),
            recipients=list(body["recipients"]),
            deadlines=_times(body.get("deadlines")),
            flags=dict(body.get("flags") or {}),
            position=body.get("position"),
        )


@dataclass(frozen=True)
class Event:
    """One event of a case, with the fields this agency may open."""

    event_id: str
    type: str
    time: datetime
    sender: str
    recipients: list[str]
    direction: str
    operational: dict[str, Any]
    deadlines: dict[str, datetime]
    fields: dict[str, Any]

    @property
    def withheld(self) -> dict[str, str]:
        """field -> the data category this agency may not open."""
        return {
            name: value["withheld"]
            for name, value in self.fields.items()
            if isinstance(value, dict) and isinstance(value.get("withheld"), str)
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Event:
        return cls(
            event_id=body["event_id"],
            type=body["type"],
            time=_time(body["time"]),
            sender=body["sender"],
            recipients=list(body["recipients"]),
            direction=body["direction"],
            operational=dict(body.get("operational") or {}),
            deadlines=_times(body.get("deadlines")),
            fields=dict(body.get("fields") or {}),
        )


@dataclass(frozen=True)
class Referral:
    referral_id: str
    from_agency: str
    to_agency: str
    service: str
    status: str
    answer_due: datetime | None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Referral:
        return cls(
            referral_id=body["referral_id"],
            from_agency=body["from_agency"],
            to_agency=body["to_agency"],
            service=body["service"],
            status=body["status"],
            answer_due=_maybe_time(body.get("answer_due")),
        )


@dataclass(frozen=True)
class Case:
    """A case as this agency may see it."""

    case: str
    flags: dict[str, Any]
    identification: str | None
    reflection_ends: datetime | None
    return_stage: str | None
    closed: bool
    erased: bool
    referrals: list[Referral] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def referral(self, referral_id: str) -> Referral:
        return next(r for r in self.referrals if r.referral_id == referral_id)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Case:
        return cls(
            case=body["case"],
            flags=dict(body.get("flags") or {}),
            identification=body.get("identification"),
            reflection_ends=_maybe_time(body.get("reflection_ends")),
            return_stage=body.get("return_stage"),
            closed=bool(body.get("closed")),
            erased=bool(body.get("erased")),
            referrals=[Referral.from_json(r) for r in body.get("referrals") or []],
            events=[Event.from_json(e) for e in body.get("events") or []],
        )


@dataclass(frozen=True)
class InboxItem:
    """An event this node received (clear parts only; read the case for its fields)."""

    position: int
    direction: str
    event_id: str
    type: str
    case: str
    time: datetime
    sender: str
    recipients: list[str]
    operational: dict[str, Any]
    deadlines: dict[str, datetime]

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> InboxItem:
        return cls(
            position=int(body["position"]),
            direction=body["direction"],
            event_id=body["event_id"],
            type=body["type"],
            case=body["case"],
            time=_time(body["time"]),
            sender=body["sender"],
            recipients=list(body["recipients"]),
            operational=dict(body.get("operational") or {}),
            deadlines=_times(body.get("deadlines")),
        )


@dataclass(frozen=True)
class Notification:
    """One Server-Sent Event from the notifier: `id` resumes the stream after it."""

    id: int | None
    event: str
    data: dict[str, Any]
