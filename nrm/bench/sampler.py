"""A tiny all-threads sampling profiler for the end-to-end path.

cProfile sees one thread, but a node's work is spread over the event loop, the HTTP
worker threads and `asyncio.to_thread` workers. Sampling `sys._current_frames()` every
few milliseconds sees them all; idle stacks (threads parked in a queue, a selector or a
condition wait) are dropped so the counts are where time is spent, not where it waits.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from types import FrameType

_IDLE_LEAVES = {
    ("threading.py", "wait"),
    ("queue.py", "get"),
    ("selectors.py", "select"),
    ("thread.py", "_worker"),
    ("base_events.py", "_run_once"),
    ("threading.py", "_wait_for_tstate_lock"),
    ("sampler.py", "_run"),
    ("selector_events.py", "select"),
    ("unix_events.py", "_do_waitpid"),
}


def _where(frame: FrameType) -> tuple[str, str]:
    code = frame.f_code
    return code.co_filename.rsplit("/", 1)[-1], code.co_name


def _is_ours(frame: FrameType) -> bool:
    path = frame.f_code.co_filename
    return (
        "site-packages" not in path and "/nrm/bench/" not in path and any(p in path for p in _OURS)
    )


_OURS = ("/contracts/", "/services/", "/nrm/")


class Sampler:
    """Counts, per function, samples where it is the leaf (self) or on the stack (total)."""

    def __init__(self, interval_s: float = 0.002) -> None:
        self.interval_s = interval_s
        self.self_counts: collections.Counter[str] = collections.Counter()
        self.total_counts: collections.Counter[str] = collections.Counter()
        self.ours_counts: collections.Counter[str] = collections.Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        me = threading.get_ident()
        while not self._stop.is_set():
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                leaf = _where(frame)
                if leaf in _IDLE_LEAVES:
                    continue
                self.samples += 1
                self.self_counts[f"{leaf[0]}:{leaf[1]}"] += 1
                seen: set[str] = set()
                f: FrameType | None = frame
                while f is not None:
                    name = "{}:{}".format(*_where(f))
                    if name not in seen:
                        seen.add(name)
                        self.total_counts[name] += 1
                        if _is_ours(f):
                            self.ours_counts[name] += 1
                    f = f.f_back
            time.sleep(self.interval_s)

    def top(self, n: int = 15) -> dict[str, list[tuple[str, float]]]:
        """Top functions by share of busy samples (self and inclusive), in percent."""
        busy = max(self.samples, 1)
        return {
            "self": [(k, round(100 * v / busy, 1)) for k, v in self.self_counts.most_common(n)],
            "total": [(k, round(100 * v / busy, 1)) for k, v in self.total_counts.most_common(n)],
            "project_total": [
                (k, round(100 * v / busy, 1)) for k, v in self.ours_counts.most_common(n)
            ],
        }
