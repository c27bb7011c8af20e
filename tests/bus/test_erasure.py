"""Erasure by key destruction, end to end: after `case.erasure-ordered`, no node can open
any field of the case, even with every key material left on every node and every byte
left on the bus, while every envelope stays in every store."""

from __future__ import annotations

import io

from nrm.demo import play
from tests.bus.running import Running


def test_erased_case_cannot_be_recovered_with_any_remaining_key(running: Running) -> None:
    bus = running
    case = bus.run(play(bus.bus, io.StringIO()), timeout=180)
    stores = {a: bus.store(a) for a in bus.agencies}
    before = {
        a: sum(1 for e in s.log(limit=10_000) if e.envelope.subject == case)
        for a, s in stores.items()
    }
    with bus.client("child-protection") as c:
        assert c.get(f"/v1/cases/{case}").json()["events"][0]["fields"]["full_name"] != {}
    r = bus.order_erasure(case, "erasure-request", "ia-0007")
    assert r.status_code == 201, r.text
    assert set(r.json()["recipients"]) >= {"border-police", "safe-house", "immigration"}
    assert "consulate-xb" not in r.json()["recipients"]
    bus.settle()

    envelopes = []
    reasons: set[str] = set()
    for agency, store in stores.items():
        mine = [e.envelope for e in store.log(limit=10_000) if e.envelope.subject == case]
        if before[agency]:
            assert len(mine) == before[agency] + 1  # nothing removed, the order added
            assert bus.case_keys(agency).cases().count(case) == 0
        envelopes += mine
        with bus.client(agency) as c:
            view = c.get(f"/v1/cases/{case}")
        if before[agency]:
            assert view.json()["erased"] is True
            for ev in view.json()["events"]:
                personal = {k: v for k, v in ev["fields"].items() if k not in ev["operational"]}
                # Nothing opens any more: each field is withheld, mostly for want of
                # a key; fields this agency was never entitled to stay 'not-entitled'.
                assert all(isinstance(v, dict) and "withheld" in v for v in personal.values()), (
                    agency,
                    ev["type"],
                    personal,
                )
                reasons |= {v["reason"] for v in personal.values()}

    assert "key-unavailable" in reasons
    assert len(envelopes) > 20
    bus.prove_nothing_opens(envelopes)  # every key material left anywhere
    hpke_pairs = [(a, p) for a in bus.agencies for p in bus.keys(a).pairs]
    # The transport kept nothing it delivered: no grant of this case is left on it.
    assert [g for g in bus.grants_left() if g.case == case] == []
    assert hpke_pairs  # the long-term keys were there to try, and nothing was left to open
