"""The demo's second case on a real embedded bus: an age assessment ends the presumption
of minority at every node that holds the case, a decline nobody re-routes is escalated by
the referring agency, a negative decision is reviewed; and the competent authority's node
publishes victim statistics to the oversight body only."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx

from nrm.demo import play_second
from tests.bus.running import RunningBus, running_bus
from tests.problems import assert_problem


def _view(bus: RunningBus, agency: str, case: str) -> dict[str, Any]:
    with bus.client(agency) as c:
        r = c.get(f"/v1/cases/{case}")
        assert r.status_code == 200, r.text
        return dict(r.json())


def _as(bus: RunningBus, caller: str, node: str) -> httpx.Client:
    token = bus.bus.token(caller, node)
    return httpx.Client(
        base_url=bus.bus.urls[node], timeout=30, headers={"Authorization": f"Bearer {token}"}
    )


def test_the_second_case_and_the_published_statistics(tmp_path: Path) -> None:
    with running_bus(tmp_path) as bus:
        out = io.StringIO()
        case = bus.run(play_second(bus.bus, out), timeout=240)  # raises on any surprise
        text = out.getvalue()
        assert "re-referral" in text and "refused by LIFECYCLE" in text

        # the age assessment ended the presumption at each node that heard of it
        for agency in ("nrm-authority", "border-police"):
            restrictions = _view(bus, agency, case)["restrictions"]
            assert restrictions["presumed_child"], agency
            assert restrictions["child_safeguards_lifted"], agency
        authority = _view(bus, "nrm-authority", case)
        stages = [
            (e["operational"].get("stage"), e["operational"].get("review_id"))
            for e in authority["events"]
            if e["type"] == "identification.decided"
        ]
        assert stages == [
            ("reasonable-grounds", None),
            ("conclusive", None),
            ("conclusive", "review-1"),
        ]
        escalated = [e for e in authority["events"] if e["type"] == "case.escalated"]
        assert [e["operational"]["deadline"] for e in escalated] == ["re-referral"]
        assert escalated[0]["sender"] == "border-police"  # the agency whose referral it was

        # published by the competent authority, to oversight only, aggregates only
        with _as(bus, "rapporteur", "nrm-authority") as c:
            r = c.get("/v1/audit/victim-statistics")
        assert r.status_code == 200, r.text
        figures = r.json()
        assert figures["format"] == "nrm-victim-statistics/1"
        assert figures["presumed_victims"] == "<5"  # one case: nothing small is published
        assert case not in r.text
        with _as(bus, "safe-house", "nrm-authority") as c:
            assert c.get("/v1/audit/victim-statistics").status_code == 403
        with _as(bus, "rapporteur", "child-protection") as c:
            assert_problem(c.get("/v1/audit/victim-statistics"), "not-found")
