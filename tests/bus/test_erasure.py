"""Erasure by key destruction, end to end: after `case.erasure-ordered`, no node can open
any field of the case, even with every key material left on every node and every byte
left on the bus, while every envelope stays in every store."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

from contracts.sealing import CaseKeyGrant
from nrm.demo import play
from referral_router.transport.sqlite_log import decode_headers
from tests.bus.running import running_bus


def test_erased_case_cannot_be_recovered_with_any_remaining_key(tmp_path: Path) -> None:
    with running_bus(tmp_path) as bus:
        case = bus.run(play(bus.bus, io.StringIO()), timeout=120)
        nodes = bus.bus.nodes
        before = {
            a: sum(1 for e in n.store.log(limit=10_000) if e.envelope.subject == case)
            for a, n in nodes.items()
        }
        with bus.client("child-protection") as c:
            assert c.get(f"/v1/cases/{case}").json()["events"][0]["fields"]["full_name"] != {}
        with bus.client("nrm-authority") as c:
            r = c.post(
                f"/v1/cases/{case}/events",
                json={
                    "type": "case.erasure-ordered",
                    "recipients": ["child-protection"],
                    "payload": {
                        "legal_basis": "erasure-request",
                        "ordered_by_officer": "ia-0007",
                    },
                },
            )
        assert r.status_code == 201, r.text
        assert set(r.json()["recipients"]) >= {"border-police", "safe-house", "immigration"}
        assert "consulate-xb" not in r.json()["recipients"]
        bus.settle()

        envelopes = []
        reasons: set[str] = set()
        for agency, node in nodes.items():
            mine = [e.envelope for e in node.store.log(limit=10_000) if e.envelope.subject == case]
            if before[agency]:
                assert len(mine) == before[agency] + 1  # nothing removed, the order added
                assert node.case_keys.cases().count(case) == 0
            envelopes += mine
            with bus.client(agency) as c:
                view = c.get(f"/v1/cases/{case}")
            if before[agency]:
                assert view.json()["erased"] is True
                for ev in view.json()["events"]:
                    personal = {k: v for k, v in ev["fields"].items() if k not in ev["operational"]}
                    # Nothing opens any more: each field is withheld, mostly for want of
                    # a key; fields this agency was never entitled to stay 'not-entitled'.
                    assert all(
                        isinstance(v, dict) and "withheld" in v for v in personal.values()
                    ), (agency, ev["type"], personal)
                    reasons |= {v["reason"] for v in personal.values()}

        assert "key-unavailable" in reasons
        assert len(envelopes) > 20
        bus.prove_nothing_opens(envelopes)
        hpke_pairs = [(a, p) for a, n in nodes.items() for p in n.seal.keys.pairs]
    # The transport kept nothing it delivered: no grant of this case is left in bus.db.
    db = sqlite3.connect(tmp_path / "XA" / "bus.db")
    grants = [
        CaseKeyGrant.from_bytes(value)
        for (headers,) in db.execute("SELECT headers FROM records")
        for name, value in decode_headers(headers)
        if name == "nrm_case_key_grant"
    ]
    assert [g for g in grants if g.case == case] == []
    assert hpke_pairs  # the long-term keys were there to try, and nothing was left to open
