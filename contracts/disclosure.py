"""The disclosure record of a case (GDPR art. 15(1)(c)): which agency received which
categories of the person's data, when, on what basis (consent, override with its legal
basis, the agreement), and where it was passed on. What a victim, a lawyer or a data
protection authority asks for.

Built from the nodes' logs alone: each node answers with what it sent (every delivery,
with the categories its key wraps gave the recipient, and its basis), what it received
and what it refused (`referral_router.rules.disclosure`); this merges the answers into
one record, each delivery confirmed by the recipient's own log (received), refused
there (with the rule), or unconfirmed (the recipient did not answer, or does not hold
it). Clear parts and wraps only: the record is the same after the case's erasure.
Pure, so an outside auditor can rebuild a record from the same answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RECORD_FORMAT = "nrm-disclosure-record/1"


def disclosure_record(
    case: str,
    answers: Mapping[str, Mapping[str, Any] | str],
    produced_by: str,
    produced_at: str,
) -> dict[str, Any]:
    """One record from every node's answer: agency -> its part, or why it gave none."""
    parts = {a: p for a, p in answers.items() if not isinstance(p, str)}
    held = {a: {r["event_id"] for r in p.get("received", [])} for a, p in parts.items()}
    refused = {
        a: {r["event_id"]: r.get("rule", "") for r in p.get("refused", [])}
        for a, p in parts.items()
    }
    rows = [row for p in parts.values() for row in p.get("sent", [])]
    onward: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        if row.get("passed_on_by"):
            onward.setdefault((row["event_id"], row["passed_on_by"]), []).append(row["to"])
    out = []
    for row in sorted(rows, key=lambda r: (str(r["time"]), r["event_id"], r["to"])):
        to = row["to"]
        if row["event_id"] in held.get(to, ()):
            status = "received"
        elif row["event_id"] in refused.get(to, {}):
            status = f"refused ({refused[to][row['event_id']]})"
        else:
            status = "unconfirmed"
        out.append(
            {
                **row,
                "status": status,
                "passed_on_to": sorted(onward.get((row["event_id"], to), [])),
            }
        )
    nodes = {
        a: (p if isinstance(p, str) else "answered" if _holds(p) else "holds nothing")
        for a, p in sorted(answers.items())
    }
    return {
        "format": RECORD_FORMAT,
        "case": case,
        "produced_by": produced_by,
        "produced_at": produced_at,
        "complete": all(not isinstance(p, str) for p in answers.values()),
        "nodes": nodes,
        "disclosures": out,
    }


def _holds(part: Mapping[str, Any]) -> bool:
    return bool(part.get("sent") or part.get("received") or part.get("refused"))
