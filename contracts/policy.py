"""Per-country policy: lengths and deadlines are law that changes, so they are data.

(The UK's minimum reflection period went from 45 to 30 days in 2022: a file edit, not a
release.) Deadlines are computed here, purely, so the router and the notifier agree.

Retention is policy too: how long a closed case's personal data is kept, by why it
closed (not identified, identified, returned...). When the period ends, the competent
authority's node orders the erasure itself (the notifier chases the `retention-ends`
deadline its closing event carries), on the legal basis `retention-expired`.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts.events import ClosureReason

#: The officer id an erasure order carries when the retention period, not a person,
#: ordered it (R7: the node's own system is accountable for it).
RETENTION_OFFICER = "system:retention"

#: Every deadline an envelope may carry (its `deadlines` keys), computed here from the
#: sender's policy and recomputed by a receiver of the same country.
DEADLINE_NAMES: tuple[str, ...] = (
    "reasonable-grounds",
    "guardian-appointment",
    "referral-answer",
    "re-referral",
    "reflection-ends",
    "reflection-reminder",
    "decision-review",
    "complaint-answer",
    "residence-renewal",
    "outcome-information",
    "post-return-monitoring",
    "retaliation-found",
    "retention-ends",
)


class CountryPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    country: str = Field(pattern=r"^[A-Z]{2}$")
    name: str
    reflection_days: int = Field(ge=1, le=365)
    reflection_max_total_days: int = Field(ge=1, le=730)
    referral_answer_hours: int = Field(ge=1, le=24 * 60)
    urgent_referral_answer_hours: int = Field(ge=1, le=24 * 60)
    reasonable_grounds_target_days: int = Field(ge=1, le=365)
    reflection_reminder_days_before: int = Field(ge=0, le=365)
    post_return_monitoring_interval_days: int = Field(ge=1, le=730)
    adult_age: int = Field(ge=1, le=25)
    retention_days_after_closing: dict[ClosureReason, int] = Field(
        description="Days a closed case's personal data is kept, by why it closed; then "
        "the competent authority's node orders its erasure."
    )

    @field_validator("retention_days_after_closing")
    @classmethod
    def _every_reason(cls, v: dict[ClosureReason, int]) -> dict[ClosureReason, int]:
        missing = sorted(set(ClosureReason) - set(v))
        if missing:
            raise ValueError(f"no retention period for closing reason(s) {', '.join(missing)}")
        bad = sorted(str(k) for k, days in v.items() if not 1 <= days <= 36500)
        if bad:
            raise ValueError(f"retention periods must be 1 to 36500 days: {', '.join(bad)}")
        return v

    #: R8: after a decline, the time to refer the person elsewhere for that need.
    re_referral_hours: int = Field(ge=1, le=24 * 60)
    #: R2: from the screening of a presumed child to a guardian appointed.
    guardian_appointment_hours: int = Field(ge=1, le=24 * 60)
    #: From a request to review an identification decision to the review's decision.
    decision_review_days: int = Field(ge=1, le=365)
    #: From a complaint to its answer; then the oversight body is told.
    complaint_answer_days: int = Field(ge=1, le=365)
    #: Renewal is decided this long before a residence permit ends.
    residence_renewal_notice_days: int = Field(ge=0, le=365)
    #: From the outcome of proceedings to the person being told of it.
    outcome_information_days: int = Field(ge=1, le=365)

    def reflection_ends(self, started: datetime, extra_days: int = 0) -> datetime:
        return started + timedelta(days=self.reflection_days + extra_days)

    def referral_answer_due(self, requested: datetime, *, urgent: bool) -> datetime:
        hours = self.urgent_referral_answer_hours if urgent else self.referral_answer_hours
        return requested + timedelta(hours=hours)

    def reasonable_grounds_due(self, screened: datetime) -> datetime:
        return screened + timedelta(days=self.reasonable_grounds_target_days)

    def reflection_reminder_at(self, ends: datetime) -> datetime:
        return ends - timedelta(days=self.reflection_reminder_days_before)

    def monitoring_due(self, last: datetime) -> datetime:
        return last + timedelta(days=self.post_return_monitoring_interval_days)

    def retention_ends(self, closed: datetime, reason: ClosureReason | str) -> datetime:
        """When a case closed at `closed` for `reason` must have its personal data erased."""
        return closed + timedelta(days=self.retention_days_after_closing[ClosureReason(reason)])

    def re_referral_due(self, declined: datetime) -> datetime:
        return declined + timedelta(hours=self.re_referral_hours)

    def guardian_due(self, screened: datetime) -> datetime:
        return screened + timedelta(hours=self.guardian_appointment_hours)

    def review_due(self, requested: datetime) -> datetime:
        return requested + timedelta(days=self.decision_review_days)

    def complaint_answer_due(self, lodged: datetime) -> datetime:
        return lodged + timedelta(days=self.complaint_answer_days)

    def outcome_information_due(self, concluded: datetime) -> datetime:
        return concluded + timedelta(days=self.outcome_information_days)

    def residence_renewal_due(self, recorded: datetime, valid_until: date) -> datetime:
        """The start of the permit's last day of validity, less the notice; never before
        the event that set it (a permit granted inside its notice is due at once)."""
        ends = datetime.combine(valid_until, time(0), tzinfo=UTC)
        return max(recorded, ends - timedelta(days=self.residence_renewal_notice_days))


class UnknownCountry(LookupError):
    pass


@cache
def load_policy(country: str, directory: str | None = None) -> CountryPolicy:
    """The policy file of `country`; a deployment may point at its own folder."""
    if directory is not None:
        path = Path(directory) / f"{country}.json"
        if not path.exists():
            raise UnknownCountry(f"no policy file for country {country!r} in {directory}")
        text = path.read_text()
    else:
        res = resources.files("contracts").joinpath(f"policies/{country}.json")
        if not res.is_file():
            raise UnknownCountry(f"no policy file for country {country!r}")
        text = res.read_text()
    return CountryPolicy.model_validate(json.loads(text))
