"""`nrm audit verify` and `nrm audit stats` end to end: two real nodes' oversight APIs on
uvicorn (127.0.0.1), a sealed oversight keystore, a signed directory file, exit codes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from contracts.agency_token import ReplayCache, TokenVerifier
from contracts.keystore import seal_keystore
from nrm.cli import main
from referral_router.api.errors import install_error_handlers
from referral_router.api.oversight import oversight_router
from tests.audit.conftest import T0, Agencies, Node, case_story, open_node, record


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # not the main thread
        pass


@dataclass
class Running:
    node: Node
    url: str


def serve(node: Node, agencies: Agencies) -> tuple[_Server, threading.Thread, str]:
    app = FastAPI()
    app.include_router(oversight_router)
    install_error_handlers(app)
    app.state.audit = node.audit
    app.state.check_token = TokenVerifier(
        lambda: agencies.directory, f"nrm-router:{node.agency}", replay_cache=ReplayCache()
    )
    app.state.directory = lambda: agencies.directory
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture
def bus(tmp_path: Path, agencies: Agencies) -> Iterator[dict[str, Running]]:
    stories = [case_story(f"case-{c:08d}", T0 + timedelta(days=c)) for c in range(3)]
    nodes = {a: open_node(tmp_path, a, agencies) for a in ("xa-police", "xa-ca")}
    for story in stories:
        record(nodes["xa-police"].store, story, "xa-police")
        mine = [e for e in story if "xa-ca" in (e.sender, *e.recipients)]
        record(nodes["xa-ca"].store, mine, "xa-ca")
    running, servers = {}, []
    for a, node in nodes.items():
        server, thread, url = serve(node, agencies)
        servers.append((server, thread))
        running[a] = Running(node, url)
    yield running
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)
    for node in nodes.values():
        node.audit.close()
        node.store.close()


@pytest.fixture
def files(tmp_path: Path, agencies: Agencies, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.setenv("NRM_KEYSTORE_PASSPHRASE", "correct horse")
    out = {
        "keystore": tmp_path / "rapporteur.keystore",
        "directory": tmp_path / "directory.json",
        "anchor": tmp_path / "anchor.json",
        "state": tmp_path / "audit-state.json",
    }
    out["keystore"].write_bytes(
        seal_keystore(agencies.keys["xa-rapporteur"], "correct horse", log2_n=10)
    )
    out["directory"].write_bytes(agencies.signed.to_bytes())
    out["anchor"].write_text(agencies.anchor.model_dump_json())
    return out


def verify(files: dict[str, Path], *nodes: str, extra: tuple[str, ...] = ()) -> list[str]:
    args = ["audit", "verify"]
    for n in nodes:
        args += ["--node", n]
    args += ["--anchor", str(files["anchor"]), "--directory", str(files["directory"])]
    args += ["--keystore", str(files["keystore"]), "--state", str(files["state"]), *extra]
    return args


def test_verify_two_nodes_then_detect_tampering(
    bus: dict[str, Running], files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    police, ca = bus["xa-police"], bus["xa-ca"]
    nodes = (f"xa-police={police.url}", f"xa-ca={ca.url}")
    assert main(verify(files, *nodes, extra=("--fresh",))) == 0
    out, err = capsys.readouterr()
    assert "verdict: OK" in out and "exchange between nodes complete" in out
    assert "xa-police: fetching leaves: 9/9" in err  # progress on stderr
    state = json.loads(files["state"].read_text())
    assert set(state["logs"]) == {"nrm.example/XA/xa-police", "nrm.example/XA/xa-ca"}

    # the police operator rewrites the screening it sent: its own log and CA's disagree
    import sqlite3

    assert police.node.db is not None
    with sqlite3.connect(police.node.db) as conn:
        (rowid, state_bytes) = conn.execute(
            "SELECT rowid, state FROM stored_events WHERE topic LIKE '%EnvelopeRecorded' "
            "ORDER BY rowid LIMIT 1 OFFSET 3"
        ).fetchone()
        data = json.loads(state_bytes)
        data["envelope"]["recipients"] = ["xa-shelter"]
        conn.execute(
            "UPDATE stored_events SET state = ? WHERE rowid = ?", (json.dumps(data).encode(), rowid)
        )
    event_id = data["envelope"]["id"]
    assert main(verify(files, *nodes)) == 1
    out, _ = capsys.readouterr()
    assert "verdict: FAILED" in out
    assert f"first bad leaf: nrm.example/XA/xa-police leaf 3 (event {event_id})" in out


def test_a_fork_is_named_as_a_checkpoint(
    tmp_path: Path,
    bus: dict[str, Running],
    files: dict[str, Path],
    agencies: Agencies,
    capsys: pytest.CaptureFixture[str],
) -> None:
    police = bus["xa-police"]
    assert main(verify(files, f"xa-police={police.url}", extra=("--fresh", "--quiet"))) == 0
    capsys.readouterr()
    # another log for the same origin and key, over a store with one event fewer + one other
    other_dir = tmp_path / "fork"
    other_dir.mkdir()
    fork = open_node(other_dir, "xa-police", agencies)
    same = [e.envelope for e in police.node.store.log(0, 100)]
    record(fork.store, same[:8], "xa-police")
    record(fork.store, case_story("case-ffffffff", T0)[:1], "xa-police")
    server, thread, url = serve(fork, agencies)
    try:
        code = main(verify(files, f"xa-police={url}", extra=("--fresh", "--quiet")))
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    out, _ = capsys.readouterr()
    assert code == 1
    assert "fork: two roots for size 9" in out
    assert "first bad checkpoint: nrm.example/XA/xa-police size 9" in out
    assert "first bad leaf: nrm.example/XA/xa-police leaf 8" in out  # from the seen leaves
    # the state still holds the first root: a fork never replaces what was seen
    assert main(verify(files, f"xa-police={police.url}", extra=("--quiet",))) == 0
    fork.audit.close()
    fork.store.close()


def test_usage_and_connection_errors_exit_2(
    bus: dict[str, Running],
    files: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    assert main(verify(files, "xa-police=http://127.0.0.1:9")) == 2
    assert "unreachable" in capsys.readouterr().err
    assert main(verify(files, "ftp://nowhere")) == 2
    police = bus["xa-police"]
    ca_keystore = files["keystore"].with_name("ca.keystore")
    args = verify(files, f"xa-police={police.url}")
    args[args.index("--keystore") + 1] = str(ca_keystore)
    assert main(args) == 2  # no such keystore file
    # without the other inputs, and no local bus in the data folder to default from
    assert main(["audit", "verify", "--node", police.url, "--data", str(tmp_path)]) == 2
    assert "no running bus" in capsys.readouterr().err


def test_forbidden_for_a_non_oversight_agency(
    bus: dict[str, Running],
    files: dict[str, Path],
    agencies: Agencies,
    capsys: pytest.CaptureFixture[str],
) -> None:
    files["keystore"].write_bytes(
        seal_keystore(agencies.keys["xa-shelter"], "correct horse", log2_n=10)
    )
    assert main(verify(files, f"xa-police={bus['xa-police'].url}", extra=("--fresh",))) == 2
    assert "refused (403)" in capsys.readouterr().err


def test_stats_writes_json_and_svg(
    tmp_path: Path, bus: dict[str, Running], files: dict[str, Path]
) -> None:
    out = tmp_path / "published"
    args = verify(files, f"xa-police={bus['xa-police'].url}", f"xa-ca={bus['xa-ca'].url}")
    args[1] = "stats"
    i = args.index("--state")
    del args[i : i + 2]
    args += ["--out", str(out), "--fresh", "--quiet"]
    assert main(args) == 0
    figures = json.loads((out / "statistics.json").read_text())
    assert figures["stages_by_month"]["screened"]["total"] == "<5"  # 3 cases: suppressed
    assert figures["events"] == 9
    assert (out / "stages.svg").read_text().startswith("<svg")
    assert (out / "screenings-by-month.svg").exists()
    assert "stages_by_month,screened,total,<5" in (out / "statistics.csv").read_text()
