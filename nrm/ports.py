"""Which port a local server is given: one chosen now and bound a few seconds later.

Two hazards lie between the choice and the bind, and each failed a rehearsal of the suite
with "address already in use":

- the kernel hands ports of its ephemeral range to outgoing connections (a Kafka or
  HTTPS client's): the port is taken from below that range;
- another chooser (a second test worker, a second `nrm up`, the broker of a test running
  beside) picks the same port before either server bound it: every port handed out is
  held for `HELD_S` seconds in a directory of reservations shared by every process of
  the machine, and no other chooser gives it meanwhile.

Standard library only: `deploy/`'s scripts, which run before the project is installed,
load this file by its path.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import tempfile
import time
from pathlib import Path

#: Where `free_port` looks for a port: from here to below the kernel's ephemeral range.
LISTEN_PORTS_FROM = 20000
#: How long a port handed out stays reserved: far longer than any server takes to bind.
HELD_S = 600.0


def ephemeral_low(path: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> int:
    """The lowest port the kernel hands an outgoing connection (Linux; 32768 elsewhere)."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def reservations() -> Path:
    """The machine's directory of ports handed out (one empty file per port)."""
    folder = Path(tempfile.gettempdir()) / f"nrm-ports-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def reserve(port: int, folder: Path) -> bool:
    """Hold `port` for `HELD_S` seconds; False when another chooser holds it now."""
    held = folder / str(port)
    for _ in range(2):
        try:
            os.close(os.open(held, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            return True
        except FileExistsError:
            with contextlib.suppress(FileNotFoundError):
                if time.time() - held.stat().st_mtime < HELD_S:
                    return False
                held.unlink()  # an old reservation: its server bound long ago, or never
    return False


def free_port() -> int:
    """A port nobody listens on now and no other chooser gave in the last `HELD_S`
    seconds, below the ephemeral range (the kernel's choice when there is no room)."""
    high = ephemeral_low()
    folder = reservations()
    for _ in range(200 if high > LISTEN_PORTS_FROM else 0):
        port = secrets.randbelow(high - LISTEN_PORTS_FROM) + LISTEN_PORTS_FROM
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # someone listens there (or just did)
        if reserve(port, folder):
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
