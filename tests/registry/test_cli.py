"""The CLI against a real registry served by uvicorn: init, register, rotate, suspend."""

from __future__ import annotations

import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from contracts.directory import KeyUse
from contracts.keystore import open_keystore, read_public
from nrm.cli import main
from registry import Registry, RegistryConfig, create_app

PASS = {"NRM_KEYSTORE_PASSPHRASE": "agency-secret", "NRM_OPERATOR_PASSPHRASE": "op-secret"}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NRM_KEYSTORE_SCRYPT_LOG2_N", "10")
    for k, v in PASS.items():
        monkeypatch.setenv(k, v)


def _init(path: Path, agency: str, passphrase_env: str = "NRM_KEYSTORE_PASSPHRASE") -> None:
    args = ["agency", "init", "--agency", agency, "--keystore", str(path)]
    assert main([*args, "--passphrase-env", passphrase_env]) == 0


@pytest.fixture
def served(tmp_path: Path, env: None) -> Iterator[tuple[str, Path, Path]]:
    """A registry on a free port; returns its URL, the operator keystore, the anchor."""
    op, reg = tmp_path / "operator.keystore", tmp_path / "registry.keystore"
    _init(op, "xa-coordinator", "NRM_OPERATOR_PASSPHRASE")
    _init(reg, "xa-registry")
    anchor = tmp_path / "anchor.json"
    assert (
        main(
            ["registry", "anchor", "--keystore", str(reg), "--country", "XA", "--out", str(anchor)]
        )
        == 0
    )
    own = open_keystore(reg.read_bytes(), PASS["NRM_KEYSTORE_PASSPHRASE"])
    signing = own.current(KeyUse.SIGNING)
    operator = read_public(op.read_bytes())
    config = RegistryConfig(
        "XA", signing.ed25519(), signing.key_id, operator.agency_id, operator.records
    )
    env_ = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "r.db")}
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(Registry(config, env=env_)), log_level="warning")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", op, anchor
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def test_init_makes_a_0600_keystore_and_needs_a_passphrase(
    tmp_path: Path, env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ks" / "agency.keystore"
    _init(path, "xa-police")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    out = capsys.readouterr().out
    keys = open_keystore(path.read_bytes(), PASS["NRM_KEYSTORE_PASSPHRASE"])
    for pair in keys.pairs:
        assert pair.private.hex() not in out and pair.key_id in out
    assert main(["agency", "init", "--agency", "xa-police", "--keystore", str(path)]) == 2
    assert "exists" in capsys.readouterr().err
    monkeypatch.delenv("NRM_KEYSTORE_PASSPHRASE")
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    other = tmp_path / "other.keystore"
    assert main(["agency", "init", "--agency", "xa-x", "--keystore", str(other)]) == 2
    assert "passphrase is required" in capsys.readouterr().err and not other.exists()
    monkeypatch.setenv("NRM_KEYSTORE_PASSPHRASE", "")
    assert main(["agency", "init", "--agency", "xa-x", "--keystore", str(other)]) == 2
    assert not other.exists()


def test_register_rotate_suspend_round_trip(
    served: tuple[str, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, op, anchor = served
    ks = tmp_path / "police.keystore"
    _init(ks, "xa-police")
    common = ["--registry", url, "--operator-keystore", str(op)]
    register = [
        "agency",
        "register",
        "--keystore",
        str(ks),
        "--name",
        "Police",
        "--country",
        "XA",
        "--role",
        "first-responder",
        "--router-url",
        "https://p.example/r",
        "--webhook-url",
        "https://p.example/w",
        *common,
    ]
    assert main(register) == 0
    assert main(register) == 2
    assert "409" in capsys.readouterr().err

    before = open_keystore(ks.read_bytes(), PASS["NRM_KEYSTORE_PASSPHRASE"])
    rotate = ["agency", "rotate-keys", "--keystore", str(ks), "--grace-hours", "2", *common]
    assert main(rotate) == 0
    after = open_keystore(ks.read_bytes(), PASS["NRM_KEYSTORE_PASSPHRASE"])
    assert stat.S_IMODE(ks.stat().st_mode) == 0o600
    assert len(after.pairs) == 4 and after.pairs[:2] == before.pairs
    assert "within 2 h" in capsys.readouterr().out

    capsys.readouterr()
    assert main(["directory", "show", "--registry", url, "--anchor", str(anchor)]) == 0
    shown = capsys.readouterr().out
    assert "serial 3" in shown and "xa-police" in shown and "retired" in shown

    stolen = after.pairs[-1].key_id if after.pairs[-1].use == "signing" else after.pairs[-2].key_id
    report = ["agency", "compromise", "--agency", "xa-police", "--key-id", stolen]
    assert main([*report, "--reason", "laptop stolen", *common]) == 0
    assert "compromised from" in capsys.readouterr().out
    assert main([*report, "--reason", "again", *common]) == 2
    assert "already" in capsys.readouterr().err
    assert main(["directory", "show", "--registry", url, "--anchor", str(anchor)]) == 0
    assert "compromised" in capsys.readouterr().out

    suspend = ["agency", "suspend", "--agency", "xa-police", "--reason", "audit", *common]
    assert main(suspend) == 0
    assert "suspended" in capsys.readouterr().out
    assert (
        main(
            ["directory", "show", "--registry", url, "--anchor", str(anchor), "--last-serial", "99"]
        )
        == 2
    )
    assert "DirectoryStale" in capsys.readouterr().err


def test_wrong_operator_passphrase_is_a_user_error(
    served: tuple[str, Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, op, _ = served
    monkeypatch.setenv("NRM_OPERATOR_PASSPHRASE", "wrong")
    args = [
        "agency",
        "suspend",
        "--agency",
        "xa-x",
        "--reason",
        "r",
        "--registry",
        url,
        "--operator-keystore",
        str(op),
    ]
    assert main(args) == 2
    assert "wrong passphrase" in capsys.readouterr().err


def test_directory_show_refuses_a_foreign_anchor(
    served: tuple[str, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _, _ = served
    other = tmp_path / "other-registry.keystore"
    _init(other, "xb-registry")
    foreign = tmp_path / "foreign-anchor.json"
    assert (
        main(
            [
                "registry",
                "anchor",
                "--keystore",
                str(other),
                "--country",
                "XA",
                "--out",
                str(foreign),
            ]
        )
        == 0
    )
    assert main(["directory", "show", "--registry", url, "--anchor", str(foreign)]) == 2
    assert "refused" in capsys.readouterr().err
