"""Tokens against real nodes over HTTP, tried as an attacker would: a stolen token without
its key, a replayed proof, a proof for another request, a token for one node at another."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from contracts import dpop
from contracts.agency_token import issue_access_token
from contracts.directory import KeyUse
from contracts.endpoints import router_audience
from nrm.embedded import DEMO_AGENCIES
from tests.bus.running import RunningBus, running_bus

AGENCIES = tuple(a for a in DEMO_AGENCIES if a.id in ("border-police", "nrm-authority"))


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBus]:
    with running_bus(tmp_path_factory.mktemp("tokens"), agencies=AGENCIES) as b:
        yield b


def access_token(bus: RunningBus, agency: str, key: dpop.ProofKey, node: str | None = None) -> str:
    pair = bus.bus.agency_keys[agency].current(KeyUse.SIGNING)
    return issue_access_token(
        agency,
        pair.key_id,
        pair.ed25519(),
        router_audience(node or agency),
        dpop.thumbprint(key),
    )


def get(url: str, token: str, proof: str | None, scheme: str = "DPoP") -> httpx.Response:
    headers = {"Authorization": f"{scheme} {token}"}
    if proof is not None:
        headers["DPoP"] = proof
    return httpx.get(url, headers=headers, timeout=30)


def proof_for(key: dpop.ProofKey, method: str, url: str, token: str) -> str:
    return dpop.make_proof(key, method, url, access_token=token, now=datetime.now(UTC))


def test_a_bound_token_serves_many_requests_each_with_a_new_proof(bus: RunningBus) -> None:
    key = dpop.generate_key()
    token = access_token(bus, "border-police", key)
    url = f"{bus.bus.urls['border-police']}/v1/inbox"
    for _ in range(3):
        r = get(url, token, proof_for(key, "GET", url, token))
        assert r.status_code == 200, r.text


def test_attacks_on_bound_tokens_are_refused_with_a_dpop_challenge(bus: RunningBus) -> None:
    key, thief = dpop.generate_key(), dpop.generate_key("ES256")
    token = access_token(bus, "border-police", key)
    url = f"{bus.bus.urls['border-police']}/v1/inbox"
    attempts = {
        "DPoP proof header missing": get(url, token, None),
        "not bound to": get(url, token, proof_for(thief, "GET", url, token)),
        "needs 'Authorization: DPoP'": get(url, token, None, scheme="Bearer"),
        "is for method 'POST'": get(url, token, proof_for(key, "POST", url, token)),
        "/v1/log', not": get(url, token, proof_for(key, "GET", url.replace("inbox", "log"), token)),
    }
    for reason, r in attempts.items():
        assert r.status_code == 401, (reason, r.text)
        assert r.json()["error"] == "unauthenticated" and reason in r.json()["detail"], r.text
        assert r.headers["WWW-Authenticate"].startswith("DPoP")
    replayed = proof_for(key, "GET", url, token)
    assert get(url, token, replayed).status_code == 200
    again = get(url, token, replayed)
    assert again.status_code == 401 and "replayed" in again.json()["detail"]
    assert 'error="invalid_dpop_proof"' in again.headers["WWW-Authenticate"]


def test_a_token_for_one_node_fails_at_another(bus: RunningBus) -> None:
    key = dpop.generate_key()
    token = access_token(bus, "border-police", key)
    other = f"{bus.bus.urls['nrm-authority']}/v1/inbox"
    r = get(other, token, proof_for(key, "GET", other, token))
    assert r.status_code == 401 and "audience" in r.json()["detail"]
    # and a token border-police signs for nrm-authority's node is its identity, not the
    # node's own agency: the node refuses to serve another agency's systems
    aimed = access_token(bus, "border-police", key, node="nrm-authority")
    r = get(other, aimed, proof_for(key, "GET", other, aimed))
    assert r.status_code == 403 and "serves nrm-authority" in r.json()["detail"]


def test_one_time_bearer_tokens_still_work_once(bus: RunningBus) -> None:
    url = f"{bus.bus.urls['border-police']}/v1/inbox"
    token = bus.bus.token("border-police")
    assert get(url, token, None, scheme="Bearer").status_code == 200
    r = get(url, token, None, scheme="Bearer")
    assert r.status_code == 401 and "token replayed" in r.json()["detail"]
    r = get(url, token, proof_for(dpop.generate_key(), "GET", url, token))
    assert r.status_code == 401 and "not a DPoP-bound access token" in r.json()["detail"]
