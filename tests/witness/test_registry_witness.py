"""The registry as witness: it cosigns a node log only while it grows consistently, and
flags (on record, as registry events) a fork, a shrinking log or an inconsistent proof."""

from __future__ import annotations

import base64

from fastapi.testclient import TestClient

from contracts.audit_verification import verify_witness_key
from contracts.directory import KeyUse
from contracts.keystore import generate_agency_keys
from contracts.transparency import NoteSigner, verify_cosignature
from contracts.transparency.checkpoint import parse_note
from registry import create_app
from registry.witness import WitnessedLog
from tests.problems import assert_problem
from tests.registry.conftest import Bus, key_input
from tests.witness.conftest import NodeLog, origin_of, submit, submit_log


def _witnessed(bus: Bus, log: NodeLog) -> dict:
    r = bus.client.get(f"/v1/witness/{log.party.id}", headers=log.party.auth())
    assert r.status_code == 200, r.text
    return r.json()


def _flags(bus: Bus, log: NodeLog) -> list[dict]:
    r = bus.client.get("/v1/witness/flags", headers=bus.operator.auth())
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_cosigns_a_growing_log(bus: Bus, node: NodeLog) -> None:
    key = verify_witness_key(bus.client.get("/v1/witness/key").json(), bus.config.anchor())
    assert key.name == "witness.nrm.example/XA"
    serial = bus.registry.directory().serial
    assert _witnessed(bus, node)["size"] is None  # never seen: first sight is on trust

    for size in (3, 7, 8, 21):
        r = submit_log(bus.client, node.grow(size))
        assert r.status_code == 200, r.text
        cosigned = r.json()["note"]
        assert parse_note(cosigned).text == parse_note(node.note()).text
        assert verify_cosignature(cosigned, key) == bus.clock().timestamp() // 1
        state = _witnessed(bus, node)
        assert (state["size"], state["root"]) == (size, base64.b64encode(node.tree.root()).decode())

    stored = bus.stored()
    assert submit_log(bus.client, node).status_code == 200  # the same checkpoint again
    assert bus.stored() == stored  # cosigned anew, nothing new to record
    assert bus.registry.directory().serial == serial  # witnessing never re-signs the directory
    events = [e["event"] for e in bus.registry.history(limit=1000)]
    assert events.count("WitnessedLog.Witnessed") == 3
    assert _flags(bus, node) == []


def test_a_fork_is_flagged_with_both_notes(bus: Bus, node: NodeLog) -> None:
    assert submit_log(bus.client, node.grow(5)).status_code == 200
    other = NodeLog(node.party, seed="b").grow(5)  # another log under the same name and key

    r = submit(bus.client, node.party, other.note(), 5, [])
    found = assert_problem(r, "checkpoint-flagged", rule="R7")
    assert found.detail.startswith("fork: ") and "two roots for size 5" in found.detail
    (flag,) = _flags(bus, node)
    assert flag["agency_id"] == node.party.id and flag["origin"] == origin_of(node.party.id)
    assert flag["note"] == other.note()  # the evidence: two notes the node signed
    assert parse_note(flag["witnessed_note"]).text == parse_note(node.note()).text
    assert _witnessed(bus, node)["root"] == base64.b64encode(node.tree.root()).decode()

    stored = bus.stored()
    assert_problem(
        submit(bus.client, node.party, other.note(), 5, []), "checkpoint-flagged", rule="R7"
    )
    assert bus.stored() == stored and len(_flags(bus, node)) == 1  # one flag, not one a try
    # The honest log still grows and is cosigned; the flag stays on record.
    assert submit_log(bus.client, node.grow(9)).status_code == 200
    assert len(_flags(bus, node)) == 1


def test_a_shrinking_log_is_flagged(bus: Bus, node: NodeLog) -> None:
    assert submit_log(bus.client, node.grow(8)).status_code == 200
    r = submit(bus.client, node.party, node.note(4), 4, [])
    assert assert_problem(r, "checkpoint-flagged", rule="R7").detail.startswith("shrinking log: ")
    (flag,) = _flags(bus, node)
    assert flag["reason"] == "shrinking log" and flag["witnessed_size"] == 8
    assert _witnessed(bus, node)["size"] == 8


def test_an_inconsistent_proof_is_flagged(bus: Bus, node: NodeLog) -> None:
    assert submit_log(bus.client, node.grow(4)).status_code == 200
    rewritten = NodeLog(node.party, seed="b").grow(8)  # history rewritten, then grown
    r = submit(bus.client, node.party, rewritten.note(), 4, rewritten.proof(4))
    assert assert_problem(r, "checkpoint-flagged", rule="R7").detail.startswith("inconsistent: ")
    assert [f["reason"] for f in _flags(bus, node)] == ["inconsistent"]
    assert _witnessed(bus, node)["size"] == 4


def test_a_stale_proof_is_a_conflict_not_a_flag(bus: Bus, node: NodeLog) -> None:
    assert submit_log(bus.client, node.grow(4)).status_code == 200
    node.grow(8)
    r = submit(bus.client, node.party, node.note(), 2, node.proof(2))
    assert "the witness holds size 4" in assert_problem(r, "stale-size").detail
    assert _flags(bus, node) == []
    assert submit_log(bus.client, node).status_code == 200  # retried from size 4


def test_a_bad_signature_is_refused_and_not_recorded(bus: Bus, node: NodeLog) -> None:
    node.grow(6)
    stranger = generate_agency_keys("xa-police").current(KeyUse.SIGNING).ed25519()
    forged = node.note(signer=NoteSigner(node.origin, stranger))  # right name, wrong key
    stored = bus.stored()
    r = submit(bus.client, node.party, forged)
    assert assert_problem(r, "checkpoint-refused").detail.startswith("bad signature: ")
    tampered = node.note().replace("\n6\n", "\n7\n")  # the signed text changed
    assert_problem(submit(bus.client, node.party, tampered), "checkpoint-refused")
    assert_problem(submit(bus.client, node.party, "not a note"), "malformed-checkpoint")
    assert bus.stored() == stored
    assert _witnessed(bus, node)["size"] is None and _flags(bus, node) == []


def test_only_the_agency_submits_its_own_log(bus: Bus, node: NodeLog) -> None:
    other = bus.party("xa-shelter")
    bus.register(other, ["service-provider"])
    body = {"note": node.grow(2).note(), "old_size": 0, "consistency_proof": []}
    r = bus.client.post(f"/v1/witness/{node.party.id}", json=body, headers=other.auth())
    assert_problem(r, "forbidden")
    assert_problem(bus.client.post(f"/v1/witness/{node.party.id}", json=body), "unauthenticated")
    # Its own log under another agency's origin: not signed as that origin's log.
    theirs = NodeLog(other).grow(2)
    assert_problem(submit(bus.client, node.party, theirs.note()), "checkpoint-refused")


def test_state_survives_a_registry_restart(bus: Bus, node: NodeLog) -> None:
    assert submit_log(bus.client, node.grow(5)).status_code == 200
    fork = NodeLog(node.party, seed="b").grow(5)
    assert submit(bus.client, node.party, fork.note(), 5).status_code == 409
    before = _witnessed(bus, node)
    bus.registry.close()

    reopened = bus.reopen()  # rebuilt from its event store alone
    with TestClient(create_app(reopened)) as client:
        bus.client, bus.registry = client, reopened
        assert _witnessed(bus, node) == before
        assert [f["reason"] for f in _flags(bus, node)] == ["fork"]
        key = verify_witness_key(client.get("/v1/witness/key").json(), bus.config.anchor())
        # The same derived key after the restart: old cosignatures still verify.
        assert verify_cosignature(before["note"], key) > 0
        assert submit(client, node.party, fork.note(), 5).status_code == 409
        r = submit_log(client, node.grow(11))
        assert r.status_code == 200
        assert reopened.repository.get(WitnessedLog.create_id(node.origin)).size == 11


def test_a_key_rotation_keeps_the_log_witnessed(bus: Bus, node: NodeLog) -> None:
    """The log's state is per origin, not per key: the new key continues the same log."""
    assert submit_log(bus.client, node.grow(3)).status_code == 200
    bus.clock.advance(60)
    node.party.rotate()
    body = {"keys": [key_input(node.party.keys, use) for use in KeyUse]}
    path = f"/v1/agencies/{node.party.id}/keys"
    r = bus.client.post(path, json=body, headers=bus.operator.auth())
    assert r.status_code == 200, r.text
    assert submit_log(bus.client, node.grow(6)).status_code == 200
    assert _witnessed(bus, node)["size"] == 6
