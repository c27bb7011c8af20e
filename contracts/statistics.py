"""Statistics an oversight body can publish, from the clear operational envelopes only.

The reviews of national referral mechanisms find no statistics; publishing them must not
expose the people counted. Everything here is computed from clear fields (event type,
time, sender, recipients, operational fields) of the envelopes in verified logs, and
every count below 5 is published as "<5", never as the number. Where a row total is
published and a row has exactly one small cell, the next smallest cell of the row is
suppressed too (shown as "x"), so the small one cannot be recovered by subtraction.
Rates and medians resting on fewer than 5 cases are suppressed the same way. Pure: the
caller supplies envelopes (as JSON objects) and the directory's agency roles.

What the clear envelopes cannot tell (the outcome of an identification decision, the
person's sex and nationality travel sealed) only the competent authority's node can
count: it opens them into `VictimRecord`s that never leave it, and publishes
`victim_figures`, aggregates suppressed the same way, to the oversight body.
"""

from __future__ import annotations

import csv
import io
import statistics as pystats
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

THRESHOLD = 5
SMALL = "<5"
SECONDARY = "x"
Cell = int | float | str

#: Event type -> the lifecycle stage word of docs/domain.md (identification splits by stage).
STAGES: Mapping[str, str] = {
    "case.screened": "screened",
    "referral.requested": "referred",
    "referral.accepted": "accepted",
    "referral.declined": "declined",
    "consent.recorded": "consent-recorded",
    "consent.withdrawn": "consent-withdrawn",
    "identification.review-requested": "review-requested",
    "reflection.started": "reflection-started",
    "reflection.extended": "reflection-extended",
    "reflection.ended": "reflection-ended",
    "residence.granted": "residence-granted",
    "residence.renewed": "residence-renewed",
    "residence.ended": "residence-ended",
    "asylum.lodged": "asylum-lodged",
    "guardian.appointed": "guardian-appointed",
    "age.assessed": "age-assessed",
    "best-interests.determined": "best-interests-determined",
    "risk.assessed": "risk-assessed",
    "services.delivered": "services-delivered",
    "family.traced": "family-traced",
    "return.planning-started": "return-planning-started",
    "return.plan-agreed": "return-plan-agreed",
    "return.completed": "returned",
    "reintegration.monitored": "reintegration-monitored",
    "cooperation.decided": "cooperation-decided",
    "witness-protection.decided": "witness-protection-decided",
    "proceedings.opened": "proceedings-opened",
    "proceedings.concluded": "proceedings-concluded",
    "non-punishment.decided": "non-punishment-decided",
    "rights.explained": "rights-explained",
    "complaint.lodged": "complaint-lodged",
    "complaint.answered": "complaint-answered",
    "compensation.claimed": "compensation-claimed",
    "compensation.decided": "compensation-decided",
    "compensation.paid": "compensation-paid",
    "case.closed": "closed",
    "case.linked": "linked-to-earlier-case",
    "case.erasure-ordered": "erasure-ordered",
    "case.escalated": "escalated",
}

#: Decisions timed from screening: stage word -> (event type, required operational fields).
DECISION_STAGES: Mapping[str, tuple[str, Mapping[str, Any]]] = {
    "reasonable-grounds": ("identification.decided", {"stage": "reasonable-grounds"}),
    "conclusive": ("identification.decided", {"stage": "conclusive"}),
    "reflection-started": ("reflection.started", {}),
    "residence-granted": ("residence.granted", {}),
    "guardian-appointed": ("guardian.appointed", {}),
    "best-interests-determined": ("best-interests.determined", {}),
    "risk-assessed": ("risk.assessed", {}),
    "return-plan-agreed": ("return.plan-agreed", {}),
}


def suppress(n: int) -> Cell:
    """A count as published: the number from 5 up, else "<5"."""
    return n if n >= THRESHOLD else SMALL


def suppress_row(row: Mapping[str, int], also: Iterable[str] = ()) -> dict[str, Cell]:
    """A row with its total: primary suppression (and `also`, cells another table would
    give away), then secondary when exactly one cell is hidden (else the total minus the
    others would give it away)."""
    out: dict[str, Cell] = {k: suppress(v) for k, v in row.items()}
    for k in also:
        if out.get(k) not in (None, SMALL):
            out[k] = SECONDARY
    hidden = [k for k in row if out[k] in (SMALL, SECONDARY)]
    if len(hidden) == 1:
        others = sorted((v, k) for k, v in row.items() if k not in hidden)
        if others:
            out[others[0][1]] = SECONDARY
        # with no other cell the total itself equals the hidden cell and is suppressed below
    out["total"] = suppress(sum(row.values()))
    return out


def rate(numerator: int, denominator: int) -> Cell:
    """numerator/denominator, unless either part or their difference is below 5."""
    if min(numerator, denominator, denominator - numerator) < THRESHOLD:
        return SMALL
    return round(numerator / denominator, 3)


def median_days(days: Sequence[float]) -> dict[str, Cell]:
    if len(days) < THRESHOLD:
        return {"cases": SMALL, "median_days": SMALL}
    return {"cases": len(days), "median_days": round(pystats.median(days), 1)}


def envelope_time(envelope: Mapping[str, Any]) -> datetime | None:
    """The envelope's time, timezone-aware; None when it is not a timestamp."""
    try:
        t = datetime.fromisoformat(str(envelope.get("time", "")).replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _country(envelope: Mapping[str, Any]) -> str:
    parts = str(envelope.get("source", "")).split("/")
    return parts[2] if len(parts) > 3 and parts[2] else "unknown"


def _op(envelope: Mapping[str, Any]) -> Mapping[str, Any]:
    op = envelope.get("operational")
    return op if isinstance(op, Mapping) else {}


def stage_of(envelope: Mapping[str, Any]) -> str:
    event_type = str(envelope.get("type", ""))
    if event_type == "identification.decided":
        op = _op(envelope)
        review = "-review" if op.get("review_id") else ""
        return f"identification-{op.get('stage', 'unknown')}{review}"
    return STAGES.get(event_type, event_type)


def distinct(envelopes: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One envelope per event id: an event sent from A to B is in both logs."""
    seen: dict[str, Mapping[str, Any]] = {}
    for e in envelopes:
        seen.setdefault(str(e.get("id")), e)
    return sorted(seen.values(), key=lambda e: envelope_time(e) or datetime.min.replace(tzinfo=UTC))


def compute(envelopes: Iterable[Mapping[str, Any]], roles: Mapping[str, str]) -> dict[str, Any]:
    """The publishable figures; `roles` maps agency id -> role (from the directory)."""
    events = [e for e in distinct(envelopes) if envelope_time(e) is not None]
    by_stage: dict[str, Counter[str]] = defaultdict(Counter)
    by_country_role: dict[str, Counter[str]] = defaultdict(Counter)
    screened_at: dict[str, datetime] = {}
    decided_at: dict[str, dict[str, datetime]] = defaultdict(dict)
    referrals: dict[tuple[str, str], dict[str, Any]] = {}
    returns: Counter[str] = Counter()
    decline_reasons: Counter[str] = Counter()
    escalations: Counter[str] = Counter()
    rerouted: set[tuple[str, str]] = set()
    for e in events:
        t = envelope_time(e)
        assert t is not None
        case, op, event_type = str(e.get("subject")), _op(e), str(e.get("type"))
        sender = str(e.get("sender"))
        by_stage[stage_of(e)][t.strftime("%Y-%m")] += 1
        by_country_role[_country(e)][roles.get(sender, "unknown")] += 1
        if event_type == "case.screened":
            screened_at.setdefault(case, t)
        for word, (dtype, required) in DECISION_STAGES.items():
            if event_type == dtype and all(op.get(k) == v for k, v in required.items()):
                decided_at[case].setdefault(word, t)
        if event_type == "case.escalated":
            escalations[str(op.get("deadline", "unknown"))] += 1
        if event_type == "referral.requested":
            to = str(op.get("to_agency", ""))
            referrals.setdefault(
                (case, str(op.get("referral_id"))),
                {"service": str(op.get("service", "unknown")), "to": to, "answer": None},
            )
            if op.get("replaces_referral_id"):
                rerouted.add((case, str(op["replaces_referral_id"])))
        elif event_type in ("referral.accepted", "referral.declined"):
            ref = referrals.get((case, str(op.get("referral_id"))))
            if ref is not None and ref["answer"] is None:
                ref["answer"] = "accepted" if event_type == "referral.accepted" else "declined"
            if event_type == "referral.declined":
                decline_reasons[str(op.get("reason_code", "other"))] += 1
        elif event_type == "return.completed":
            returns["completed"] += 1
            returns["voluntary" if op.get("voluntary") else "not-voluntary"] += 1
        elif event_type == "reintegration.monitored" and op.get("retaliation_risk"):
            returns["retaliation-risk-found"] += 1

    months = sorted({m for c in by_stage.values() for m in c})
    times: dict[str, list[float]] = defaultdict(list)
    for case, t0 in screened_at.items():
        for word, t in decided_at.get(case, {}).items():
            if t >= t0:
                times[word].append((t - t0).total_seconds() / 86400)

    return {
        "format": "nrm-statistics/1",
        "threshold": THRESHOLD,
        "markers": {
            SMALL: "fewer than 5 (suppressed)",
            SECONDARY: "suppressed so that a small cell cannot be derived from the total",
        },
        "period": {"from": months[0] if months else None, "to": months[-1] if months else None},
        "events": suppress(len(events)),
        "cases": suppress(len({str(e.get("subject")) for e in events})),
        "stages_by_month": {s: suppress_row(dict(c)) for s, c in sorted(by_stage.items())},
        "days_from_screening": {w: median_days(sorted(times.get(w, []))) for w in DECISION_STAGES},
        "referrals": {
            **_referral_figures(referrals.values(), roles, decline_reasons),
            "declines_rerouted": suppress(len(rerouted)),
        },
        "escalations_by_kind": suppress_row(dict(escalations)) if escalations else {},
        "returns": {
            "completed": suppress(returns["completed"]),
            "voluntary": suppress(returns["voluntary"]),
            "not_voluntary": suppress(returns["not-voluntary"]),
            "retaliation_risk_found": suppress(returns["retaliation-risk-found"]),
        },
        "events_by_country_and_role": {
            c: suppress_row(dict(r)) for c, r in sorted(by_country_role.items())
        },
    }


def _referral_figures(
    referrals: Iterable[Mapping[str, Any]], roles: Mapping[str, str], reasons: Counter[str]
) -> dict[str, Any]:
    groups: dict[str, dict[str, Counter[str]]] = {"by_service": {}, "by_receiving_role": {}}
    total: Counter[str] = Counter()
    for r in referrals:
        for group, key in (
            ("by_service", r["service"]),
            ("by_receiving_role", roles.get(r["to"], "unknown")),
        ):
            c = groups[group].setdefault(key, Counter())
            c["requested"] += 1
            c[r["answer"] or "unanswered"] += 1
        total["requested"] += 1
        total[r["answer"] or "unanswered"] += 1

    def figures(c: Counter[str]) -> dict[str, Cell]:
        return {
            "requested": suppress(c["requested"]),
            "accepted": suppress(c["accepted"]),
            "declined": suppress(c["declined"]),
            "unanswered": suppress(c["unanswered"]),
            "acceptance_rate": rate(c["accepted"], c["requested"]),
        }

    return {
        "all": figures(total),
        **{g: {k: figures(c) for k, c in sorted(v.items())} for g, v in groups.items()},
        "decline_reasons": suppress_row(dict(reasons)) if reasons else {},
    }


# --- victims, as the competent authority publishes them ------------------------------

VICTIM_FORMAT = "nrm-victim-statistics/1"
#: The dimensions the Bali Process guide and Liu ask statistics to be broken down by.
DIMENSIONS = ("form_of_exploitation", "age_group", "sex", "nationality")
#: A case counts under every form of exploitation indicated: that column has no total.
MULTI_VALUED = frozenset({"form_of_exploitation"})


@dataclass(frozen=True)
class VictimDecision:
    stage: str  # reasonable-grounds | conclusive
    review: bool  # the decision answers a review request
    outcome: str  # positive | negative | unknown (withheld)
    month: str  # YYYY-MM


@dataclass(frozen=True)
class VictimRecord:
    """One case as the competent authority's node opened it. Never published: only
    counted, by `victim_figures`."""

    screened_month: str
    forms: tuple[str, ...]
    age_group: str  # child | adult | unknown
    sex: str
    nationality: str
    decisions: tuple[VictimDecision, ...] = ()
    re_trafficked: bool = False  # linked to an earlier, closed case of the same person

    @property
    def identified(self) -> VictimDecision | None:
        """The conclusive decision that stands (the latest, reviews included), if positive."""
        conclusive = [d for d in self.decisions if d.stage == "conclusive"]
        return conclusive[-1] if conclusive and conclusive[-1].outcome == "positive" else None

    def values(self, dimension: str) -> tuple[str, ...]:
        match dimension:
            case "form_of_exploitation":
                return self.forms or ("unknown",)
            case "age_group":
                return (self.age_group,)
            case "sex":
                return (self.sex,)
            case "nationality":
                return (self.nationality,)
        raise ValueError(f"unknown dimension {dimension!r}")


def _columns(presumed: Mapping[str, int], identified: Mapping[str, int], multi: bool) -> Any:
    """Presumed and identified victims by one dimension. Identified victims are a part of
    the presumed, so where the difference (not identified) is small the identified cell
    is hidden too. Each column has its total and secondary suppression, unless a case
    may count in several rows (then there is no total to subtract from)."""
    keys = sorted(presumed)
    identified = {k: identified.get(k, 0) for k in keys}
    gap = [k for k in keys if 0 < presumed[k] - identified[k] < THRESHOLD]
    if multi:
        out_i = {k: suppress(v) for k, v in identified.items()}
        out_i.update({k: SECONDARY for k in gap if out_i[k] != SMALL})
        return {"presumed": {k: suppress(presumed[k]) for k in keys}, "identified": out_i}
    return {
        "presumed": suppress_row({k: presumed[k] for k in keys}),
        "identified": suppress_row(identified, also=gap),
    }


def victim_figures(records: Iterable[VictimRecord]) -> dict[str, Any]:
    """Presumed and identified victims, the outcomes of identification decisions by
    stage, and re-trafficking: aggregates only, every count under 5 suppressed.

    Liu (seed 000), 3.1: countries "do not publish anti-human-trafficking statistics,
    such as the number of victims who were identified"; the Bali Process guide (seed 003)
    on who can be a victim "regardless of their age, sex, gender ... nationality"; and the
    domain's statistics that were blind to the outcome, which travels sealed: only the
    competent authority, which may open decisions, can count it.
    """
    cases = list(records)
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    columns: dict[str, dict[str, Counter[str]]] = {
        d: {"presumed": Counter(), "identified": Counter()} for d in DIMENSIONS
    }
    months: dict[str, Counter[str]] = defaultdict(Counter)
    for r in cases:
        months[r.screened_month]["screened"] += 1
        for d in r.decisions:
            stage = f"{d.stage}-review" if d.review else d.stage
            outcomes[stage][d.outcome] += 1
            if d.outcome == "positive":
                months[d.month][f"{stage}-positive"] += 1
        identified = r.identified is not None
        for dimension in DIMENSIONS:
            for value in r.values(dimension):
                columns[dimension]["presumed"][value] += 1
                if identified:
                    columns[dimension]["identified"][value] += 1
    stages = ("reasonable-grounds", "reasonable-grounds-review", "conclusive", "conclusive-review")
    month_columns = ("screened", *(f"{s}-positive" for s in stages))
    return {
        "format": VICTIM_FORMAT,
        "threshold": THRESHOLD,
        "markers": {
            SMALL: "fewer than 5 (suppressed)",
            SECONDARY: "suppressed so that a small cell cannot be derived from the total",
        },
        "notes": "A case counts under every form of exploitation indicated; identified: "
        "the standing conclusive decision is positive (after any review).",
        "presumed_victims": suppress(len(cases)),
        "identified_victims": suppress(sum(1 for r in cases if r.identified is not None)),
        "re_trafficked": suppress(sum(1 for r in cases if r.re_trafficked)),
        "decisions": {
            stage: suppress_row({o: outcomes[stage][o] for o in ("positive", "negative")})
            for stage in stages
        },
        "by_dimension": {
            d: _columns(cols["presumed"], cols["identified"], d in MULTI_VALUED)
            for d, cols in columns.items()
        },
        "by_month": {
            column: suppress_row({m: months[m][column] for m in sorted(months)})
            for column in month_columns
        },
    }


def victim_charts(figures: Mapping[str, Any]) -> dict[str, str]:
    """file name -> SVG: identified victims by each dimension, and screenings per month."""
    out: dict[str, str] = {}
    for dimension, cols in (figures.get("by_dimension") or {}).items():
        bars = [(k, v) for k, v in (cols.get("identified") or {}).items() if k != "total"]
        title = f"Identified victims by {dimension.replace('_', ' ')}"
        out[f"identified-by-{dimension.replace('_', '-')}.svg"] = bar_chart_svg(title, bars)
    screened = (figures.get("by_month") or {}).get("screened") or {}
    if screened:
        months = sorted((m, v) for m, v in screened.items() if m != "total")
        out["presumed-victims-by-month.svg"] = bar_chart_svg(
            "Presumed victims screened per month", months
        )
    return out


# --- chart -----------------------------------------------------------------------------


def bar_chart_svg(title: str, bars: Sequence[tuple[str, Cell]], *, width: int = 720) -> str:
    """A horizontal bar chart as standalone SVG text. Suppressed values get no bar, only
    their marker, so the picture cannot leak what the numbers hide."""
    row, top, label_w, right = 24, 48, 220, 70
    height = top + row * max(len(bars), 1) + 24
    plot_w = width - label_w - right
    numbers = [v for _, v in bars if isinstance(v, int | float) and not isinstance(v, bool)]
    scale = plot_w / max(numbers) if numbers and max(numbers) > 0 else 0.0
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="12" y="28" font-size="16" font-weight="bold">{escape(title)}</text>',
    ]
    for i, (label, value) in enumerate(bars):
        y = top + i * row
        out.append(
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{escape(str(label))}</text>'
        )
        if isinstance(value, int | float) and not isinstance(value, bool):
            w = round(value * scale, 1)
            out.append(f'<rect x="{label_w}" y="{y + 4}" width="{w}" height="16" fill="#3b6ea5"/>')
            out.append(f'<text x="{label_w + w + 6}" y="{y + 16}">{value}</text>')
        else:
            out.append(
                f'<text x="{label_w + 6}" y="{y + 16}" fill="#777777" '
                f'font-style="italic">{escape(str(value))}</text>'
            )
    out.append(
        f'<text x="12" y="{height - 8}" font-size="11" fill="#555555">'
        f"{escape(SMALL)}: fewer than {THRESHOLD}, suppressed; {SECONDARY}: suppressed "
        "to protect a small cell</text>"
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def charts(figures: Mapping[str, Any]) -> dict[str, str]:
    """file name -> SVG: events per lifecycle stage, and screenings per month."""
    stages = figures.get("stages_by_month", {})
    stage_bars = [(s, row.get("total", SMALL)) for s, row in stages.items()]
    screened = stages.get("screened", {})
    month_bars = [(m, v) for m, v in sorted(screened.items()) if m != "total"]
    return {
        "stages.svg": bar_chart_svg("Events per lifecycle stage", stage_bars),
        "screenings-by-month.svg": bar_chart_svg("Cases screened per month", month_bars),
    }


# --- table -----------------------------------------------------------------------------


def figures_csv(figures: Mapping[str, Any]) -> str:
    """The figures as one CSV table (table, row, column, value), every cell exactly as
    published: suppressed cells keep their markers, so the file leaks nothing more."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("table", "row", "column", "value"))

    def walk(path: list[str], value: Any) -> None:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                walk([*path, str(key)], inner)
            return
        table, *middle = path
        column = middle.pop() if middle else ""
        writer.writerow((table, "/".join(middle), column, "" if value is None else value))

    for key, value in figures.items():
        walk([str(key)], value)
    return out.getvalue()
