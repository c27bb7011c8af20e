"""docker-compose.yml checked without a Docker engine: it must describe what the code does.

- the file parses and has the services the architecture names;
- every command a service runs is a real `nrm` sub-command (parsed by nrm.cli's own
  parser, not run), including each `nrm` step of a one-shot shell script;
- every NRM_* variable it sets is read somewhere in the project's code, and every
  POSTGRES_* variable given to an nrm service is one eventsourcing reads;
- every health check URL is a route the service really serves (asked of a running
  embedded bus: registry, node and notifier), on the port the service listens on.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from nrm.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SOURCE_DIRS = ("contracts", "services", "nrm")
SHELL_HELPERS = {"test", "echo", "true"}
URL = re.compile(r"http://127\.0\.0\.1:(\d+)(/[\w/-]*)")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in compose["services"].items()}


def nrm_commands(service: dict[str, Any]) -> Iterator[list[str]]:
    """Each `nrm ...` argv the service runs (shell scripts split at ; && ||)."""
    command = service.get("command")
    if command is None:
        return
    argv = shlex.split(command) if isinstance(command, str) else [str(c) for c in command]
    if argv[:2] == ["sh", "-c"]:
        for segment in re.split(r"\s*(?:;|&&|\|\|)\s*", argv[2]):
            words = shlex.split(segment)
            if not words:
                continue
            assert words[0] == "nrm" or words[0] in SHELL_HELPERS, segment
            if words[0] == "nrm":
                yield words
        return
    assert argv[0] == "nrm", argv
    yield argv


def kind_of(service: dict[str, Any]) -> str | None:
    """registry | node | notifier, from the long-running command."""
    for argv in nrm_commands(service):
        if argv[2:3] == ["serve"]:
            return argv[1]
    return None


def source_text() -> str:
    return "\n".join(
        p.read_text(errors="replace")
        for d in SOURCE_DIRS
        for p in (ROOT / d).rglob("*.py")
        if ".venv" not in p.parts
    )


def test_the_file_has_the_architecture_services(services: dict[str, dict[str, Any]]) -> None:
    kinds = [kind_of(s) for s in services.values()]
    assert kinds.count("node") >= 2 and "registry" in kinds and "notifier" in kinds
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "broker,controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    assert services["postgres"]["image"].startswith("postgres:")
    for name, s in services.items():
        for dep in s.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown {dep}"
        if kind_of(s) in ("registry", "node", "notifier"):
            assert "healthcheck" in s, f"{name} has no health check"


def test_every_command_is_a_real_nrm_subcommand(services: dict[str, dict[str, Any]]) -> None:
    parser = build_parser()
    seen = 0
    for name, s in services.items():
        for argv in nrm_commands(s):
            try:
                args = parser.parse_args(argv[1:])
            except SystemExit:
                pytest.fail(f"{name}: `{shlex.join(argv)}` is not a valid nrm command")
            assert getattr(args, "handler", None) is not None, (name, argv)
            seen += 1
    assert seen >= 10


def test_every_nrm_variable_is_read_by_the_code(services: dict[str, dict[str, Any]]) -> None:
    code = source_text()
    from eventsourcing.postgres import PostgresFactory

    postgres_names = {
        getattr(PostgresFactory, k) for k in dir(PostgresFactory) if k.startswith("POSTGRES")
    }
    checked = 0
    for name, s in services.items():
        env = s.get("environment") or {}
        assert isinstance(env, dict), f"{name}: use a mapping for environment"
        for var in env:
            if var.startswith("NRM_"):
                assert re.search(rf"\b{var}\b", code), f"{name} sets {var}; no code reads it"
                checked += 1
            elif var.startswith("POSTGRES_") and kind_of(s):
                assert var in postgres_names, f"{name} sets {var}; eventsourcing ignores it"
    assert checked >= 20


def test_health_checks_are_served_routes(
    services: dict[str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    import httpx

    from nrm.embedded import DEMO_AGENCIES
    from tests.bus.running import running_bus

    wanted: list[tuple[str, str, str]] = []
    for name, s in services.items():
        kind = kind_of(s)
        if kind is None:
            continue
        test = " ".join(s["healthcheck"]["test"])
        match = URL.search(test)
        assert match, f"{name}: health check names no local URL: {test}"
        port, path = match.groups()
        assert port == listen_port(s), f"{name}: health check on {port}, listens elsewhere"
        wanted.append((name, kind, path))

    agencies = tuple(a for a in DEMO_AGENCIES if a.id in ("border-police", "nrm-authority"))
    with running_bus(tmp_path_factory.mktemp("compose-bus"), agencies=agencies) as rb:
        base = {
            "registry": rb.bus.registry_url,
            "node": rb.bus.urls["border-police"],
            "notifier": rb.bus.notifier_url,
        }
        for name, kind, path in wanted:
            for probe in (path, "/healthz", "/readyz"):
                resp = httpx.get(base[kind] + probe, timeout=10)
                assert resp.status_code == 200, (name, kind, probe, resp.text)


def listen_port(service: dict[str, Any]) -> str:
    env = service.get("environment") or {}
    if "NRM_PORT" in env:
        return str(env["NRM_PORT"])
    for argv in nrm_commands(service):
        for i, word in enumerate(argv):
            if word.startswith("--port="):
                return word.split("=", 1)[1]
            if word == "--port":
                return argv[i + 1]
    node_default = "8500"  # nrm node serve's default (NRM_PORT)
    return node_default
