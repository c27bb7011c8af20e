"""End to end: on a running embedded bus the registry cosigns every node's checkpoints,
and oversight's `nrm audit verify --witness` accepts only checkpoints it cosigned."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts.audit_verification import verify_witness_key
from nrm.cli import main as nrm
from nrm.demo import play
from referral_router.audit.witnessing import Outcome
from tests.bus.running import RunningBus, running_bus

NODES = ("border-police", "child-protection", "safe-house", "nrm-authority")


def _verify(bus: RunningBus, tmp: Path, *extra: str) -> int:
    """As tests/bus/test_audit_on_bus.py, without --fresh: a checkpoint signed on
    demand for the verifier would not be cosigned yet."""
    anchor = tmp / "anchor.json"
    anchor.write_text(bus.bus.registry_config.anchor().model_dump_json())
    args = ["audit", "verify", "--anchor", str(anchor), "--registry", bus.bus.registry_url]
    args += ["--keystore", str(bus.bus.keychain.folder / "rapporteur.keystore")]
    args += ["--audience", "nrm-router:{agency}", "--state", str(tmp / "state.json")]
    args += ["--quiet", "--grace", "0", "--json", str(tmp / "verdict.json"), *extra]
    for agency in NODES:
        args += ["--node", f"{agency}={bus.bus.urls[agency]}"]
    os.environ["NRM_KEYSTORE_PASSPHRASE"] = bus.bus.keychain.passphrase
    return nrm(args)


def test_oversight_verifies_cosigned_checkpoints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_bus(tmp_path / "data") as bus:
        registry = bus.bus.registry_url
        body = httpx.get(f"{registry}/v1/witness/key", timeout=10).json()
        vkey = verify_witness_key(body, bus.bus.registry_config.anchor()).vkey()
        bus.run(play(bus.bus, io.StringIO()), timeout=120)
        bus.settle()
        for agency in NODES:  # the periodic cycle, now rather than in a minute
            witnessing = bus.bus.nodes[agency].witnessing
            assert witnessing is not None
            assert witnessing.witness_latest().outcome in (Outcome.COSIGNED, Outcome.ALREADY)

        verify = ["--witness", vkey, "--min-cosignatures"]
        assert _verify(bus, tmp_path, *verify, "1") == 0, capsys.readouterr()
        verdict = json.loads((tmp_path / "verdict.json").read_text())
        assert _verify(bus, tmp_path, *verify, "2") == 1  # there is one witness only

        def get(path: str) -> Any:  # one token a request: the registry refuses replays
            headers = {"Authorization": f"Bearer {bus.bus.operator_token()}"}
            return httpx.get(f"{registry}{path}", headers=headers, timeout=10).json()

        assert get("/v1/witness/flags") == {"items": []}
        for agency in NODES:
            held = get(f"/v1/witness/{agency}")
            latest = bus.bus.nodes[agency].audit
            assert latest is not None
            assert held["size"] == latest.latest_checkpoint().size > 0
    assert verdict["ok"] and [log["cosignatures"] for log in verdict["logs"]] == [1] * 4
