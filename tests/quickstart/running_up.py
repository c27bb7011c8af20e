"""`nrm up` as a user runs it: a child process in its own folder, stopped with SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def user_env(**extra: str) -> dict[str, str]:
    """The environment of a shell where `.venv/bin` is on the PATH, and no NRM_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NRM_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


@dataclass
class NrmUp:
    """One `nrm up` process; `folder` is its working directory (data in `.nrm-data`)."""

    folder: Path
    args: tuple[str, ...] = ("--port", "0")
    env: dict[str, str] = field(default_factory=user_env)
    proc: subprocess.Popen[str] | None = None

    @property
    def country(self) -> Path:
        return self.folder / ".nrm-data" / "XA"

    def start(self, timeout: float = 180.0) -> NrmUp:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [str(BIN / "nrm"), "up", *self.args],
            cwd=self.folder,
            env=self.env,
            stdout=(self.folder / "up.out").open("w"),
            stderr=(self.folder / "up.err").open("w"),
            text=True,
        )
        deadline = time.monotonic() + timeout
        while "stops the bus" not in self.stdout():
            if self.proc.poll() is not None:
                raise AssertionError(f"nrm up exited {self.proc.returncode}:\n{self.stderr()}")
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"nrm up not ready in {timeout} s:\n{self.stderr()}")
            time.sleep(0.2)
        return self

    def stdout(self) -> str:
        return (self.folder / "up.out").read_text()

    def stderr(self) -> str:
        return (self.folder / "up.err").read_text()

    def endpoints(self) -> dict[str, object]:
        data: dict[str, object] = json.loads((self.country / "endpoints.json").read_text())
        return data

    def children(self) -> set[int]:
        """The process's descendants now (from /proc)."""
        assert self.proc is not None
        found, frontier = set(), [self.proc.pid]
        while frontier:
            pid = frontier.pop()
            for task in Path(f"/proc/{pid}/task").glob("*/children"):
                kids = {int(k) for k in task.read_text().split()}
                frontier += list(kids - found)
                found |= kids
        return found

    def signal(self, sig: signal.Signals, timeout: float = 90.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def stop(self) -> int | None:
        """SIGTERM, and SIGKILL only if it did not stop in time (a test failure then)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        try:
            return self.signal(signal.SIGTERM)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
