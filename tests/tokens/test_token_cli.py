"""`nrm token`, `nrm dpop` and `nrm url` against a running bus's data folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nrm.cli import main
from tests.bus.running import RunningBus, running_bus
from tests.tokens.test_tokens_at_nodes import AGENCIES


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBus]:
    with running_bus(tmp_path_factory.mktemp("token-cli"), agencies=AGENCIES) as b:
        b.bus.write_endpoints()
        yield b


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out.strip(), err.strip()


def test_a_token_and_proofs_for_curl(
    bus: RunningBus, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = str(bus.bus.data_dir)
    code, url, _ = run(capsys, "url", "border-police", "--data", data)
    assert code == 0 and url == bus.bus.urls["border-police"]
    code, token, _ = run(capsys, "token", "--agency", "border-police", "--data", data)
    assert code == 0 and token.count(".") == 2
    key = bus.bus.root / "clients" / "border-police.dpop.jwk"
    assert key.stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("NRM_TOKEN", token)
    for _ in range(2):  # the same token, a new proof each time
        code, proof, _ = run(capsys, "dpop", "GET", f"{url}/v1/inbox", "--data", data)
        r = httpx.get(f"{url}/v1/inbox", headers={"Authorization": f"DPoP {token}", "DPoP": proof})
        assert r.status_code == 200, r.text
    code, _, _ = run(capsys, "token", "--agency", "border-police", "--data", data)
    assert key.exists()  # the client key is kept: later tokens are bound to it too


def test_one_time_tokens_and_other_audiences(
    bus: RunningBus, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(bus.bus.data_dir)
    code, once, _ = run(capsys, "token", "--agency", "border-police", "--once", "--data", data)
    assert code == 0
    url = f"{bus.bus.urls['border-police']}/v1/inbox"
    assert httpx.get(url, headers={"Authorization": f"Bearer {once}"}).status_code == 200
    assert httpx.get(url, headers={"Authorization": f"Bearer {once}"}).status_code == 401
    code, notifier_token, _ = run(
        capsys, "token", "--agency", "border-police", "--for", "notifier", "--once", "--data", data
    )
    assert code == 0
    listing = f"{bus.bus.notifier_url}/v1/subscriptions"
    r = httpx.get(listing, headers={"Authorization": f"Bearer {notifier_token}"})
    assert r.status_code == 200, r.text


def test_mistakes_are_explained(
    bus: RunningBus,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NRM_TOKEN", raising=False)
    code, _, err = run(capsys, "dpop", "GET", "http://127.0.0.1:1/v1/inbox")
    assert code == 2 and "NRM_TOKEN" in err
    code, _, err = run(capsys, "url", "--data", str(tmp_path))
    assert code == 2 and "no running bus" in err and "nrm up" in err
    data = str(bus.bus.data_dir)
    code, _, err = run(capsys, "token", "--agency", "nobody-here", "--data", data)
    assert code == 2 and "no keystore for 'nobody-here'" in err
    code, _, err = run(
        capsys, "token", "--agency", "border-police", "--lifetime", "3600", "--data", data
    )
    assert code == 2 and "lifetime" in err
