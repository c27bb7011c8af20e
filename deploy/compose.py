"""Bring docker-compose.yml up under podman, in the order its `depends_on` asks for.

podman-compose starts services in dependency order, but with Debian's podman (4.3) it
cannot wait for a `service_healthy` condition (it says so and goes on), and without
systemd nothing runs health checks on a timer. So this starts one service at a time in
dependency order and, before starting what depends on it, waits for the condition
itself: `service_healthy` by running the service's health check (`podman healthcheck
run`) until it passes, `service_completed_successfully` by waiting for the one-shot to
exit 0. It needs PyYAML, which podman-compose itself depends on.

    python deploy/compose.py up   [-f FILE ...] [-p PROJECT] [--timeout SECONDS]
    python deploy/compose.py down [-f FILE ...] [-p PROJECT]     # volumes removed too

Podman runs with deploy/images.py's configuration (CONTAINERS_CONF).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from images import podman_env  # noqa: E402  (deploy/ holds scripts, not a package)


class ComposeError(RuntimeError):
    """A service did not start, or a condition it was waited for never held."""


def load(files: Sequence[Path]) -> dict[str, Any]:
    """The services of the compose files, later files overriding earlier ones (the keys
    that ordering needs: depends_on, healthcheck)."""
    import yaml

    class Loader(yaml.SafeLoader):
        """Reads podman-compose's `!override` and `!reset` tags of override files."""

    Loader.add_constructor("!override", lambda loader, node: _plain(loader, node))
    Loader.add_constructor("!reset", lambda loader, node: _plain(loader, node))
    services: dict[str, Any] = {}
    for path in files:
        data = yaml.load(path.read_text(), Loader=Loader) or {}
        for name, service in (data.get("services") or {}).items():
            services.setdefault(name, {}).update(service or {})
    return services


def _plain(loader: Any, node: Any) -> Any:
    """A tagged node's value, as if it had no tag."""
    import yaml

    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    return loader.construct_scalar(node)


def conditions(service: dict[str, Any]) -> dict[str, str]:
    """{dependency: condition} of one service (a list of names means service_started)."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def order(services: dict[str, Any]) -> list[str]:
    """Every service after the ones it depends on (file order among equals)."""
    done: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            raise ComposeError(f"depends_on cycle through {name}")
        visiting.add(name)
        for dep in conditions(services[name]):
            if dep not in services:
                raise ComposeError(f"{name} depends on unknown service {dep}")
            visit(dep)
        visiting.discard(name)
        done.append(name)

    for name in services:
        visit(name)
    return done


class Compose:
    """One project of compose files, driven through podman-compose and podman."""

    def __init__(self, files: Sequence[Path], project: str, env: dict[str, str] | None = None):
        self.files = [Path(f).resolve() for f in files]
        self.project = project
        self.env = {**podman_env(), **(env or {})}
        self.services = load(self.files)

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        files = [a for f in self.files for a in ("-f", str(f))]
        cmd = [sys.executable, "-m", "podman_compose", "-p", self.project, *files, *args]
        result = subprocess.run(
            cmd, env=self.env, cwd=self.files[0].parent, text=True, capture_output=True
        )
        if check and result.returncode != 0:
            raise ComposeError(f"podman-compose {' '.join(args)}: {result.stderr[-3000:]}")
        return result

    def container(self, service: str) -> str:
        return f"{self.project}_{service}_1"

    def podman(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["podman", *args], env=self.env, text=True, capture_output=True)

    def up(self, timeout: float = 300.0) -> None:
        """Each service in dependency order, each condition waited for before its
        dependants start."""
        wanted: dict[str, set[str]] = {}
        for service in self.services.values():
            for dep, condition in conditions(service).items():
                wanted.setdefault(dep, set()).add(condition)
        for name in order(self.services):
            self.compose("up", "-d", "--no-deps", name)
            if "service_completed_successfully" in wanted.get(name, ()):
                self.wait_completed(name, timeout)
            elif "service_healthy" in wanted.get(name, ()):
                self.wait_healthy(name, timeout)

    def wait_completed(self, service: str, timeout: float) -> None:
        container = self.container(service)
        result = self.podman("wait", container)
        code = result.stdout.strip()
        if result.returncode != 0 or code != "0":
            raise ComposeError(f"{service} exited {code or result.stderr}:\n{self.logs(service)}")

    def wait_healthy(self, service: str, timeout: float) -> None:
        container = self.container(service)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.podman("inspect", container, "--format", "{{.State.Status}}").stdout
            if state.strip() in ("exited", "stopped"):
                raise ComposeError(f"{service} exited before it was healthy:\n{self.logs(service)}")
            if self.podman("healthcheck", "run", container).returncode == 0:
                return
            time.sleep(1.0)
        raise ComposeError(f"{service} not healthy in {timeout:.0f}s:\n{self.logs(service)}")

    def healthy(self, service: str) -> bool:
        return self.podman("healthcheck", "run", self.container(service)).returncode == 0

    def logs(self, service: str, lines: int = 40) -> str:
        result = self.podman("logs", "--tail", str(lines), self.container(service))
        return result.stdout + result.stderr

    def down(self) -> None:
        """Stop and remove the containers, the network and the project's volumes."""
        self.compose("down", "-v", "-t", "15", check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("-f", "--file", action="append", type=Path, dest="files")
    parser.add_argument("-p", "--project", default=os.environ.get("COMPOSE_PROJECT_NAME", "nrm"))
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    compose = Compose(args.files or [HERE.parent / "docker-compose.yml"], args.project)
    try:
        if args.command == "up":
            compose.up(args.timeout)
            print(f"{args.project}: {len(compose.services)} services up, in order")
        else:
            compose.down()
    except ComposeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
