"""Victim statistics the competent authority's node publishes: counted from the sealed
fields only it may open, published as aggregates with small cells suppressed, never a
record; and served only by that node, only to oversight bodies."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from contracts.envelope import Envelope
from contracts.statistics import (
    SECONDARY,
    SMALL,
    VictimDecision,
    VictimRecord,
    victim_charts,
    victim_figures,
)
from referral_router.audit.victim_statistics import publish, victim_records


def record(n: int, **kw: Any) -> list[VictimRecord]:
    base: dict[str, Any] = {
        "screened_month": "2026-03",
        "forms": ("forced-labour",),
        "age_group": "adult",
        "sex": "male",
        "nationality": "XB",
        "decisions": (
            VictimDecision("reasonable-grounds", False, "positive", "2026-03"),
            VictimDecision("conclusive", False, "positive", "2026-04"),
        ),
    }
    return [VictimRecord(**{**base, **kw}) for _ in range(n)]


def test_identified_victims_by_every_dimension_with_small_cells_suppressed() -> None:
    negative = (
        VictimDecision("reasonable-grounds", False, "positive", "2026-03"),
        VictimDecision("conclusive", False, "negative", "2026-04"),
    )
    reviewed = (*negative, VictimDecision("conclusive", True, "positive", "2026-05"))
    cases = (
        record(12)
        + record(6, sex="female", nationality="XC", forms=("sexual-exploitation", "debt-bondage"))
        + record(2, sex="female", nationality="XD", decisions=negative)
        + record(5, age_group="child", decisions=reviewed, re_trafficked=True)
    )
    f = victim_figures(cases)
    assert f["presumed_victims"] == 25 and f["identified_victims"] == 23
    assert f["re_trafficked"] == 5
    conclusive = f["decisions"]["conclusive"]
    assert conclusive == {"positive": 18, "negative": 7, "total": 25}
    # no negative review: 0 is small too, so the one other cell is hidden beside it
    review = {"positive": SECONDARY, "negative": SMALL, "total": 5}
    assert f["decisions"]["conclusive-review"] == review
    by_nat = f["by_dimension"]["nationality"]
    assert by_nat["presumed"]["XD"] == SMALL  # 2 people: primary suppression
    assert by_nat["presumed"]["XC"] == SECONDARY  # else total - others gives XD away
    assert by_nat["identified"]["XB"] == 17
    sex = f["by_dimension"]["sex"]
    # 8 presumed women, 6 identified: the 2 not identified would show by subtraction
    assert sex["presumed"]["female"] == 8 and sex["identified"]["female"] in (SMALL, SECONDARY)
    forms = f["by_dimension"]["form_of_exploitation"]
    assert "total" not in forms["presumed"]  # a case counts under several forms
    assert forms["presumed"]["debt-bondage"] == 6
    ages = f["by_dimension"]["age_group"]
    assert ages["presumed"] == {"adult": 20, "child": 5, "total": 25}
    # 20 adults presumed, 18 identified: the 2 not identified would show, so the adults'
    # cell is hidden, and then the children's, or the total would give it back
    assert ages["identified"] == {"adult": SECONDARY, "child": SECONDARY, "total": 23}
    assert f["by_month"]["screened"]["2026-03"] == 25


def test_nothing_under_five_is_published_and_no_record_leaves() -> None:
    f = victim_figures(record(3, nationality="XZ", sex="another"))
    text = json.dumps(f)
    assert f["presumed_victims"] == SMALL and f["identified_victims"] == SMALL
    for cols in f["by_dimension"].values():
        for column in cols.values():
            assert all(v in (SMALL, SECONDARY, 0) for v in column.values()), column
    assert "case-" not in text  # no pseudonym, no record
    assert victim_charts(f)  # charts draw suppressed cells as markers only
    for svg in victim_charts(f).values():
        assert '<rect x="220"' not in svg  # no bar for a suppressed value


# --- the node side: a fake log and opener at their Protocols ----------------------------


@dataclass
class Logged:
    position: int
    direction: str
    envelope: Envelope


def _env(event_type: str, case: str, month: int, op: dict[str, Any]) -> Envelope:
    from contracts.envelope import dataschema_for

    return Envelope(
        id=uuid4(),
        source="nrm://XA/authority",
        type=event_type,
        subject=case,
        time=datetime(2026, month, 3, tzinfo=UTC),
        dataschema=dataschema_for(event_type),
        sender="police" if event_type == "case.screened" else "authority",
        recipients=("authority",),
        operational=op,
    )


class FakeLog:
    def __init__(self, envelopes: list[Envelope]) -> None:
        self.entries = [Logged(i + 1, "received", e) for i, e in enumerate(envelopes)]

    def log(self, after: int = 0, limit: int = 100) -> list[Logged]:  # type: ignore[override]
        return [e for e in self.entries if e.position > after][:limit]


class FakeOpener:
    """What the authority's sealing opens: by event id; anything else is withheld."""

    def __init__(self, opened: dict[str, dict[str, Any]]) -> None:
        self.opened = opened
        self.asked: list[str] = []

    def open(self, envelope: Envelope) -> dict[str, Any]:
        self.asked.append(envelope.type)
        return self.opened.get(str(envelope.id), {"outcome": {"withheld": "decision"}})


def _story(
    case: str, outcome: str, *, assessed: str | None = None
) -> tuple[list[Envelope], dict[str, dict[str, Any]]]:
    screened = _env(
        "case.screened", case, 3, {"forms_of_exploitation": ["slavery"], "age_status": "disputed"}
    )
    decision = _env("identification.decided", case, 4, {"stage": "conclusive"})
    extra = [_env("age.assessed", case, 3, {"outcome": assessed})] if assessed else []
    noise = _env("services.delivered", case, 3, {"referral_id": "r", "service": "shelter"})
    opened = {
        str(screened.id): {"sex": "female", "nationality": "XB"},
        str(decision.id): {"outcome": outcome},
    }
    return [screened, *extra, noise, decision], opened


def test_the_node_opens_only_what_it_counts_and_counts_per_case() -> None:
    envelopes: list[Envelope] = []
    opened: dict[str, dict[str, Any]] = {}
    for i in range(6):
        env, o = _story(f"case-{i:08d}", "positive", assessed="adult" if i < 3 else None)
        envelopes += env + env[:1]  # an event held twice (sent and received) counts once
        opened |= o
    opener = FakeOpener(opened)
    records = victim_records(FakeLog(envelopes), opener)
    assert len(records) == 6
    assert {r.age_group for r in records} == {"adult", "unknown"}
    assert {r.sex for r in records} == {"female"} and records[0].forms == ("slavery",)
    assert "services.delivered" not in opener.asked  # skipped unopened
    assert all(r.identified is not None for r in records)
    figures = publish(FakeLog(envelopes), opener, authority=True)
    assert figures["identified_victims"] == 6


def test_a_withheld_or_erased_field_counts_as_unknown_never_as_a_guess() -> None:
    env, _ = _story("case-00000001", "positive")
    records = victim_records(FakeLog(env), FakeOpener({}))
    assert records[0].sex == "unknown" and records[0].nationality == "unknown"
    assert records[0].identified is None  # the outcome could not be opened


def test_only_a_competent_authority_s_node_publishes() -> None:
    from referral_router.audit.victim_statistics import NotPublished

    with pytest.raises(NotPublished):
        publish(FakeLog([]), FakeOpener({}), authority=False)
