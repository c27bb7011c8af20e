"""Runs the pieces of a bus as separate OS processes and keeps them running.

Each piece (`ProcessSpec`) is a command with a complete environment of its own (nothing
inherited: a process gets only the secrets it is given), a log file and a readiness URL.
The supervisor starts them in order, each once the ones before it answer ready; a
process that exits is started again after a backoff that doubles up to a ceiling (and
starts over once it has run for a while); on `stop()` they are stopped in the reverse
order, SIGTERM first and SIGKILL only past a grace period.

Children run in their own session, so Ctrl-C in a terminal reaches the supervisor alone
(which stops them in order), and die with it if it is killed (PR_SET_PDEATHSIG): no
orphans. Linux sends that signal when the *thread* that forked exits, so every child is
started from the thread running the supervisor's event loop.

The state (`state()`, and a JSON file rewritten on every change) names each process,
its pid, URL, status and restarts: what `nrm status` reads, and what a benchmark uses to
read each process's CPU time (`cpu_seconds`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

log = logging.getLogger("nrm.supervisor")

#: Restart backoff: first wait, ceiling, and how long a run must last to count as good.
BACKOFF_FIRST = 0.5
BACKOFF_CEILING = 30.0
STABLE_AFTER = 30.0


class StartFailed(RuntimeError):
    """A process did not become ready; the message ends with its log's last lines."""


@dataclass(frozen=True)
class ProcessSpec:
    """One piece of the bus as an OS process."""

    name: str  # unique: "registry", "node/border-police", "notifier", "gateway/XB"
    kind: str  # registry | node | notifier | gateway
    argv: tuple[str, ...]
    env: dict[str, str] = field(repr=False)
    url: str  # base URL of its HTTP API; "": none (ready once it runs)
    log: Path
    ready_path: str = "/readyz"
    agency: str = ""


@dataclass(eq=False)
class Child:
    """A supervised process: its spec, the running OS process, and its history."""

    spec: ProcessSpec
    proc: subprocess.Popen[bytes] | None = None
    status: str = "stopped"  # starting | running | backoff | stopped | failed
    restarts: int = 0
    started_at: float = 0.0
    last_exit: int | None = None
    failures: int = 0  # consecutive short runs: the backoff's exponent
    restart_at: float = 0.0
    held: bool = False  # an operator's hold: not restarted until released

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            text = self.spec.log.read_text(errors="replace").splitlines()
            return "\n".join(text[-lines:])
        return "(no log)"


def _die_with_parent() -> Callable[[], None] | None:
    """PR_SET_PDEATHSIG(SIGTERM) in the child: a supervisor killed outright takes its
    children along (they shut down cleanly on SIGTERM)."""
    if sys.platform != "linux":
        return None
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return None

    def set_pdeathsig() -> None:
        libc.prctl(1, signal.SIGTERM)  # 1 == PR_SET_PDEATHSIG

    return set_pdeathsig


def alive(pid: int) -> bool:
    """The process runs (a zombie, exited but not yet reaped, does not)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return raw[raw.rindex(")") + 2] != "Z"


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a live process has used (Linux /proc/<pid>/stat)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()  # the command name may hold spaces
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / os.sysconf("SC_CLK_TCK")


class Supervisor:
    """Starts, watches, restarts and stops a set of processes (see module doc)."""

    def __init__(
        self,
        state_file: Path,
        *,
        grace: float = 15.0,
        meta: dict[str, Any] | None = None,
        on_change: Callable[[Child], None] | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.state_file = state_file
        self.grace = grace
        self.meta = dict(meta or {})
        self.on_change = on_change
        self.children: dict[str, Child] = {}
        self._batches: list[list[str]] = []  # names started together, in start order
        self._stopping = False
        self._watch: asyncio.Task[None] | None = None
        self._http = httpx.AsyncClient(timeout=2.0, verify=verify)

    # --- starting --------------------------------------------------------------------

    async def start(self, specs: Sequence[ProcessSpec], timeout: float = 90.0) -> None:
        """Launch `specs` together and wait until each answers ready; the watch loop
        runs from the first call on. Raises `StartFailed` if one does not get ready."""
        for spec in specs:
            if spec.name in self.children:
                raise ValueError(f"{spec.name} is supervised already")
        self._batches.append([spec.name for spec in specs])
        for spec in specs:
            child = Child(spec)
            self.children[spec.name] = child
            self._launch(child)
        await asyncio.gather(*(self._ready(self.children[s.name], timeout) for s in specs))
        if self._watch is None:
            self._watch = asyncio.create_task(self._watch_loop(), name="supervisor")

    def _launch(self, child: Child) -> None:
        spec = child.spec
        spec.log.parent.mkdir(parents=True, exist_ok=True)
        with spec.log.open("ab") as out:
            out.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} start {spec.name}\n".encode())
            out.flush()
            child.proc = subprocess.Popen(
                list(spec.argv),
                env=spec.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent(),
            )
        child.status = "starting"
        child.started_at = time.monotonic()
        self._changed(child)

    async def _ready(self, child: Child, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert child.proc is not None
            code = child.proc.poll()
            if code is not None:
                child.status, child.last_exit = "failed", code
                self._changed(child)
                raise StartFailed(f"{child.spec.name} exited {code}:\n{child.tail()}")
            if await self.probe(child):
                child.status = "running"
                self._changed(child)
                return
            await asyncio.sleep(0.1)
        raise StartFailed(f"{child.spec.name} not ready in {timeout:.0f}s:\n{child.tail()}")

    async def probe(self, child: Child) -> bool:
        if not child.spec.url:
            return child.proc is not None and child.proc.poll() is None
        try:
            resp = await self._http.get(child.spec.url + child.spec.ready_path)
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    # --- watching --------------------------------------------------------------------

    async def _watch_loop(self) -> None:
        while not self._stopping:
            now = time.monotonic()
            for child in list(self.children.values()):
                try:
                    await self._tend(child, now)
                except Exception:  # a watch round never ends the supervision
                    log.exception("supervising %s", child.spec.name)
            await asyncio.sleep(0.2)

    async def _tend(self, child: Child, now: float) -> None:
        if child.status == "backoff":
            if now >= child.restart_at and not self._stopping and not child.held:
                child.restarts += 1
                log.warning("restarting %s (restart %d)", child.spec.name, child.restarts)
                self._launch(child)
            return
        if child.proc is None or child.status in ("stopped", "failed"):
            return
        code = child.proc.poll()
        if code is None:
            if child.status == "starting" and await self.probe(child):
                child.status = "running"
                self._changed(child)
            return
        ran = now - child.started_at
        child.failures = 0 if ran >= STABLE_AFTER else child.failures + 1
        wait = min(BACKOFF_FIRST * 2 ** max(0, child.failures - 1), BACKOFF_CEILING)
        child.last_exit, child.status, child.restart_at = code, "backoff", now + wait
        log.warning(
            "%s exited %s after %.1fs; restarting in %.1fs", child.spec.name, code, ran, wait
        )
        self._changed(child)

    def hold(self, name: str) -> None:
        """Do not restart `name` when it exits (maintenance, or a drill that keeps a
        piece down), until `release`."""
        child = self.children[name]
        child.held = True
        self._changed(child)

    def release(self, name: str) -> None:
        """Restart `name` again when it is down (at once if it is waiting)."""
        child = self.children[name]
        child.held, child.restart_at = False, min(child.restart_at, time.monotonic())
        self._changed(child)

    # --- stopping --------------------------------------------------------------------

    async def stop(self) -> None:
        """Every process, last started first (those started together, together): SIGTERM,
        then SIGKILL after the grace."""
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        for batch in reversed(self._batches):
            started = [self.children[name] for name in batch if name in self.children]
            await asyncio.gather(*(self._stop_child(child) for child in started))
        await self._http.aclose()

    async def _stop_child(self, child: Child) -> None:
        proc = child.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + self.grace
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if proc.poll() is None:
                log.warning("%s ignored SIGTERM for %.0fs: SIGKILL", child.spec.name, self.grace)
                proc.kill()
                await asyncio.to_thread(proc.wait, 10)
            child.last_exit = proc.returncode
        child.status = "stopped"
        self._changed(child)

    # --- state -----------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            **self.meta,
            "supervisor_pid": os.getpid(),
            "processes": [
                {
                    "name": c.spec.name,
                    "kind": c.spec.kind,
                    "agency": c.spec.agency,
                    "pid": c.pid,
                    "url": c.spec.url,
                    "ready_path": c.spec.ready_path,
                    "status": c.status,
                    "restarts": c.restarts,
                    "held": c.held,
                    "last_exit": c.last_exit,
                    "log": str(c.spec.log),
                }
                for c in self.children.values()
            ],
        }

    def _changed(self, child: Child) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(self.state(), indent=2))
        tmp.replace(self.state_file)
        if self.on_change is not None:
            self.on_change(child)
