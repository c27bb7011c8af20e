"""The README's "Connect your system" runs, verbatim, against a fresh `nrm up`.

Each code block marked `<!-- quickstart: NAME -->` is taken from README.md as it stands and
run in the folder where `nrm up` runs, with `.venv/bin` on the PATH, as a reader would in
a second terminal: the curl blocks in one bash session (`set -euo pipefail`), the Python
blocks in one interpreter, then the oversight block. The only liberty taken is the bus's
port (`nrm up --port 0`), since other test runs may hold 8400 on this machine; the blocks
themselves find the URLs with `nrm url`, as the README does.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.quickstart.running_up import ROOT, NrmUp, user_env

README = ROOT / "README.md"
MARKED = re.compile(r"<!-- quickstart: (\w+) -->\s*```(\w+)\n(.*?)```", re.DOTALL)


def blocks(name: str) -> tuple[str, str]:
    """The language and the concatenated code of every block marked `name`, in order."""
    mine = [(lang, code) for marker, lang, code in _marked() if marker == name]
    assert mine, f"no quickstart block {name!r} in the README"
    assert len({lang for lang, _ in mine}) == 1
    return mine[0][0], "\n".join(code for _, code in mine)


def _marked() -> list[tuple[str, str, str]]:
    return [(m.group(1), m.group(2), m.group(3)) for m in MARKED.finditer(README.read_text())]


def run(name: str, bus: NrmUp, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    lang, code = blocks(name)
    command = (
        ["bash", "-c", "set -euo pipefail\n" + code]
        if lang == "bash"
        else [sys.executable, "-c", code]
    )
    done = subprocess.run(
        command, cwd=bus.folder, env=user_env(), capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{name} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NrmUp]:
    up = NrmUp(tmp_path_factory.mktemp("reader")).start()
    try:
        yield up
    finally:
        assert up.stop() == 0, up.stderr()


def test_every_quickstart_block_is_marked_and_fenced() -> None:
    text = README.read_text()
    markers = [marker for marker, _, _ in _marked()]
    assert text.count("<!-- quickstart:") == len(markers)  # none is left unfenced
    assert {"curl", "python", "oversight"} <= set(markers)


def test_the_startup_output_ends_with_how_to_call_a_node(bus: NrmUp) -> None:
    lines = bus.stdout().strip().splitlines()
    assert lines[-1] == "Ctrl-C or SIGTERM stops the bus."
    export, curl = lines[-3].strip(), lines[-2].strip()
    assert export == "export NRM_TOKEN=$(nrm token --agency border-police)"
    shown = subprocess.run(
        ["bash", "-c", f"set -euo pipefail\n{export}\n{curl} --fail-with-body -sS"],
        cwd=bus.folder,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0 and '"items"' in shown.stdout, shown.stderr
    assert bus.stderr() == ""  # quiet: no library chatter around the URLs


def test_curl_screen_refer_accept_read_back(bus: NrmUp) -> None:
    done = run("curl", bus)
    assert re.search(r"screened case-[a-z0-9]+", done.stdout)
    assert '"withheld": "location"' in done.stdout  # R5: the address stays with the shelter
    assert "12 Hidden Lane" not in done.stdout


def test_python_client_screen_refer_accept_read_back(bus: NrmUp) -> None:
    done = run("python", bus)
    assert "'shelter_address': 'location'" in done.stdout
    # the inbox block: both cases' acceptances, once each, and the cursor kept
    assert len(re.findall(r"referral.accepted case-\w+ from safe-house", done.stdout)) == 2
    assert (bus.folder / ".nrm-data" / "border-police.inbox").read_text().strip().isdigit()


def test_oversight_verifies_every_log_and_publishes(bus: NrmUp) -> None:
    done = run("oversight", bus)
    verdict = re.search(r"verdict: OK: (\d+) log\(s\), (\d+) leaves", done.stdout)
    assert verdict, done.stdout
    assert int(verdict.group(1)) == 8 and int(verdict.group(2)) > 0
    published = bus.country / "oversight" / "statistics" / "statistics.json"
    assert published.exists() and "screened" in published.read_text()
