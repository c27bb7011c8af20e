"""Publishable statistics: small cells never appear as numbers, figures are right."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any
from xml.etree import ElementTree

from contracts.statistics import (
    SECONDARY,
    SMALL,
    bar_chart_svg,
    charts,
    compute,
    figures_csv,
    rate,
    suppress,
    suppress_row,
)
from tests.audit.conftest import ROLES, T0, case_story, envelope

ROLE_NAMES = {a: str(r) for a, r in ROLES.items()}


def test_suppression_rules() -> None:
    assert [suppress(n) for n in (0, 1, 4, 5, 12)] == [SMALL, SMALL, SMALL, 5, 12]
    row = suppress_row({"2025-01": 3, "2025-02": 9, "2025-03": 7})
    assert row == {"2025-01": SMALL, "2025-02": 9, "2025-03": SECONDARY, "total": 19}
    assert suppress_row({"a": 2}) == {"a": SMALL, "total": SMALL}
    assert suppress_row({"a": 2, "b": 1, "c": 8}) == {"a": SMALL, "b": SMALL, "c": 8, "total": 11}
    assert rate(7, 20) == 0.35 and rate(3, 20) == SMALL and rate(18, 20) == SMALL
    assert rate(4, 4) == SMALL


def cases(n: int, start: int = 0) -> list[Any]:
    return [
        e
        for c in range(start, start + n)
        for e in case_story(f"case-{c:08d}", T0 + timedelta(days=c))
    ]


def test_figures_with_enough_cases() -> None:
    envs = cases(12)
    answers = []
    for i, c in enumerate(range(12)):
        kind = "referral.accepted" if i < 7 else "referral.declined"
        op = {"referral_id": "r1"} | ({} if i < 7 else {"reason_code": "capacity"})
        answers.append(
            envelope(
                kind,
                "xa-shelter",
                ["xa-police"],
                f"case-{c:08d}",
                T0 + timedelta(days=c, hours=5),
                op,
            )
        )
    data = [e.model_dump(mode="json") for e in envs + answers]
    figures = compute(data + data[:5], ROLE_NAMES)  # duplicates (two logs) count once
    assert figures["events"] == 48 and figures["cases"] == 12
    assert figures["stages_by_month"]["screened"] == {"2025-01": 12, "total": 12}
    rg = figures["days_from_screening"]["reasonable-grounds"]
    assert rg == {"cases": 12, "median_days": 3.0}
    assert figures["days_from_screening"]["conclusive"] == {"cases": SMALL, "median_days": SMALL}
    shelter = figures["referrals"]["by_service"]["shelter"]
    assert shelter["requested"] == 12 and shelter["accepted"] == 7
    assert shelter["declined"] == 5 and shelter["acceptance_rate"] == 0.583
    assert figures["referrals"]["by_receiving_role"]["service-provider"]["requested"] == 12
    assert figures["referrals"]["decline_reasons"] == {"capacity": 5, "total": 5}
    assert figures["events_by_country_and_role"]["XA"]["first-responder"] == 24


def test_no_small_number_is_ever_published() -> None:
    envs = [
        *cases(3),
        envelope(
            "return.completed",
            "xa-immigration",
            ["xa-police"],
            "case-00000001",
            T0,
            {"voluntary": True},
        ),
    ]
    figures = compute([e.model_dump(mode="json") for e in envs], ROLE_NAMES)

    def numbers(x: Any) -> list[Any]:
        if isinstance(x, dict):
            return [n for k, v in x.items() if k not in ("threshold",) for n in numbers(v)]
        if isinstance(x, list):
            return [n for v in x for n in numbers(v)]
        return [x] if isinstance(x, int) and not isinstance(x, bool) else []

    assert all(n >= 5 for n in numbers(figures)), numbers(figures)
    assert figures["returns"]["completed"] == SMALL
    text = json.dumps(figures)
    assert '"<5"' in text
    svgs = charts(figures)
    for svg in svgs.values():
        root = ElementTree.fromstring(svg)
        assert root.tag.endswith("svg")
        texts = [t.text or "" for t in root.iter() if t.tag.endswith("text")]
        assert not any(t.strip() in {"1", "2", "3", "4"} for t in texts)
        assert any(SMALL in t for t in texts)


def test_svg_bars_scale_and_escape() -> None:
    svg = bar_chart_svg("A & B", [("x<y", 10), ("big", 40), ("tiny", SMALL)])
    root = ElementTree.fromstring(svg)
    rects = [r for r in root.iter() if r.tag.endswith("rect")][1:]
    widths = sorted(float(r.get("width", 0)) for r in rects)
    assert widths[1] == 4 * widths[0]  # 40 vs 10
    assert len(rects) == 2  # the suppressed value has no bar
    assert "A &amp; B" in svg and "x&lt;y" in svg


def test_csv_holds_every_published_cell_and_no_small_number() -> None:
    figures = compute([e.model_dump(mode="json") for e in cases(12)], ROLE_NAMES)
    rows = list(csv.DictReader(io.StringIO(figures_csv(figures))))
    cell = {(r["table"], r["row"], r["column"]): r["value"] for r in rows}
    assert cell[("events", "", "")] == str(figures["events"])
    assert cell[("stages_by_month", "screened", "total")] == str(
        figures["stages_by_month"]["screened"]["total"]
    )
    assert cell[("referrals", "by_service/shelter", "requested")] == str(
        figures["referrals"]["by_service"]["shelter"]["requested"]
    )
    assert cell[("referrals", "all", "requested")] == str(figures["referrals"]["all"]["requested"])
    counts = [r["value"] for r in rows if r["table"] not in ("threshold", "markers", "format")]
    assert all(int(v) >= 5 for v in counts if v.isdigit()), counts
    assert SMALL in counts  # the small ones are there, as markers
