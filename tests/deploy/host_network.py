"""docker-compose.yml rewritten for host networking, as a compose override file.

On a machine where containers may only talk over 127.0.0.1 (a test here, a single host
without bridge networking), every service runs in the host's network namespace: the
services' names resolve to 127.0.0.1 (`extra_hosts`), and each service listens on a port
of its own, chosen free, so that nothing collides with what already runs on the machine
(two nodes cannot both listen on 8500). The override changes only what host networking
needs: the network mode, the names, the ports (in URLs, listeners, health checks and the
ports the processes are told to use), 0.0.0.0 to 127.0.0.1, and the images (the ones
deploy/images.py builds offline instead of the registry's).
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import yaml

#: What each service listens on inside docker-compose.yml (container ports).
LISTENS: dict[str, tuple[int, ...]] = {
    "kafka": (9093, 9094),
    "postgres": (5432,),
    "registry": (8700,),
    "node-police": (8500,),
    "node-authority": (8500,),
    "notifier": (8720,),
}
#: The registry's images replaced by the ones built offline (deploy/images.py).
LOCAL_IMAGES = {
    "apache/kafka:4.1.1": "localhost/nrm-kafka:local",
    "postgres:16": "localhost/nrm-postgres:local",
    "nrm-referral-bus:local": "localhost/nrm-referral-bus:local",
}


class Override(list[Any]):
    """A list that replaces the base file's list instead of extending it (`!override`)."""


class Reset(list[Any]):
    """A key removed from the base file's service (`!reset`)."""


def _override(dumper: yaml.SafeDumper, value: Override) -> yaml.Node:
    return dumper.represent_sequence("!override", list(value))


def _reset(dumper: yaml.SafeDumper, value: Reset) -> yaml.Node:
    return dumper.represent_sequence("!reset", list(value))


class Dumper(yaml.SafeDumper):
    """Writes the tags above, and every value in full (no anchors)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


Dumper.add_representer(Override, _override)
Dumper.add_representer(Reset, _reset)


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on now (held together so that they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def port_map() -> dict[str, dict[int, int]]:
    """{service: {port in the file: free port on this machine}}."""
    wanted = sum(len(p) for p in LISTENS.values())
    ports = iter(free_ports(wanted))
    return {name: {p: next(ports) for p in listens} for name, listens in LISTENS.items()}


def _rewrite(value: Any, own: str, ports: dict[str, dict[int, int]]) -> Any:
    """One value of service `own` with every address moved to its host-mode port."""
    if isinstance(value, list):
        return [_rewrite(v, own, ports) for v in value]
    if isinstance(value, dict):
        return {k: _rewrite(v, own, ports) for k, v in value.items()}
    if not isinstance(value, str):
        return value
    text = value.replace("0.0.0.0", "127.0.0.1")
    for name, moved in ports.items():
        for old, new in moved.items():
            text = re.sub(rf"\b{re.escape(name)}:{old}\b", f"{name}:{new}", text)
    for old, new in ports.get(own, {}).items():
        # what the service itself listens on and checks its health at
        text = re.sub(rf"(127\.0\.0\.1|localhost|//):{old}\b", rf"\g<1>:{new}", text)
        text = re.sub(rf"^(--port=){old}$", rf"\g<1>{new}", text)
    text = text.replace("//:", "//127.0.0.1:")
    return text


def override(compose_file: Path, ports: dict[str, dict[int, int]]) -> dict[str, Any]:
    """The override document for `compose_file` with the services on `ports`."""
    services = yaml.safe_load(compose_file.read_text())["services"]
    hosts = [f"{name}:127.0.0.1" for name in services]
    postgres_port = str(ports["postgres"][5432])
    out: dict[str, Any] = {}
    for name, service in services.items():
        patch: dict[str, Any] = {"network_mode": "host", "extra_hosts": hosts}
        image = service.get("image")
        if image in LOCAL_IMAGES:
            patch["image"] = LOCAL_IMAGES[image]
        if "ports" in service:
            patch["ports"] = Reset()
        command = _rewrite(service.get("command"), name, ports)
        if command != service.get("command"):
            patch["command"] = command
        env = dict(service.get("environment") or {})
        if env:
            moved = _rewrite(env, name, ports)
            if "NRM_PORT" in env:
                moved["NRM_PORT"] = str(ports[name][int(env["NRM_PORT"])])
            if "POSTGRES_PORT" in env:
                moved["POSTGRES_PORT"] = postgres_port
            changed = {k: v for k, v in moved.items() if env.get(k) != v}
            if changed:
                patch["environment"] = changed
        if name == "postgres":
            patch.setdefault("environment", {}).update(
                PGPORT=postgres_port, POSTGRES_LISTEN="127.0.0.1"
            )
        if "healthcheck" in service:
            test = _rewrite(service["healthcheck"]["test"], name, ports)
            patch["healthcheck"] = {"test": Override(test)}
        out[name] = patch
    return {"services": out}
