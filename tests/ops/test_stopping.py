"""Clean stops: `nrm up` and every `serve` command, on SIGTERM and SIGINT, as a service
manager or a container runtime would stop them. Clean means exit code 0, every SQLite
store closed (no WAL or shared-memory file left), no child process left behind, and the
address book of a stopped bus removed."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nrm.embedded import free_port
from tests.faults.conftest import RegistryOnly, fresh_agencies
from tests.quickstart.running_up import BIN, ROOT, NrmUp, alive, user_env


def leftovers(folder: Path) -> list[str]:
    """SQLite files a clean close removes (WAL checkpointed into the database)."""
    return sorted(str(p) for p in folder.rglob("*") if p.name.endswith(("-wal", "-shm")))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_nrm_up_stops_cleanly(sig: signal.Signals, tmp_path: Path) -> None:
    up = NrmUp(tmp_path).start()
    assert (up.country / "endpoints.json").exists()
    assert leftovers(up.folder)  # the stores are open while the bus runs
    children = up.children()
    assert up.signal(sig) == 0, up.stderr()
    assert up.stdout().rstrip().endswith("stopped")
    assert leftovers(up.folder) == []
    assert not (up.country / "endpoints.json").exists()
    assert (up.country / "anchor.json").exists()  # public and stable: kept for auditors
    assert not [pid for pid in children if alive(pid)]


@pytest.mark.kafka
def test_nrm_up_with_its_own_broker_stops_the_broker_on_sigterm(tmp_path: Path) -> None:
    """`--kafka auto`: the broker is a child JVM; SIGTERM must stop it, not leave it to a
    parent-death signal. The Kafka client's INFO lines must not bury the URLs."""
    up = NrmUp(tmp_path, args=("--port", "0", "--kafka", "auto")).start(timeout=300)
    java = [pid for pid in up.children() if "java" in Path(f"/proc/{pid}/cmdline").read_text()]
    assert len(java) == 1, up.children()
    assert "kafka     127.0.0.1:" in up.stdout()
    assert [line for line in up.stderr().splitlines() if " INFO " in line] == []
    assert up.signal(signal.SIGTERM, timeout=120) == 0, up.stderr()
    assert not alive(java[0])
    assert leftovers(up.folder / ".nrm-data" / "XA") == []


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryOnly]:
    registry = RegistryOnly(tmp_path / "country", fresh_agencies())
    try:
        yield registry
    finally:
        registry.stop()


def serve_then_stop(
    command: list[str], env: dict[str, str], ready: str, stores: Path, sig: signal.Signals
) -> str:
    """Start `nrm COMMAND`, wait until `ready` answers, check its stores are open in
    `stores`, send `sig`: it must exit 0 with every store closed. Returns its output."""
    log = stores.parent / f"{command[0]}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "nrm"), *command], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 90
        while not _answers(ready):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert leftovers(stores)  # open while it serves
        proc.send_signal(sig)
        assert proc.wait(60) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert leftovers(stores) == []
    return log.read_text()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


def test_node_serve_stops_cleanly_on_sigterm(registry: RegistryOnly, tmp_path: Path) -> None:
    agency = registry.bus.agencies[0].id
    keychain = registry.bus.keychain
    keychain.master_key(agency)
    home = tmp_path / "node"
    port = free_port()
    env = user_env(
        NRM_AGENCY_ID=agency,
        NRM_COUNTRY="XA",
        NRM_TRANSPORT=f"sqlite:{tmp_path / 'bus.db'}",
        NRM_REGISTRY_URL=registry.bus.registry_url,
        NRM_TRUST_ANCHOR=str(registry.anchor),
        NRM_KEYSTORE=str(keychain.path(agency)),
        NRM_KEYSTORE_PASSPHRASE=keychain.passphrase,
        NRM_MASTER_KEY_FILE=str(keychain.folder / f"{agency}.master-key"),
        NRM_DATA_DIR=str(home),
        NRM_PORT=str(port),
    )
    ready = f"http://127.0.0.1:{port}/readyz"
    serve_then_stop(["node", "serve"], env, ready, home, signal.SIGTERM)
    assert list(tmp_path.glob("bus.db-*")) == []  # its transport, closed too


def test_notifier_serve_stops_cleanly_on_sigterm(registry: RegistryOnly, tmp_path: Path) -> None:
    agency = registry.bus.agencies[0].id
    keychain = registry.bus.keychain
    port = free_port()
    db = tmp_path / "notifier" / "notifier.db"
    db.parent.mkdir()
    env = user_env(NRM_NOTIFIER_PASSPHRASE=keychain.passphrase)
    identity = keychain.path(registry.bus.notifier_keys.agency_id)  # its own, no agency's
    command = [
        "notifier", "serve", "--identity", str(identity),
        "--agency", f"{agency}@http://127.0.0.1:9",
        "--anchor", str(registry.anchor), "--registry", registry.bus.registry_url,
        "--db", str(db), "--port", str(port),
    ]  # fmt: skip
    serve_then_stop(command, env, f"http://127.0.0.1:{port}/healthz", db.parent, signal.SIGTERM)


def test_registry_serve_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    from nrm.embedded import Keychain

    keychain = Keychain(tmp_path / "secrets")
    keychain.keys("registry-signing"), keychain.keys("operator")
    port = free_port()
    db = tmp_path / "registry" / "registry.db"
    env = user_env(NRM_REGISTRY_PASSPHRASE=keychain.passphrase)
    command = [
        "registry", "serve", "--keystore", str(keychain.path("registry-signing")),
        "--operator-keystore", str(keychain.path("operator")), "--country", "XA",
        "--db", str(db), "--port", str(port), "--log-format", "json",
    ]  # fmt: skip
    ready = f"http://127.0.0.1:{port}/v1/directory"
    output = serve_then_stop(command, env, ready, db.parent, signal.SIGINT)
    assert "Traceback" not in output


def test_the_bus_process_is_the_only_one_stopping(tmp_path: Path) -> None:
    """A second signal while the bus stops does not cut the stop short."""
    up = NrmUp(tmp_path).start()
    assert up.proc is not None
    up.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    up.proc.send_signal(signal.SIGTERM)
    assert up.proc.wait(90) == 0, up.stderr()
    assert leftovers(up.folder) == []
