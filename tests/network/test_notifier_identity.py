"""The notifier acts as itself, with scoped tokens, and can open no case.

On a running embedded bus: the notifier's identity reads a node's log (clear parts) and
appends an escalation, and nothing else: not the case view, not the inbox, not the dead
letters, not the audit log, not any other event type. A token claiming to be the
notifier's but signed with another key is refused. Subscription secrets are sealed to the
notifier's key, so the notifier signs webhooks without holding any agency's keystore,
and an agency's own keys do not open them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from contracts.agency_token import issue_token
from contracts.directory import KeyUse
from contracts.keystore import AgencyKeys, generate_agency_keys
from notifier.subscriptions import SecretUnavailable, open_secret
from nrm.embedded import DEMO_AGENCIES, router_audience
from tests.bus.running import RunningBus, running_bus
from tests.faults.conftest import ADULT


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBus]:
    agencies = tuple(a for a in DEMO_AGENCIES if a.id in ("border-police", "nrm-authority"))
    with running_bus(tmp_path_factory.mktemp("notifier-id"), agencies=agencies) as rb:
        yield rb


def _as(keys: AgencyKeys, node: str, scope: str | None) -> dict[str, str]:
    pair = keys.current(KeyUse.SIGNING)
    token = issue_token(
        keys.agency_id, pair.key_id, pair.ed25519(), router_audience(node), scope=scope
    )
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def case(bus: RunningBus) -> str:
    with bus.client("border-police") as police:
        r = police.post("/v1/cases", json={"recipients": ["nrm-authority"], "payload": ADULT})
    assert r.status_code == 201, r.text
    return str(r.json()["case"])


def test_the_notifier_reads_the_log_and_escalates_as_itself(bus: RunningBus, case: str) -> None:
    notifier = bus.bus.notifier_keys
    assert notifier.agency_id == "notifier-xa"
    url = bus.bus.urls["border-police"]
    with httpx.Client(base_url=url, timeout=30) as client:
        log = client.get("/v1/log", headers=_as(notifier, "border-police", "log:read"))
        assert log.status_code == 200
        assert {"full_name", "payload", "sealed"}.isdisjoint(log.json()["items"][0])
        body = {
            "type": "case.escalated",
            "recipients": ["nrm-authority"],
            "payload": {
                "deadline": "referral-answer",
                "about_event_id": log.json()["items"][0]["event_id"],
                "due": "2026-01-01T00:00:00+00:00",
            },
        }
        ok = client.post(
            f"/v1/cases/{case}/events",
            json=body,
            headers=_as(notifier, "border-police", "escalate"),
        )
        assert ok.status_code == 201, ok.text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/cases/{case}"),
        ("GET", "/v1/inbox"),
        ("GET", "/v1/dead-letters"),
        ("GET", "/v1/audit/checkpoint"),
    ],
)
def test_the_notifier_cannot_open_a_case_or_read_anything_else(
    bus: RunningBus, case: str, method: str, path: str
) -> None:
    notifier = bus.bus.notifier_keys
    with httpx.Client(base_url=bus.bus.urls["border-police"], timeout=30) as client:
        for scope in ("log:read escalate", None):
            r = client.request(
                method, path.format(case=case), headers=_as(notifier, "border-police", scope)
            )
            assert r.status_code in (401, 403), (path, scope, r.status_code, r.text)


def test_scopes_are_enforced_and_only_escalations_may_be_appended(
    bus: RunningBus, case: str
) -> None:
    notifier = bus.bus.notifier_keys
    referral = {
        "type": "referral.requested",
        "recipients": ["nrm-authority"],
        "payload": {
            "referral_id": "r-1",
            "to_agency": "nrm-authority",
            "service": "identification",
        },
    }
    with httpx.Client(base_url=bus.bus.urls["border-police"], timeout=30) as client:
        no_scope = client.get("/v1/log", headers=_as(notifier, "border-police", "escalate"))
        assert no_scope.status_code == 403
        assert "log:read" in no_scope.text
        other = client.post(
            f"/v1/cases/{case}/events",
            json=referral,
            headers=_as(notifier, "border-police", "escalate"),
        )
        assert other.status_code == 403, other.text
        assert "the notifier may append case.escalated" in other.text
        # an erasure order: only under erase:retention, and only on retention-expired
        erasure = {
            "type": "case.erasure-ordered",
            "recipients": ["nrm-authority"],
            "payload": {"legal_basis": "erasure-request", "ordered_by_officer": "system:retention"},
        }
        for scope, basis in (("escalate", "retention-expired"), ("erase:retention", None)):
            body = erasure
            if basis is not None:
                body = {**erasure, "payload": {**erasure["payload"], "legal_basis": basis}}
            r = client.post(
                f"/v1/cases/{case}/events", json=body, headers=_as(notifier, "border-police", scope)
            )
            assert r.status_code == 403, (scope, r.text)
        retention_only = client.post(
            f"/v1/cases/{case}/events",
            json=referral,
            headers=_as(notifier, "border-police", "erase:retention"),
        )
        assert retention_only.status_code == 403
        read_only = client.post(
            f"/v1/cases/{case}/events",
            json=referral,
            headers=_as(notifier, "border-police", "log:read"),
        )
        assert read_only.status_code == 403


def test_a_forged_notifier_token_is_refused(bus: RunningBus) -> None:
    impostor = generate_agency_keys("notifier-xa")  # the right name, another key
    with httpx.Client(base_url=bus.bus.urls["border-police"], timeout=30) as client:
        r = client.get("/v1/log", headers=_as(impostor, "border-police", "log:read"))
    assert r.status_code == 401


def test_subscription_secrets_open_with_the_notifiers_key_only(bus: RunningBus) -> None:
    created: dict[str, Any] = bus.run(
        bus.bus.subscribe("border-police", "https://hooks.example/x", ["case.screened"])
    )
    with httpx.Client(base_url=bus.bus.registry_url, timeout=30) as client:
        listing = client.get(
            "/v1/agencies/border-police/subscriptions",
            headers={
                "Authorization": "Bearer "
                + issue_token(
                    bus.bus.notifier_keys.agency_id,
                    bus.bus.notifier_keys.current(KeyUse.SIGNING).key_id,
                    bus.bus.notifier_keys.current(KeyUse.SIGNING).ed25519(),
                    bus.bus.registry_config.token_audience,
                    scope="subscriptions:read",
                )
            },
        )
    assert listing.status_code == 200, listing.text
    sealed = next(s for s in listing.json()["items"] if s["id"] == created["id"])["secret_sealed"]
    secret = open_secret(sealed, bus.bus.notifier_keys, "border-police", created["id"])
    assert secret == created["secret"]
    with pytest.raises(SecretUnavailable):
        open_secret(sealed, bus.bus.agency_keys["border-police"], "border-police", created["id"])
    assert bus.bus.notifier is not None
    assert not any(hasattr(a, "keys") for a in bus.bus.notifier.agencies.values())
