"""Oversight audits a running bus with the independent verifier: every node's log verifies,
what one node sent is in the other's log, and erasure leaves every log verifiable."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from nrm.cli import main as nrm
from nrm.demo import play
from tests.bus.running import RunningBus, running_bus

NODES = ("border-police", "child-protection", "safe-house", "nrm-authority")


def _verify(bus: RunningBus, tmp: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> int:
    anchor = tmp / "anchor.json"
    anchor.write_text(bus.bus.registry_config.anchor().model_dump_json())
    args = [
        "audit",
        "verify",
        "--anchor",
        str(anchor),
        "--registry",
        bus.bus.registry_url,
        "--keystore",
        str(bus.bus.keychain.folder / "rapporteur.keystore"),
        "--audience",
        "nrm-router:{agency}",
        "--state",
        str(tmp / "state.json"),
        "--fresh",
        "--quiet",
        "--grace",
        "0",
        "--json",
        str(tmp / "verdict.json"),
        *extra,
    ]
    for agency in NODES:
        args += ["--node", f"{agency}={bus.bus.urls[agency]}"]
    os.environ["NRM_KEYSTORE_PASSPHRASE"] = bus.bus.keychain.passphrase
    return nrm(args)


def test_oversight_verifies_every_log_and_the_exchange(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_bus(tmp_path / "data") as bus:
        case = bus.run(play(bus.bus, io.StringIO()), timeout=120)
        assert _verify(bus, tmp_path, capsys) == 0, capsys.readouterr()
        first = json.loads((tmp_path / "verdict.json").read_text())
        # Erasure: the keys go, the log stays whole and consistent with what was seen.
        with bus.client("nrm-authority") as c:
            r = c.post(
                f"/v1/cases/{case}/events",
                json={
                    "type": "case.erasure-ordered",
                    "recipients": ["child-protection"],
                    "payload": {"legal_basis": "court-order", "ordered_by_officer": "ia-1"},
                },
            )
        assert r.status_code == 201
        bus.settle()
        assert _verify(bus, tmp_path, capsys) == 0, capsys.readouterr()
        second = json.loads((tmp_path / "verdict.json").read_text())
    assert first != second  # the logs grew, and the growth was proven consistent
