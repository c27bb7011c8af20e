"""The oversight API with real HTTP requests (httpx through the ASGI app): who may call
it (401/403), what it serves, and precise 4xx for bad input."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from contracts.agency_token import ReplayCache, TokenVerifier
from contracts.audit_verification import LeafEntry, node_verifiers, verify_log
from contracts.transparency import open_checkpoint, verify_consistency, verify_inclusion
from referral_router.api.errors import install_error_handlers
from referral_router.api.oversight import oversight_router
from tests.audit.conftest import T0, Agencies, Node, case_story, record
from tests.problems import assert_problem

AUDIENCE = "router:xa-police"


def make_app(node: Node, agencies: Agencies) -> FastAPI:
    app = FastAPI()
    app.include_router(oversight_router)
    install_error_handlers(app)
    app.state.audit = node.audit
    app.state.check_token = TokenVerifier(
        lambda: agencies.directory, AUDIENCE, replay_cache=ReplayCache()
    )
    app.state.directory = lambda: agencies.directory
    return app


@pytest.fixture
def api(police: Node, agencies: Agencies) -> Iterator[TestClient]:
    envs = [
        *case_story("case-aaaaaaaa", T0),
        *case_story("case-bbbbbbbb", T0 + timedelta(days=2)),
    ]
    record(police.store, envs, "xa-police")
    with TestClient(make_app(police, agencies)) as client:
        yield client


def auth(agencies: Agencies, agency: str = "xa-rapporteur", audience: str = AUDIENCE) -> dict:
    return {"Authorization": f"Bearer {agencies.token(agency, audience)}"}


def test_only_oversight_bodies_and_the_node_itself(api: TestClient, agencies: Agencies) -> None:
    r = api.get("/v1/audit/decisions")
    assert_problem(r, "unauthenticated")
    r = api.get("/v1/audit/decisions", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401
    r = api.get("/v1/audit/decisions", headers=auth(agencies, audience="router:xa-ca"))
    assert r.status_code == 401 and "audience" in r.json()["detail"]
    r = api.get("/v1/audit/decisions", headers=auth(agencies, "xa-shelter"))
    assert_problem(r, "forbidden")
    assert api.get("/v1/audit/decisions", headers=auth(agencies)).status_code == 200
    assert api.get("/v1/audit/decisions", headers=auth(agencies, "xa-police")).status_code == 200
    h = auth(agencies)
    assert api.get("/v1/audit/decisions", headers=h).status_code == 200
    assert api.get("/v1/audit/decisions", headers=h).status_code == 401  # replayed token


def test_checkpoints_proofs_and_leaves_verify(api: TestClient, agencies: Agencies) -> None:
    r = api.get("/v1/audit/checkpoint", headers=auth(agencies))
    assert_problem(r, "not-found")
    r = api.post("/v1/audit/checkpoints", headers=auth(agencies))
    assert r.status_code == 201 and r.json()["size"] == 6
    r = api.get("/v1/audit/checkpoint", headers=auth(agencies))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    note = r.text
    cp = open_checkpoint(note, node_verifiers(agencies.directory, "nrm.example/XA/xa-police")[0])
    leaves = api.get("/v1/audit/leaves", params={"limit": 4}, headers=auth(agencies)).json()
    assert leaves["size"] == 6 and leaves["next"] == 4 and len(leaves["items"]) == 4
    rest = api.get("/v1/audit/leaves", params={"start": 4}, headers=auth(agencies)).json()
    assert rest["next"] is None
    entries = [LeafEntry.from_json(i) for i in leaves["items"] + rest["items"]]
    assert all(e.envelope and e.envelope["sealed"] for e in entries)  # ciphertext served
    report = verify_log([note], entries, {}, agencies.directory)
    assert report.ok
    event = entries[4].event_id
    p = api.get("/v1/audit/inclusion", params={"event_id": event}, headers=auth(agencies)).json()
    proof = [bytes.fromhex(h) for h in p["proof"]]
    verify_inclusion(bytes.fromhex(p["leaf_hash"]), p["index"], p["size"], proof, cp.root)
    c = api.get("/v1/audit/consistency", params={"old": 2, "new": 6}, headers=auth(agencies))
    assert c.status_code == 200 and len(c.json()["proof"]) == 2
    history = api.get("/v1/audit/checkpoints", headers=auth(agencies)).json()
    assert history["total"] == 1 and history["items"][0]["note"] == note
    d = api.get("/v1/audit/decisions", headers=auth(agencies)).json()["items"]
    assert [(x["leaf"], x["agency"], x["officer"]) for x in d] == [
        (2, "xa-ca", "ca-4"),
        (5, "xa-ca", "ca-4"),
    ]


def test_consistency_proof_links_two_checkpoints(
    api: TestClient, agencies: Agencies, police: Node
) -> None:
    first = api.post("/v1/audit/checkpoints", headers=auth(agencies)).json()
    record(police.store, case_story("case-cccccccc", T0), "xa-police")
    second = api.post("/v1/audit/checkpoints", headers=auth(agencies)).json()
    r = api.get(
        "/v1/audit/consistency",
        params={"old": first["size"], "new": second["size"]},
        headers=auth(agencies),
    ).json()
    verify_consistency(
        first["size"],
        second["size"],
        bytes.fromhex(first["root"]),
        bytes.fromhex(second["root"]),
        [bytes.fromhex(h) for h in r["proof"]],
    )


@pytest.mark.parametrize(
    ("path", "params", "error"),
    [
        ("/v1/audit/inclusion", {"event_id": "00000000-0000-0000-0000-000000000000"}, "not-found"),
        ("/v1/audit/inclusion", {}, "schema-violation"),
        ("/v1/audit/inclusion", {"event_id": "x'; drop"}, "schema-violation"),
        ("/v1/audit/consistency", {"old": 4, "new": 2}, "out-of-range"),
        ("/v1/audit/consistency", {"old": 1, "new": 99}, "out-of-range"),
        ("/v1/audit/consistency", {"old": -1, "new": 2}, "schema-violation"),
        ("/v1/audit/consistency", {"old": "a", "new": 2}, "schema-violation"),
        ("/v1/audit/leaves", {"start": 7}, "out-of-range"),
        ("/v1/audit/leaves", {"limit": 0}, "schema-violation"),
        ("/v1/audit/leaves", {"limit": 100000}, "schema-violation"),
        ("/v1/audit/checkpoints", {"start": -3}, "schema-violation"),
        ("/v1/audit/decisions", {"start": 2**70}, "schema-violation"),
    ],
)
def test_bad_input_gets_a_precise_4xx(
    api: TestClient, agencies: Agencies, path: str, params: dict, error: str
) -> None:
    api.post("/v1/audit/checkpoints", headers=auth(agencies))
    r = api.get(path, params=params, headers=auth(agencies))
    found = assert_problem(r, error)
    if error == "schema-violation":
        assert found.errors and found.errors[0].loc[0] == "query", r.text


def test_inclusion_at_a_size_before_the_event(
    api: TestClient, agencies: Agencies, police: Node
) -> None:
    police.audit.catch_up()
    last = police.audit.leaves(5, 1)[0].event_id
    r = api.get("/v1/audit/inclusion", params={"event_id": last, "size": 3}, headers=auth(agencies))
    assert r.status_code == 422 and "leaf 5" in r.json()["detail"]
