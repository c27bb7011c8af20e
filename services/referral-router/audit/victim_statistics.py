"""The victim statistics a competent authority's node publishes to the oversight body.

The outcome of an identification decision, and the person's sex and nationality, travel
sealed: the oversight body, reading clear envelopes, can count events but not identified
victims. The competent authority may open decisions and identity, so its node opens the
few fields the figures need, case by case, into `VictimRecord`s that never leave this
module, and hands out only `contracts.statistics.victim_figures`: aggregates with every
cell under 5 suppressed. An erased case opens to nothing and is counted as unknown.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from contracts.envelope import Envelope
from contracts.events import AgeStatus
from contracts.statistics import VictimDecision, VictimRecord, victim_figures
from referral_router.audit.log import AuditLogError
from referral_router.store.case_store import LoggedEnvelope

#: The envelopes the figures read; every other one is skipped unopened.
READ = frozenset({"case.screened", "identification.decided", "age.assessed", "case.linked"})
PAGE = 500


class NotPublished(AuditLogError, LookupError):
    """This node is not a competent authority's: it publishes no victim statistics."""

    status = 404


class Log(Protocol):
    def log(self, after: int = 0, limit: int = 100) -> list[LoggedEnvelope]: ...


class Opener(Protocol):
    def open(self, envelope: Envelope) -> dict[str, Any]: ...


@dataclass
class _Case:
    month: str = "unknown"
    forms: tuple[str, ...] = ()
    age_status: str = "unknown"
    assessed: str | None = None
    sex: str = "unknown"
    nationality: str = "unknown"
    decisions: list[VictimDecision] = field(default_factory=list)
    linked: bool = False

    def record(self) -> VictimRecord:
        return VictimRecord(
            screened_month=self.month,
            forms=self.forms,
            age_group=_age_group(self.age_status, self.assessed),
            sex=self.sex,
            nationality=self.nationality,
            decisions=tuple(self.decisions),
            re_trafficked=self.linked,
        )


def _age_group(age_status: str, assessed: str | None) -> str:
    """An age assessment by child protection decides; else the age given at screening
    (unknown or disputed stays unknown: a presumed child, not a counted one)."""
    if assessed in ("child", "adult"):
        return assessed
    if age_status in (AgeStatus.CHILD, AgeStatus.ADULT):
        return age_status
    return "unknown"


def _opened(fields: Mapping[str, Any], name: str) -> str:
    value = fields.get(name)
    return str(value) if isinstance(value, str) and value else "unknown"


def _envelopes(log: Log) -> Iterator[Envelope]:
    after = 0
    while True:
        page = log.log(after=after, limit=PAGE)
        for entry in page:
            if entry.envelope.type in READ:
                yield entry.envelope
        if len(page) < PAGE:
            return
        after = page[-1].position


def victim_records(log: Log, opener: Opener) -> list[VictimRecord]:
    """One record per case this node holds, in the order cases were first seen."""
    cases: dict[str, _Case] = {}
    seen: set[str] = set()
    for env in _envelopes(log):
        if str(env.id) in seen:
            continue
        seen.add(str(env.id))
        case = cases.setdefault(env.subject, _Case())
        op = env.operational
        match env.type:
            case "case.screened":
                fields = opener.open(env)
                case.month = env.time.strftime("%Y-%m")
                case.forms = tuple(str(f) for f in op.get("forms_of_exploitation", ()))
                case.age_status = str(op.get("age_status", "unknown"))
                case.sex = _opened(fields, "sex")
                case.nationality = _opened(fields, "nationality")
            case "identification.decided":
                outcome = _opened(opener.open(env), "outcome")
                case.decisions.append(
                    VictimDecision(
                        stage=str(op.get("stage", "unknown")),
                        review=bool(op.get("review_id")),
                        outcome=outcome,
                        month=env.time.strftime("%Y-%m"),
                    )
                )
            case "age.assessed":
                case.assessed = str(op.get("outcome"))
            case "case.linked":
                case.linked = True
    return [c.record() for c in cases.values()]


def publish(log: Log, opener: Opener, *, authority: bool) -> dict[str, Any]:
    """The figures this node publishes; only a competent authority's node publishes."""
    if not authority:
        raise NotPublished(
            "only a competent authority's node publishes victim statistics: it alone may "
            "open identification decisions"
        )
    return victim_figures(victim_records(log, opener))
