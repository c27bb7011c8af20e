"""Poison messages are dead-lettered with their reason and never block the partition."""

from __future__ import annotations

from uuid import uuid4

from contracts.kafka_binding import encode
from referral_router.transport.topics import inbox_topic
from tests.bus.running import RunningBus
from tests.router.test_http_api import ADULT, append, screen


def test_poison_messages_dead_lettered_and_next_applied(bus: RunningBus) -> None:
    case = screen(bus, to=["nrm-authority", "safe-house"])
    bus.settle()
    node = bus.bus.nodes["safe-house"]
    genuine = next(e.envelope for e in node.store.log() if e.envelope.subject == case)
    forged_sender = genuine.model_copy(update={"sender": "nobody-here", "id": uuid4()})
    tampered = genuine.model_copy(
        update={"id": uuid4(), "operational": {**genuine.operational, "age_status": "child"}}
    )
    topic = inbox_topic("XA", "safe-house")
    transport = bus.bus.transport
    assert transport is not None
    for env in (forged_sender, tampered):
        key, value, headers = encode(env)
        bus.run(transport.publish(topic, key, value, headers))
    bus.run(transport.publish(topic, case.encode(), b"not json", ()))
    later = append(
        bus,
        "border-police",
        case,
        "consent.recorded",
        ["safe-house"],
        {
            "consent_id": "c9",
            "recipients": ["safe-house"],
            "categories": ["identity"],
            "recorded_by_officer": "bp-1",
        },
    )
    assert later.status_code == 201
    bus.settle()
    with bus.client("safe-house") as c:
        letters = c.get("/v1/dead-letters").json()["items"]
        events = c.get(f"/v1/cases/{case}").json()["events"]
    rules = {d["rule"]: d["reason"] for d in letters}
    assert "R6" in rules and "nobody-here" in rules["R6"]
    assert "SIGNATURE" in rules
    assert "CONTRACT" in rules
    assert [e["type"] for e in events] == ["case.screened", "consent.recorded"]
    # R9: the shelter was screened in before any consent, so its identity was withheld
    assert events[0]["fields"]["full_name"]["withheld"] == "identity"
    with bus.client("nrm-authority") as c:
        opened = c.get(f"/v1/cases/{case}").json()["events"][0]["fields"]
    assert ADULT["full_name"] == opened["full_name"]
