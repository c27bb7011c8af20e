"""Telemetry as a real deployment installs it: a *global* tracer and meter provider
(`NRM_OTEL_EXPORTER=console`) in a running `nrm up`, so every library that traces on its
own (the web framework included) exports too. Checked on what actually leaves the
process (stdout: every span and metric; stderr: every log line, JSON, at DEBUG):

- no span attribute, event, metric or log line holds a case pseudonym or a personal field;
- an idle bus (the notifier polling every node's log twice a second) exports no span;
- one trace runs from the sender's HTTP request through the receiving node into the
  notifier's webhook, whose `traceparent` header reaches the agency's own system.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from contracts.agency_token import issue_token
from contracts.directory import KeyUse
from nrm.embedded import OPERATOR_ID, Keychain
from nrm_client import LocalBus
from tests.quickstart.running_up import NrmUp, user_env

PERSONAL = {
    "full_name": "Zebulon Quartermaine",
    "found_at": "Greenhouse 7 behind the old mill",
    "observation": "wrists marked by cable ties",
    "needs": "insulin twice a day",
}
PSEUDONYM = re.compile(r"case-[a-z0-9]{8,64}")


def exported(text: str) -> list[dict[str, Any]]:
    """Every JSON object the console exporters printed (spans and metric batches)."""
    decoder, out, i = json.JSONDecoder(), [], 0
    while (i := text.find("{", i)) != -1:
        try:
            obj, end = decoder.raw_decode(text, i)
        except ValueError:
            i += 1
            continue
        out.append(obj)
        i = end
    return out


def spans(text: str) -> list[dict[str, Any]]:
    return [o for o in exported(text) if "context" in o and "kind" in o]


class Hooks(BaseHTTPRequestHandler):
    """The safe house's own system: records each webhook's headers and body."""

    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Hooks.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook_receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        thread.join(5)


def subscribe(up: NrmUp, agency: str, url: str) -> None:
    """As the registry operator, then wait until the notifier has loaded it."""
    bus = LocalBus(up.folder / ".nrm-data")
    operator = Keychain.existing(up.country / "secrets").existing_keys(OPERATOR_ID)
    pair = operator.current(KeyUse.SIGNING)
    token = issue_token(OPERATOR_ID, pair.key_id, pair.ed25519(), bus.endpoints.registry.audience)
    r = httpx.post(
        f"{bus.endpoints.registry.url}/v1/agencies/{agency}/subscriptions",
        json={"webhook_url": url, "event_types": ["referral.requested"]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 201, r.text
    notifier = bus.endpoints.notifier
    assert notifier is not None
    credentials = bus.credentials(agency)
    listing = f"{notifier.url}/v1/subscriptions"
    for _ in range(100):
        headers = credentials.headers("GET", listing, notifier.audience)
        if any(
            s["webhook_url"] == url for s in httpx.get(listing, headers=headers).json()["items"]
        ):
            return
        time.sleep(0.1)
    pytest.fail("the notifier never loaded the subscription")


def test_nothing_personal_leaves_and_one_trace_reaches_the_agency_system(
    tmp_path: Path, webhook_receiver: str
) -> None:
    env = user_env(NRM_OTEL_EXPORTER="console", OTEL_BSP_SCHEDULE_DELAY="100")
    up = NrmUp(tmp_path, ("--port", "0", "--log-format", "json", "--log-level", "DEBUG"), env)
    up.start()
    try:
        time.sleep(3)  # idle: the notifier polls 8 nodes' logs every 0.5 s meanwhile
        idle = spans(up.stdout())
        subscribe(up, "safe-house", webhook_receiver)
        bus = LocalBus(up.folder / ".nrm-data")
        police = bus.client("border-police")
        case = police.screen(
            {
                "forms_of_exploitation": ["forced-labour"],
                "age_status": "adult",
                "screened_by_officer": "bp-7",
                "full_name": PERSONAL["full_name"],
                "nationality": "XB",
                "found_at": PERSONAL["found_at"],
                "indicators": [
                    {"form": "forced-labour", "strength": "strong",
                     "observation": PERSONAL["observation"]}
                ],
            },
            recipients=["nrm-authority"],
        ).case  # fmt: skip
        police.append(
            case,
            "consent.recorded",
            {"consent_id": "c-1", "recipients": ["safe-house"],
             "categories": ["identity", "service"], "recorded_by_officer": "bp-7"},
            recipients=["nrm-authority"],
        )  # fmt: skip
        referral = police.append(
            case,
            "referral.requested",
            {"referral_id": "r-1", "to_agency": "safe-house", "service": "shelter",
             "consent_id": "c-1", "full_name": PERSONAL["full_name"],
             "needs": PERSONAL["needs"]},
            recipients=["safe-house"],
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not Hooks.received and time.monotonic() < deadline:
            time.sleep(0.2)
        assert Hooks.received, "no webhook reached the agency's system"
        police.case(case)  # a read by pseudonym: its URL path must not become an attribute
        police.close()
    finally:
        assert up.stop() == 0, up.stderr()

    assert idle == [], f"an idle bus exported {len(idle)} spans: {[s['name'] for s in idle][:6]}"
    out, err = up.stdout(), up.stderr()
    everything = spans(out)
    assert len(everything) > 5, out[-2000:]
    for leak in [case, *PERSONAL.values()]:
        assert leak not in out, f"{leak!r} exported in telemetry"
        assert leak not in err, f"{leak!r} in a log line"
    assert not PSEUDONYM.search(out) and not PSEUDONYM.search(err)
    assert not [s for s in everything if "url.path" in s["attributes"]]  # no framework spans
    log_lines = [json.loads(line) for line in err.splitlines()]  # each line is JSON
    assert {"nrm.notifier", "nrm.node"} <= {x["logger"] for x in log_lines}, log_lines[:5]
    assert all({"time", "level", "logger", "message"} <= set(x) for x in log_lines)

    headers, body = Hooks.received[0]
    assert json.loads(body)["event_id"] == referral.event_id
    trace_id = "0x" + headers["traceparent"].split("-")[1]
    in_trace = {
        s["context"]["span_id"]: s for s in everything if s["context"]["trace_id"] == trace_id
    }
    kinds = sorted({(s["kind"], s["attributes"].get("nrm.agency")) for s in in_trace.values()})
    assert ("SpanKind.SERVER", "border-police") in kinds, kinds  # the sender's request
    assert ("SpanKind.PRODUCER", "border-police") in kinds, kinds  # its relay
    assert ("SpanKind.CONSUMER", "safe-house") in kinds, kinds  # the receiving node
    webhook = next(s for s in in_trace.values() if s["kind"] == "SpanKind.CLIENT")
    assert webhook["name"] == "POST webhook" and webhook["attributes"]["nrm.agency"] == "safe-house"
    assert in_trace[webhook["parent_id"]]["kind"] == "SpanKind.CONSUMER"
    assert headers["traceparent"].split("-")[2] == webhook["context"]["span_id"][2:]
