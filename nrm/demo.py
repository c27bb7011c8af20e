"""The demo: two cases played through the nodes' HTTP APIs.

The first, a presumed child found by border police: referrals, consent, the shelter's
address sealed, a guardian, reflection, asylum (R4) and an unanswered referral that
escalates. The second, a young man whose age is disputed: an age assessment ends the
presumption of minority, a shelter declines and nobody re-refers him (the decline
escalates, R8), and a negative conclusive decision is reviewed and reversed. Each step is
what one agency's own system would send its router. The scenario checks every answer;
the timelines at the end show, per agency, what it sent and received and which fields it
could open and which stayed withheld.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TextIO
from uuid import uuid4

from fastapi import FastAPI, Request

from contracts import webhook_signature as signature
from contracts.events import CATALOGUE
from contracts.policy import load_policy
from nrm.embedded import CountryAccess, CountryBus

CANARY = "CANARY-7f3a"  # seeded into personal fields; tests scan every byte for it


#: A step that passes the case on (R10) instead of appending an event.
FORWARD = "forward"


@dataclass(frozen=True)
class Step:
    agency: str
    says: str
    event_type: str  # or FORWARD: the one recipient is the agency the case is passed on to
    recipients: tuple[str, ...]
    payload: dict[str, Any]
    expect: int = 201
    expect_rule: str | None = None
    #: A name for the event this step records; a payload value "$event:<label>" is
    #: replaced by that event's id (a review names the decision it reviews).
    label: str | None = None


def _resolved(payload: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    def value(v: Any) -> Any:
        if isinstance(v, str) and v.startswith("$event:"):
            return labels[v.removeprefix("$event:")]
        return v

    return {k: value(v) for k, v in payload.items()}


def scenario() -> list[Step]:
    officer = {"decided_by_officer": "ia-0007"}
    return [
        Step(
            "border-police",
            "screens a girl found at the airport, age disputed: presumed child (R1, R2)",
            "case.screened",
            ("child-protection", "nrm-authority"),
            {
                "forms_of_exploitation": ["forced-begging-or-crime"],
                "age_status": "disputed",
                "screened_by_officer": "bp-0042",
                "full_name": f"Name {CANARY}",
                "sex": "female",
                "nationality": "XB",
                "languages": ["xb-lang"],
                "found_at": f"Terminal 2 {CANARY}",
                "indicators": [
                    {
                        "form": "forced-begging-or-crime",
                        "strength": "strong",
                        "observation": f"documents held by escort {CANARY}",
                    }
                ],
                "account": f"Brought to beg by an 'uncle' {CANARY}",
                "migration_status": "irregular",
                "immediate_needs": f"dehydrated {CANARY}",
            },
        ),
        Step(
            "border-police",
            "records her consent to share with the safe house",
            "consent.recorded",
            ("child-protection",),
            {
                "consent_id": "consent-1",
                "recipients": ["safe-house"],
                "categories": ["identity", "service", "health"],
                "recorded_by_officer": "bp-0042",
                "statement": f"agrees to shelter {CANARY}",
            },
        ),
        Step(
            "border-police",
            "refers her to child protection (override: child protection law, R9)",
            "referral.requested",
            ("child-protection",),
            {
                "referral_id": "ref-cp-1",
                "to_agency": "child-protection",
                "service": "guardianship",
                "urgent": True,
                "consent_override": {
                    "legal_basis": "child-protection",
                    "authorised_by_officer": "bp-0042",
                },
                "override_explanation": f"Child Protection Act s.12, presumed child {CANARY}",
                "full_name": f"Name {CANARY}",
                "needs": f"guardian and age assessment {CANARY}",
            },
        ),
        Step(
            "border-police",
            "tries to refer her to the safe house without consent: refused (R9)",
            "referral.requested",
            ("safe-house",),
            {"referral_id": "ref-sh-0", "to_agency": "safe-house", "service": "shelter"},
            expect=409,
            expect_rule="R9",
        ),
        Step(
            "border-police",
            "refers her to the safe house, relying on her consent",
            "referral.requested",
            ("safe-house", "child-protection"),
            {
                "referral_id": "ref-sh-1",
                "to_agency": "safe-house",
                "service": "shelter",
                "consent_id": "consent-1",
                "full_name": f"Name {CANARY}",
                "needs": f"bed tonight {CANARY}",
                "medical_notes": f"dehydrated {CANARY}",
                "pickup_location": f"Airport police office {CANARY}",
            },
        ),
        Step(
            "child-protection",
            "accepts and will appoint a guardian",
            "referral.accepted",
            ("border-police",),
            {
                "referral_id": "ref-cp-1",
                "answered_by_officer": "cp-0101",
                "placement": f"guardian on duty {CANARY}",
            },
        ),
        Step(
            "safe-house",
            "accepts: the shelter address goes only to those entitled (R5)",
            "referral.accepted",
            ("border-police", "child-protection"),
            {
                "referral_id": "ref-sh-1",
                "answered_by_officer": "sh-0001",
                "shelter_address": f"12 Hidden Lane {CANARY}",
                "placement": f"room 3 {CANARY}",
            },
        ),
        Step(
            "child-protection",
            "appoints a guardian and tells the authority and immigration",
            "guardian.appointed",
            ("nrm-authority", "immigration", "safe-house"),
            {
                "guardian_agency": "child-protection",
                "decided_by_officer": "cp-0101",
                "guardian_name": f"Guardian {CANARY}",
            },
        ),
        Step(
            "immigration",
            "starts the reflection period (length from XA's policy file)",
            "reflection.started",
            ("nrm-authority", "child-protection", "safe-house"),
            {"decided_by_officer": "im-0033"},
        ),
        Step(
            "nrm-authority",
            "decides reasonable grounds: positive",
            "identification.decided",
            ("immigration", "child-protection", "border-police", "asylum-office"),
            {
                "stage": "reasonable-grounds",
                **officer,
                "outcome": "positive",
                "reasoning": f"strong indicators {CANARY}",
            },
        ),
        Step(
            "child-protection",
            "as her guardian, passes the case on to the asylum office (R10): identity and "
            "legal status only, never where she is",
            FORWARD,
            ("asylum-office",),
            {
                "forwarded_by_officer": "cp-0101",
                "consent_override": {
                    "legal_basis": "child-protection",
                    "authorised_by_officer": "cp-0101",
                },
            },
        ),
        Step(
            "asylum-office",
            "records that she has lodged an asylum claim",
            "asylum.lodged",
            ("nrm-authority", "immigration", "child-protection"),
            {"refugee": False, "claim_reference": f"AS-2026-{CANARY}"},
        ),
        Step(
            "nrm-authority",
            "tries to inform the consulate of her country: refused (R4)",
            "risk.assessed",
            ("consulate-xb", "immigration"),
            {"serious_risk": True, "assessed_by_officer": "ia-0007", "findings": CANARY},
            expect=409,
            expect_rule="R4",
        ),
        Step(
            "border-police",
            "asks the safe house, urgently, for psychological care (left unanswered)",
            "referral.requested",
            ("safe-house",),
            {
                "referral_id": "ref-psy-1",
                "to_agency": "safe-house",
                "service": "psychological",
                "urgent": True,
                "consent_id": "consent-1",
                "needs": f"nightmares, panic {CANARY}",
            },
        ),
        Step(
            "nrm-authority",
            "assesses the risk of return: serious (R4 bars return)",
            "risk.assessed",
            ("immigration", "child-protection"),
            {"serious_risk": True, "assessed_by_officer": "ia-0007", "findings": f"{CANARY}"},
        ),
    ]


def second_scenario() -> list[Step]:
    """A disputed age resolved, a decline nobody re-routes, a negative decision reviewed."""
    told = ("border-police", "child-protection", "safe-house", "immigration")
    return [
        Step(
            "border-police",
            "screens a young man at a car wash, age disputed: presumed child, guardian "
            "clock starts (R2)",
            "case.screened",
            ("child-protection", "nrm-authority"),
            {
                "forms_of_exploitation": ["forced-labour", "debt-bondage"],
                "age_status": "disputed",
                "screened_by_officer": "bp-0042",
                "full_name": f"Second {CANARY}",
                "sex": "male",
                "nationality": "XB",
                "found_at": f"Car wash, ring road {CANARY}",
                "indicators": [
                    {
                        "form": "forced-labour",
                        "strength": "strong",
                        "code": "common/excessive-hours",
                        "observation": f"14 hours a day, 7 days {CANARY}",
                    },
                    {
                        "form": "debt-bondage",
                        "strength": "strong",
                        "observation": f"a travel debt that only grows {CANARY}",
                    },
                ],
            },
        ),
        Step(
            "border-police",
            "records his consent to share with the safe house",
            "consent.recorded",
            ("nrm-authority",),
            {
                "consent_id": "consent-2",
                "recipients": ["safe-house"],
                "categories": ["identity", "service"],
                "recorded_by_officer": "bp-0042",
            },
        ),
        Step(
            "border-police",
            "refers him to the safe house for a bed (the authority is told)",
            "referral.requested",
            ("safe-house", "nrm-authority"),
            {
                "referral_id": "ref-sh-2",
                "to_agency": "safe-house",
                "service": "shelter",
                "consent_id": "consent-2",
                "full_name": f"Second {CANARY}",
                "needs": f"a bed tonight {CANARY}",
            },
        ),
        Step(
            "safe-house",
            "declines, full (signed by its officer, R7): the re-referral clock starts (R8)",
            "referral.declined",
            ("border-police",),
            {
                "referral_id": "ref-sh-2",
                "reason_code": "capacity",
                "answered_by_officer": "sh-0001",
                "reason": f"no bed for a man tonight {CANARY}",
            },
        ),
        Step(
            "child-protection",
            "assesses his age: an adult. The presumption of minority ends (R2)",
            "age.assessed",
            ("nrm-authority", "border-police"),
            {
                "outcome": "adult",
                "assessed_by_officer": "cp-0101",
                "estimated_age": 20,
                "method": f"interview and documents {CANARY}",
            },
        ),
        Step(
            "nrm-authority",
            "decides reasonable grounds: positive",
            "identification.decided",
            told,
            {"stage": "reasonable-grounds", "decided_by_officer": "ia-0007", "outcome": "positive"},
        ),
        Step(
            "nrm-authority",
            "decides conclusively: negative",
            "identification.decided",
            told,
            {
                "stage": "conclusive",
                "decided_by_officer": "ia-0007",
                "outcome": "negative",
                "reasoning": f"account inconsistent {CANARY}",
            },
            label="conclusive",
        ),
        Step(
            "nrm-authority",
            "tries to decide again without a review: refused",
            "identification.decided",
            told,
            {"stage": "conclusive", "decided_by_officer": "ia-0009", "outcome": "positive"},
            expect=409,
            expect_rule="LIFECYCLE",
        ),
        Step(
            "safe-house",
            "its legal adviser asks for a review of the negative decision (review clock)",
            "identification.review-requested",
            ("nrm-authority",),
            {
                "review_id": "review-1",
                "decision_event_id": "$event:conclusive",
                "requested_by_officer": "sh-0001",
                "grounds": f"interviewed without an interpreter {CANARY}",
            },
        ),
        Step(
            "nrm-authority",
            "decides on review: positive, by another officer (both decisions stay, R7)",
            "identification.decided",
            told,
            {
                "stage": "conclusive",
                "review_id": "review-1",
                "decided_by_officer": "ia-0009",
                "outcome": "positive",
                "reasoning": f"re-interviewed with an interpreter {CANARY}",
            },
        ),
    ]


class DemoFailed(Exception):
    pass


async def play(
    bus: CountryAccess, out: TextIO, steps: list[Step] | None = None, name: str = "demo"
) -> str:
    """Play the scenario; returns the case pseudonym. Raises DemoFailed on a surprise.
    Each play is a case of its own, also on a bus that played it before (its requests'
    idempotency keys are this play's)."""
    case = ""
    say = _printer(out)
    labels: dict[str, str] = {}
    run = uuid4().hex[:12]
    for i, step in enumerate(steps or scenario(), 1):
        key = {"Idempotency-Key": f"{name}-{run}-{i}"}
        payload = _resolved(step.payload, labels)
        async with bus.client(step.agency) as client:
            if step.event_type == "case.screened":
                body = {"recipients": list(step.recipients), "payload": payload}
                resp = await client.post("/v1/cases", json=body, headers=key)
            elif step.event_type == FORWARD:
                body = {"to": step.recipients[0], **payload}
                resp = await client.post(f"/v1/cases/{case}/forward", json=body, headers=key)
            else:
                body = {
                    "type": step.event_type,
                    "recipients": list(step.recipients),
                    "payload": payload,
                }
                resp = await client.post(f"/v1/cases/{case}/events", json=body, headers=key)
        data = resp.json()
        rule = data.get("rule")
        ok = resp.status_code == step.expect and (
            step.expect_rule is None or rule == step.expect_rule
        )
        mark = "ok " if ok else "FAIL"
        verdict = f"{resp.status_code}" + (f" refused by {rule}" if rule else "")
        say(f"[{mark}] {i:2}. {step.agency:<16} {step.says}  -> {verdict}")
        if not ok:
            raise DemoFailed(f"step {i}: expected {step.expect}, got {resp.status_code}: {data}")
        if step.event_type == "case.screened":
            case = data["case"]
        if step.label is not None:
            labels[step.label] = str(data["event_id"])
        await bus.settle()
    return case


async def timeline(bus: CountryAccess, case: str, out: TextIO) -> dict[str, list[dict[str, Any]]]:
    """Per agency: each event it holds, and which fields it opened or found withheld."""
    say = _printer(out)
    say(f"\nPer-agency timeline of {case} (what each node holds and could open):")
    result: dict[str, list[dict[str, Any]]] = {}
    for agency in bus.nodes:
        async with bus.client(agency) as client:
            resp = await client.get(f"/v1/cases/{case}")
        if resp.status_code == 404:
            say(f"\n{agency}: nothing of this case reached it")
            result[agency] = []
            continue
        if resp.status_code != 200:
            raise DemoFailed(f"{agency} could not read the case: {resp.status_code} {resp.text}")
        events = resp.json()["events"]
        result[agency] = events
        say(f"\n{agency}:")
        for ev in events:
            say(timeline_line(ev))
        passed: dict[str, list[str]] = {}
        for fw in resp.json().get("forwarded", []):
            passed.setdefault(fw["to"], []).extend(fw["shared"])
        for to, shared in passed.items():
            n = sum(1 for fw in resp.json()["forwarded"] if fw["to"] == to)
            say(f"  => passed {n} events on to {to} (R10): {', '.join(sorted(set(shared))) or '-'}")
    return result


#: Clear fields the timeline shows beside an event's type, so each step reads at a glance.
SHOWN = ("stage", "review_id", "reason_code", "outcome", "deadline", "complicity", "topic")


def timeline_line(ev: dict[str, Any], origin: str = "", widths: tuple[int, int] = (32, 40)) -> str:
    """One event as an agency holds it: direction, type (with the clear facts that tell
    the step), the other party, and which personal fields it opened and which categories
    stayed withheld."""
    arrow = "->" if ev["direction"] == "sent" else "<-"
    other = (", ".join(ev["recipients"]) if ev["direction"] == "sent" else ev["sender"]) + origin
    if ev.get("forwarded_by"):
        other += f" via {ev['forwarded_by']}"
    personal = {k: v for k, v in ev["fields"].items() if k not in ev["operational"]}
    hidden = {
        k: v["withheld"] for k, v in personal.items() if isinstance(v, dict) and "withheld" in v
    }
    opened = sorted(k for k in personal if k not in hidden)
    withheld = sorted(set(hidden.values()))
    op = ev["operational"]
    facts = " ".join(str(op[k]) for k in SHOWN if op.get(k) is not None)
    line = f"  {arrow} {ev['type']:<{widths[0]}} {other:<{widths[1]}} "
    line += f"[{facts}] " if facts else ""
    line += f"opened: {', '.join(opened) or '-'}"
    return line + (f" | withheld: {', '.join(withheld)}" if withheld else "")


class WebhookReceiver:
    """The agencies' own case-management systems: receive notifications, check each
    signature with the subscription's secret, keep what arrived."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.deliveries: list[tuple[str, dict[str, Any], bool, bytes]] = []
        self.app = FastAPI(title="demo webhook receiver")

        @self.app.post("/hook/{agency}", status_code=204)
        async def hook(agency: str, request: Request) -> None:
            body = await request.body()
            try:
                signature.verify(self.secrets[agency], body, request.headers.get(signature.HEADER))
                authentic = True
            except (signature.SignatureError, KeyError):
                authentic = False
            self.deliveries.append((agency, json.loads(body), authentic, body))


async def subscribe_systems(bus: CountryAccess, receiver: WebhookReceiver, out: TextIO) -> None:
    url = await bus.serve(receiver.app)
    for agency in ("safe-house", "child-protection", "nrm-authority", "border-police"):
        sub = await bus.subscribe(agency, f"{url}/hook/{agency}", sorted(CATALOGUE))
        receiver.secrets[agency] = sub["secret"]
    _printer(out)(f"Webhook subscriptions registered in the registry for 4 agencies -> {url}")


async def escalation(
    bus: CountryAccess,
    case: str,
    out: TextIO,
    timeout: float = 30.0,
    *,
    kind: str = "referral-answer",
    hours: int | None = None,
    what: str = "ref-psy-1 is still unanswered",
) -> dict[str, Any]:
    """Move the notifier's clock past a deadline (by default the urgent referral's, from
    the policy file) and wait for its escalation to reach the competent authority (R8)."""
    say = _printer(out)
    if hours is None:
        hours = load_policy(bus.country).urgent_referral_answer_hours
    bus.clock_offset = timedelta(hours=hours + 1)
    say(f"\n... {hours + 1} hours later (notifier clock): {what}")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with bus.client("nrm-authority") as client:
        while loop.time() < deadline:
            items = (await client.get("/v1/inbox", params={"limit": 500})).json()["items"]
            found = [
                i
                for i in items
                if i["type"] == "case.escalated"
                and i["case"] == case
                and i["operational"]["deadline"] == kind
            ]
            if found:
                esc = found[0]
                say(
                    f"[ok ] R8 escalation: {esc['sender']} -> nrm-authority  "
                    f"{esc['operational']['deadline']} was due {esc['operational']['due']}"
                )
                await bus.settle()
                return dict(esc)
            await asyncio.sleep(0.2)
    raise DemoFailed(f"no {kind} escalation reached the competent authority")


def report_notifications(receiver: WebhookReceiver, out: TextIO) -> None:
    say = _printer(out)
    say("\nNotifications received by the agencies' systems (operational metadata only):")
    by_agency: dict[str, list[str]] = {}
    for agency, body, authentic, raw in receiver.deliveries:
        if not authentic:
            raise DemoFailed(f"a delivery to {agency} failed its signature check")
        if CANARY.encode() in raw:
            raise DemoFailed(f"a personal field leaked into a notification to {agency}")
        by_agency.setdefault(agency, []).append(str(body.get("type", body.get("kind"))))
    for agency, types in sorted(by_agency.items()):
        say(f"  {agency:<16} {len(types):2} signed, verified: {', '.join(types)}")
    if not by_agency:
        raise DemoFailed("no notification arrived")


def console_sign_ins(bus: CountryBus, out: TextIO, agencies: tuple[str, ...]) -> None:
    """Where each node's web console is, and its demo officer's sign-in (demo only)."""
    say = _printer(out)
    for agency in agencies:
        if agency in bus.officers:
            officer, password = bus.officers[agency]
            say(
                f"  {agency:<16} {bus.console_url(agency):<36} officer {officer:<8} "
                f"password {password}"
            )


def _printer(out: TextIO) -> Callable[[str], None]:
    def say(line: str) -> None:
        print(line, file=out, flush=True)

    return say


async def run_demo(bus: CountryAccess, out: TextIO) -> str:
    """The whole demo on a started bus: subscriptions, the case, an escalation, the
    notifications that arrived, and every agency's view. Returns the case pseudonym."""
    receiver = WebhookReceiver()
    await subscribe_systems(bus, receiver, out)
    case = await play(bus, out)
    await escalation(bus, case, out)
    second = await play_second(bus, out)
    await asyncio.sleep(1.0)  # let the last webhooks land
    report_notifications(receiver, out)
    await timeline(bus, case, out)
    await timeline(bus, second, out)
    return case


async def play_second(bus: CountryAccess, out: TextIO) -> str:
    """The second case, then the decline nobody re-routed escalating (R8)."""
    _printer(out)("\nA second case: a disputed age, a decline, a negative decision reviewed")
    case = await play(bus, out, second_scenario(), name="demo-second")
    hours = load_policy(bus.country).re_referral_hours
    what = "nobody re-referred him after the safe house declined ref-sh-2"
    await escalation(bus, case, out, kind="re-referral", hours=hours, what=what)
    return case
