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
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts.events import CloseReason

#: The officer id an erasure order carries when the retention period, not a person,
#: ordered it (R7: the node's own system is accountable for it).
RETENTION_OFFICER = "system:retention"


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
    retention_days_after_closing: dict[CloseReason, int] = Field(
        description="Days a closed case's personal data is kept, by why it closed; then "
        "the competent authority's node orders its erasure."
    )

    @field_validator("retention_days_after_closing")
    @classmethod
    def _every_reason(cls, v: dict[CloseReason, int]) -> dict[CloseReason, int]:
        missing = sorted(set(CloseReason) - set(v))
        if missing:
            raise ValueError(f"no retention period for closing reason(s) {', '.join(missing)}")
        bad = sorted(str(k) for k, days in v.items() if not 1 <= days <= 36500)
        if bad:
            raise ValueError(f"retention periods must be 1 to 36500 days: {', '.join(bad)}")
        return v

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

    def retention_ends(self, closed: datetime, reason: CloseReason | str) -> datetime:
        """When a case closed at `closed` for `reason` must have its personal data erased."""
        return closed + timedelta(days=self.retention_days_after_closing[CloseReason(reason)])


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
