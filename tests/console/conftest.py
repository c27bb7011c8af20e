"""A real embedded bus with the demo case played through it, and Debian's Chromium driven
headless by Playwright: the consoles are tested as an officer uses them.

Screenshots of every page the tests visit are written to `results/console/` (one PNG per
page, named by test and step), so a person can look at what the tests saw.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from nrm.demo import CANARY, escalation, play
from tests.bus.running import RunningBus, running_bus

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "results" / "console"
#: What works on this kind of machine (closed network, root, no GPU); Playwright adds
#: --headless and a fresh temporary --user-data-dir itself.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Demo:
    """The running bus, the demo case, and what the browser was shown."""

    bus: RunningBus
    case: str
    urls_seen: list[str] = field(default_factory=list)
    titles_seen: list[str] = field(default_factory=list)

    def console(self, agency: str) -> str:
        return f"{self.bus.bus.urls[agency]}/console"

    def officer(self, agency: str) -> tuple[str, str]:
        return self.bus.bus.officers[agency]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():  # a browser test never skips: make test installs it
        pytest.fail(f"{CHROMIUM} is missing: run deploy/ensure-chromium.sh (make test does)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with running_bus(tmp_path_factory.mktemp("console-bus")) as bus:
        case = bus.run(play(bus.bus, io.StringIO()), timeout=120)
        bus.run(escalation(bus.bus, case, io.StringIO()), timeout=60)
        yield Demo(bus, case)


@pytest.fixture
def context(browser: Browser, demo: Demo, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser profile per test (no cookie carried over); every URL requested and
    every title shown is recorded for the privacy checks."""
    ctx = browser.new_context()
    ctx.on("request", lambda r: demo.urls_seen.append(r.url))
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext, demo: Demo) -> Page:
    p = context.new_page()
    p.on("load", lambda: demo.titles_seen.append(p.title()))
    return p


def shot(page: Page, name: str) -> Path:
    """A full-page screenshot under results/console/."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / (re.sub(r"[^a-z0-9-]+", "-", name.lower()) + ".png")
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Page, demo: Demo, agency: str, password: str | None = None) -> None:
    officer, real = demo.officer(agency)
    page.goto(f"{demo.console(agency)}/sign-in")
    page.get_by_label("Officer id").fill(officer)
    page.get_by_label("Password").fill(real if password is None else password)
    page.get_by_role("button", name="Sign in").click()


__all__ = ["CANARY", "Demo", "shot", "sign_in"]
