"""Oversight audits a running bus with the independent verifier: every node's log verifies,
what one node sent is in the other's log, and erasure leaves every log verifiable."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from nrm.cli import main as nrm
from nrm.demo import play
from tests.bus.running import Running

NODES = ("border-police", "child-protection", "safe-house", "nrm-authority")


def _verify(bus: Running, tmp: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> int:
    anchor = tmp / "anchor.json"
    anchor.write_text(bus.bus.anchor().model_dump_json())
    keystore, passphrase = bus.bus.keystore("rapporteur")
    args = [
        "audit",
        "verify",
        "--anchor",
        str(anchor),
        "--registry",
        bus.bus.registry_url,
        "--keystore",
        str(keystore),
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
    trust = getattr(bus.bus, "trust_file", None)  # the process topology serves HTTPS
    with pytest.MonkeyPatch.context() as env:
        env.setenv("NRM_KEYSTORE_PASSPHRASE", passphrase)
        if trust:
            env.setenv("NRM_CA_FILE", trust)
        return nrm(args)


def test_oversight_verifies_every_log_and_the_exchange(
    running: Running, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bus = running
    case = bus.run(play(bus.bus, io.StringIO()), timeout=180)
    assert _verify(bus, tmp_path, capsys) == 0, capsys.readouterr()
    first = json.loads((tmp_path / "verdict.json").read_text())
    # Erasure: the keys go, the log stays whole and consistent with what was seen.
    r = bus.order_erasure(case, "court-order", "ia-1")
    assert r.status_code == 201
    bus.settle()
    assert _verify(bus, tmp_path, capsys) == 0, capsys.readouterr()
    second = json.loads((tmp_path / "verdict.json").read_text())
    assert first != second  # the logs grew, and the growth was proven consistent
