"""Two federated countries in one process, and a voluntary return played across them.

XA (the destination country, where the person was found) and XB (her country of
origin) each run their own registry, nodes, stores and in-process transport (separate
`bus.db` files; with Kafka, one broker and the separate `nrm.XA.*` / `nrm.XB.*` topic
namespaces). Each registry imports the other's anchor and publishes its counterparts;
each country runs a gateway (`referral_router.runtime.gateway`). Nothing is shared but
HTTP between registries and gateways.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from uuid import uuid4

import httpx

from contracts.vocabulary import PERSONAL_CATEGORIES, DataCategory, Role, ServiceKind
from nrm import pki
from nrm.broker import SecuredKafka
from nrm.demo import CANARY, DemoFailed, Step, _printer, timeline_line
from nrm.embedded import DEMO_AGENCIES, AgencySpec, CountryBus, free_port
from nrm.serving import ServerTls
from referral_router.runtime.gateway import GatewayRuntime

DESTINATION, ORIGIN = "XA", "XB"
GATEWAY = {DESTINATION: "federation-xb", ORIGIN: "federation-xa"}
#: Marks XB's own personal fields, so a scan can tell them from XA's (CANARY-<category>).
XB_MARK = "XBMARK-51c0"

XA_AGENCIES: tuple[AgencySpec, ...] = (
    *DEMO_AGENCIES,
    AgencySpec(GATEWAY[DESTINATION], "Cross-border gateway to XB", (Role.COUNTERPART,)),
)
XB_AGENCIES: tuple[AgencySpec, ...] = (
    AgencySpec(GATEWAY[ORIGIN], "Cross-border gateway to XA", (Role.COUNTERPART,)),
    AgencySpec(
        "reintegration-office",
        "Return and Reintegration Office of XB",
        (Role.COUNTERPART,),
        (ServiceKind.RETURN_ASSISTANCE,),
    ),
    AgencySpec("xb-rapporteur", "National Rapporteur of XB", (Role.OVERSIGHT,)),
)

#: What each registry publishes: its agencies that receive from the peer, and what.
COUNTERPARTS: dict[str, list[dict[str, Any]]] = {
    DESTINATION: [
        {
            "agency": "nrm-authority",
            "event_types": ["return.plan-agreed", "reintegration.monitored"],
            "categories": ["service"],
        }
    ],
    ORIGIN: [
        {
            "agency": "reintegration-office",
            "event_types": ["return.planning-started", "return.completed"],
            "categories": ["identity", "health"],
        }
    ],
}


def mark(category: DataCategory | str) -> str:
    """The canary of one category: a scan shows which categories reached whom."""
    return f"{CANARY}-{category}"


@dataclass
class FederatedBuses:
    """Both countries' buses, their gateways, and the federation between them."""

    data_dir: Path
    kafka: SecuredKafka | None = None  # one broker for both, topics and ACLs per country
    xa_agencies: Sequence[AgencySpec] = XA_AGENCIES
    xb_agencies: Sequence[AgencySpec] = XB_AGENCIES
    buses: dict[str, CountryBus] = field(default_factory=dict)
    gateways: dict[str, GatewayRuntime] = field(default_factory=dict)
    #: Each gateway's border door (mutual TLS, pinned): what the peer's agreement names.
    gateway_urls: dict[str, str] = field(default_factory=dict)
    #: Each gateway's local door: the crossings, for itself and oversight.
    admin_urls: dict[str, str] = field(default_factory=dict)
    #: Each gateway's TLS key and certificate, from its own country's CA.
    gateway_tls: dict[str, Path] = field(default_factory=dict)

    async def start(self) -> None:
        specs = {DESTINATION: self.xa_agencies, ORIGIN: self.xb_agencies}
        ports: dict[str, int] = {}
        for country, agencies in specs.items():
            bus = CountryBus(country, self.data_dir, agencies, kafka=self.kafka, federated=True)
            await bus.start()
            self.buses[country] = bus
            ca = pki.LocalCA.open_or_init(bus.root / "pki", country)
            self.gateway_tls[country] = ca.ensure(pki.agency(GATEWAY[country], country))
            ports[country] = free_port()
            self.gateway_urls[country] = f"https://127.0.0.1:{ports[country]}"
        for country in self.buses:
            await self.federate(country)
        for country, bus in self.buses.items():
            gw = GatewayRuntime(
                country,
                self.peer_of(country),
                bus.root / "gateway",
                bus.registry_url,
                bus.anchor(),
                bus.nodes[GATEWAY[country]],
                self.gateway_tls[country],
            )
            pinned = await asyncio.to_thread(gw.pinned_peer_certificate)
            door = ServerTls(self.gateway_tls[country], client_pins=pinned)
            await bus.serve(gw.border_app, door, ports[country])
            self.gateways[country], self.admin_urls[country] = gw, await bus.serve(gw.app)
        for gw in self.gateways.values():
            gw.start()

    @staticmethod
    def peer_of(country: str) -> str:
        return ORIGIN if country == DESTINATION else DESTINATION

    async def federate(self, country: str) -> httpx.Response:
        """`country`'s operator imports the peer's anchor and publishes its counterparts."""
        peer = self.buses[self.peer_of(country)]
        body = {
            "anchor": peer.anchor().model_dump(mode="json"),
            "registry_url": peer.registry_url,
            "gateway_url": self.gateway_urls[peer.country],
            "peer_gateway": GATEWAY[peer.country],
            "gateway": GATEWAY[country],
            "counterparts": COUNTERPARTS[country],
            "peer_gateway_certificate": pki.leaf_pem(self.gateway_tls[peer.country]),
            "reason": f"bilateral return agreement {DESTINATION}-{ORIGIN}",
        }
        return await self._operator(country, "PUT", f"/v1/federation/peers/{peer.country}", body)

    async def end_federation(self, country: str, reason: str) -> httpx.Response:
        """`country`'s operator removes the peer's anchor."""
        peer = self.peer_of(country)
        return await self._operator(
            country, "DELETE", f"/v1/federation/peers/{peer}", params={"reason": reason}
        )

    async def _operator(
        self,
        country: str,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        bus = self.buses[country]
        headers = {"Authorization": f"Bearer {bus.operator_token()}"}
        async with httpx.AsyncClient(
            base_url=bus.registry_url, timeout=30, verify=bus.verify
        ) as client:
            resp = await client.request(method, path, json=body, params=params, headers=headers)
        if resp.status_code >= 400:
            raise DemoFailed(f"{country} registry {method} {path}: {resp.status_code} {resp.text}")
        return resp

    async def settle(self, timeout: float = 30.0) -> None:
        """Until both buses and both gateways have nothing left to carry."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        quiet = 0
        while loop.time() < deadline:
            for bus in self.buses.values():
                await bus.settle(timeout=max(1.0, deadline - loop.time()))
            pending = await self.gateways_pending()
            quiet = quiet + 1 if pending == 0 else 0
            if quiet >= 2:
                return
            await asyncio.sleep(0.2)
        raise TimeoutError("the federated buses did not settle")

    async def gateways_pending(self) -> int:
        """Return events the gateways received and have not carried across yet."""
        return sum(g.pending() for g in self.gateways.values())

    async def stop(self) -> None:
        for gw in self.gateways.values():
            await gw.stop()
        for bus in self.buses.values():
            await bus.stop()


# --- the scenario ----------------------------------------------------------------------


@dataclass(frozen=True)
class CrossStep:
    country: str
    step: Step


def screening(officer: str = "bp-0042") -> dict[str, Any]:
    """An adult woman from XB, every personal field marked with its category's canary."""
    return {
        "forms_of_exploitation": ["domestic-servitude"],
        "age_status": "adult",
        "screened_by_officer": officer,
        "full_name": f"Name {mark('identity')}",
        "nationality": "XB",
        "languages": [f"xb-lang {mark('identity')}"],
        "found_at": f"Harbour road {mark('location')}",
        "indicators": [
            {
                "form": "domestic-servitude",
                "strength": "strong",
                "observation": f"passport withheld {mark('exploitation-account')}",
            }
        ],
        "account": f"Recruited as a nanny {mark('exploitation-account')}",
        "migration_status": f"overstayed {mark('legal-status')}",
        "immediate_needs": f"insulin {mark('health')}",
    }


def before_return(*, asylum: bool = False) -> list[CrossStep]:
    """XA: screening to a risk assessment the gateway also receives (R4 at the border)."""
    steps = [
        Step(
            "border-police",
            "screens an adult woman from XB found in domestic servitude (R1)",
            "case.screened",
            ("nrm-authority", "immigration", *(("asylum-office",) if asylum else ())),
            screening(),
        ),
        Step(
            "nrm-authority",
            "decides reasonable grounds: positive",
            "identification.decided",
            ("border-police", "immigration"),
            {
                "stage": "reasonable-grounds",
                "decided_by_officer": "ia-0007",
                "outcome": "positive",
                "reasoning": f"strong indicators {mark('decision')}",
            },
        ),
        Step(
            "border-police",
            "records that she asks to go home and agrees to share for it",
            "consent.recorded",
            ("nrm-authority",),
            {
                "consent_id": "consent-return",
                "recipients": ["nrm-authority", GATEWAY[DESTINATION]],
                "categories": ["identity", "health"],
                "voluntary_return": True,
                "recorded_by_officer": "bp-0042",
                "statement": f"wants to return home {mark('identity')}",
            },
        ),
    ]
    if asylum:
        steps.append(
            Step(
                "asylum-office",
                "records that she lodged an asylum claim (R4 from here on)",
                "asylum.lodged",
                ("nrm-authority", "immigration"),
                {"refugee": False, "claim_reference": f"AS-{mark('legal-status')}"},
            )
        )
    steps.append(
        Step(
            "nrm-authority",
            "assesses the risk of return: no serious risk (the gateway is told too)"
            if not asylum
            else "tells XB's gateway its risk assessment: refused, asylum is lodged (R4)",
            "risk.assessed",
            ("immigration", GATEWAY[DESTINATION]),
            {
                "serious_risk": False,
                "assessed_by_officer": "ia-0007",
                "findings": f"family not complicit {mark('decision')}",
            },
            **_refused_by_r4(asylum),
        )
    )
    return [CrossStep(DESTINATION, s) for s in steps]


def _refused_by_r4(asylum: bool) -> dict[str, Any]:
    """An asylum case: the competent authority (told of every claim) addresses nothing
    to the country of origin's side, and its own node says so."""
    return {"expect": 409, "expect_rule": "R4"} if asylum else {}


def planning(*, asylum: bool = False) -> CrossStep:
    return CrossStep(
        DESTINATION,
        Step(
            "nrm-authority",
            "starts return planning with XB's reintegration office (crosses the border)"
            if not asylum
            else "tries to start return planning with XB: refused, asylum is lodged (R4)",
            "return.planning-started",
            (GATEWAY[DESTINATION], "immigration"),
            {
                "destination_country": ORIGIN,
                "counterpart_agency": "reintegration-office",
                "full_name": f"Name {mark('identity')}",
                "date_of_birth": "1994-03-02",
                "reception_needs": f"insulin on arrival {mark('health')}",
            },
            **_refused_by_r4(asylum),
        ),
    )


def agreement() -> CrossStep:
    return CrossStep(
        ORIGIN,
        Step(
            "reintegration-office",
            "agrees the reception and reintegration plan (crosses back)",
            "return.plan-agreed",
            (GATEWAY[ORIGIN],),
            {"agreed_by_officer": "xb-ro-12", "plan": f"shelter and job training {XB_MARK}"},
        ),
    )


def completion() -> CrossStep:
    return CrossStep(
        DESTINATION,
        Step(
            "nrm-authority",
            "records the voluntary return as completed (crosses the border)",
            "return.completed",
            (GATEWAY[DESTINATION], "immigration"),
            {
                "voluntary": True,
                "consent_id": "consent-return",
                "confirmed_by_officer": "ia-0007",
                "travel_details": f"flight XB-204 {mark('service')}",
            },
        ),
    )


def monitoring() -> CrossStep:
    return CrossStep(
        ORIGIN,
        Step(
            "reintegration-office",
            "monitors her after return: no retaliation (crosses back)",
            "reintegration.monitored",
            (GATEWAY[ORIGIN],),
            {"visit_number": 1, "retaliation_risk": False, "notes": f"settled {XB_MARK}"},
        ),
    )


def scenario() -> list[CrossStep]:
    return [*before_return(), planning(), agreement(), completion(), monitoring()]


async def submit(pair: FederatedBuses, cs: CrossStep, case: str, key: str) -> httpx.Response:
    """One step as the agency's own system sends it to its router."""
    step = cs.step
    async with pair.buses[cs.country].client(step.agency) as client:
        headers = {"Idempotency-Key": key}
        if step.event_type == "case.screened":
            body = {"recipients": list(step.recipients), "payload": step.payload}
            return await client.post("/v1/cases", json=body, headers=headers)
        body = {
            "type": step.event_type,
            "recipients": list(step.recipients),
            "payload": step.payload,
        }
        return await client.post(f"/v1/cases/{case}/events", json=body, headers=headers)


async def play(
    pair: FederatedBuses, out: TextIO, steps: Sequence[CrossStep] | None = None, case: str = ""
) -> str:
    """Play steps across both countries, settling after each; returns the case."""
    say = _printer(out)
    run = uuid4().hex[:12]
    for i, cs in enumerate(steps if steps is not None else scenario(), 1):
        resp = await submit(pair, cs, case, f"fed-{run}-{i}")
        data = resp.json()
        rule = data.get("rule")
        ok = resp.status_code == cs.step.expect and cs.step.expect_rule in (None, rule)
        verdict = f"{resp.status_code}" + (f" refused by {rule}" if rule else "")
        say(
            f"[{'ok ' if ok else 'FAIL'}] {cs.country} {cs.step.agency:<20} "
            f"{cs.step.says}  -> {verdict}"
        )
        if not ok:
            raise DemoFailed(f"{cs.country} {cs.step.agency}: {resp.status_code} {data}")
        if cs.step.event_type == "case.screened":
            case = data["case"]
        await pair.settle()
    return case


async def crossings(pair: FederatedBuses, country: str) -> list[dict[str, Any]]:
    """The gateway's crossings, asked as the gateway agency itself (its local door)."""
    token = pair.buses[country].token(GATEWAY[country])
    bus = pair.buses[country]
    async with httpx.AsyncClient(
        base_url=pair.admin_urls[country], timeout=30, verify=bus.verify
    ) as client:
        resp = await client.get(
            "/v1/federation/crossings", headers={"Authorization": f"Bearer {token}"}
        )
    resp.raise_for_status()
    return list(resp.json()["items"])


async def country_timeline(
    pair: FederatedBuses, country: str, case: str, out: TextIO
) -> dict[str, list[dict[str, Any]]]:
    """Per agency of one country: what it holds of the case and what it could open."""
    say = _printer(out)
    bus = pair.buses[country]
    say(f"\n=== {country}: per-agency timeline of {case} ===")
    views: dict[str, list[dict[str, Any]]] = {}
    for agency in bus.nodes:
        async with bus.client(agency) as client:
            resp = await client.get(f"/v1/cases/{case}")
        if resp.status_code == 404:
            views[agency] = []
            continue
        if resp.status_code != 200:
            raise DemoFailed(f"{country} {agency}: {resp.status_code} {resp.text}")
        events = resp.json()["events"]
        views[agency] = events
        say(f"{agency}:")
        for ev in events:
            foreign = "" if ev["sender"] in bus.nodes else f" (from {pair.peer_of(country)})"
            say(timeline_line(ev, foreign, (26, 42)))
    say(f"--- {country} gateway crossings ---")
    for c in await crossings(pair, country):
        if c["case"] != case:
            continue
        verdict = "crossed" if c["outcome"] == "crossed" else f"REFUSED {c['rule']}: {c['reason']}"
        cats = ",".join(c["categories"]) or "-"
        say(
            f"  {c['direction']:<3} {c['event_type']:<26} {c['agency']:<22} "
            f"keys: {cats:<16} {verdict}"
        )
    return views


def categories_marked(text: str) -> set[str]:
    """Which categories' canaries appear in `text`."""
    return {str(c) for c in PERSONAL_CATEGORIES if mark(c) in text}
