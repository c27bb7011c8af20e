"""Which port a local server is given: one chosen now and bound a few seconds later.

The port is taken from below the kernel's ephemeral range. A port of that range may be
handed to an outgoing connection (a Kafka or HTTPS client's) between the choice and the
server's bind, which then fails with "address already in use", as a gateway's did in a
rehearsal of the suite, 10 s after its port was chosen. A broker's JVM or a database
takes longer still to bind.

Standard library only: `deploy/`'s scripts, which run before the project is installed,
load this file by its path.
"""

from __future__ import annotations

import secrets
import socket
from pathlib import Path

#: Where `free_port` looks for a port: from here to below the kernel's ephemeral range.
LISTEN_PORTS_FROM = 20000


def ephemeral_low(path: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> int:
    """The lowest port the kernel hands an outgoing connection (Linux; 32768 elsewhere)."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port nobody listens on now, below the ephemeral range (the kernel's choice when
    there is no room there)."""
    high = ephemeral_low()
    for _ in range(100 if high > LISTEN_PORTS_FROM else 0):
        port = secrets.randbelow(high - LISTEN_PORTS_FROM) + LISTEN_PORTS_FROM
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # someone listens there (or just did)
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
