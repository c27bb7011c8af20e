"""What the fault drills on the process topology share: a load of logical events sent
over HTTP until each is accepted, the count of what arrived, and the drill's figures.

A logical event carries its own `Idempotency-Key`, so a client that lost its answer (the
node was killed under it) sends it again and gets the same event back, never a second
one: what was *sent* is what the load's clients were told was accepted.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.bus.running import Running
from tests.faults.conftest import ADULT, received_ids

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Load:
    """Sends `count` screenings from `sender` to `recipient` on `threads` clients,
    retrying each (same key) through outages until it is accepted."""

    running: Running
    sender: str
    recipient: str
    count: int
    threads: int = 4
    tag: str = "drill"
    give_up_after: float = 120.0
    accepted: list[str] = field(default_factory=list)
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _one(self, i: int) -> None:
        deadline = time.monotonic() + self.give_up_after
        body = {"recipients": [self.recipient], "payload": ADULT}
        headers = {"Idempotency-Key": f"{self.tag}-{i}"}
        while True:
            try:
                with self.running.client(self.sender) as c:
                    r = c.post("/v1/cases", json=body, headers=headers)
                if r.status_code == 201:
                    with self._lock:
                        self.accepted.append(str(r.json()["event_id"]))
                    return
            except httpx.HTTPError:
                pass
            with self._lock:
                self.retries += 1
            if time.monotonic() > deadline:
                raise AssertionError(f"event {i} never accepted")
            time.sleep(0.2)

    def run(self) -> None:
        with ThreadPoolExecutor(self.threads) as pool:
            list(pool.map(self._one, range(self.count)))

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        return thread


@dataclass
class Figures:
    """A drill's outcome, as the report gives it."""

    drill: str
    sent: int
    received_once: int
    doubled: int
    lost: int
    recovery_seconds: dict[str, float]
    detail: dict[str, Any] = field(default_factory=dict)

    def write(self) -> None:
        """Print it (pytest -s shows it) and keep it in results/drills/ (not versioned)."""
        print(f"\nDRILL {json.dumps(asdict(self))}")
        folder = ROOT / "results" / "drills"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{self.drill}.json").write_text(json.dumps(asdict(self), indent=2) + "\n")


def report(
    drill: str,
    running: Running,
    agency: str,
    sent: list[str],
    recovery: dict[str, float],
    **detail: Any,
) -> Figures:
    """The drill's figures from what `agency` received of `sent`, written out."""
    once, doubled, lost = arrivals(running, agency, sent)
    rounded = {k: round(v, 2) for k, v in recovery.items()}
    figures = Figures(drill, len(sent), once, doubled, lost, rounded, detail)
    figures.write()
    return figures


def arrivals(running: Running, agency: str, sent: list[str]) -> tuple[int, int, int]:
    """(received once, doubled, lost) of `sent` in `agency`'s log of received events."""
    with running.client(agency) as c:
        seen = Counter(received_ids(c))
    once = sum(1 for e in sent if seen[e] == 1)
    doubled = sum(1 for e in sent if seen[e] > 1)
    lost = sum(1 for e in sent if seen[e] == 0)
    return once, doubled, lost


def until(predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> float:
    """Seconds until `predicate()` held; fails the drill after `timeout`."""
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)
    return time.monotonic() - t0


def lag(running: Running, agency: str) -> dict[str, int] | None:
    try:
        r = running.get(f"{running.bus.urls[agency]}/readyz", timeout=2)
    except httpx.HTTPError:
        return None
    return dict(r.json()["lag"]) if r.status_code == 200 else None
