"""docker-compose.yml checked without a Docker engine: it must describe what the code does.

- the file parses and has the services the architecture names;
- every command a service runs is a real `nrm` sub-command (parsed by nrm.cli's own
  parser, not run), including each `nrm` step of a one-shot shell script;
- every NRM_* variable it sets is read somewhere in the project's code, and every
  POSTGRES_* variable given to an nrm service is one eventsourcing reads;
- every health check URL is a route the service really serves (asked of a running
  embedded bus: registry, node and notifier), on the port the service listens on;
- the broker's security settings are deploy/kafka.py's (TLS, principal mapping, the
  authorizer, super users, no auto-created topics);
- each service is given only its own secrets: passphrases and database passwords as
  compose secrets, private keys in volumes, each owned by one party; public material only
  in `trust`; no secret value in any environment.
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
SHELL_HELPERS = {"test", "echo", "true", "chmod"}
URL = re.compile(r"https?://127\.0\.0\.1:(\d+)(/[\w/-]*)")


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
            # <VAR>_FILE names a file holding VAR (nrm.agency_cli.secret_from_env)
            names = {var}
            if var.endswith("_FILE") and "secret_from_env" in code:
                names.add(var.removesuffix("_FILE"))
            if var.startswith("NRM_"):
                assert any(re.search(rf"\b{n}\b", code) for n in names), f"{name}: {var} unread"
                checked += 1
            elif var.startswith("POSTGRES_") and kind_of(s):
                assert names & postgres_names, f"{name} sets {var}; eventsourcing ignores it"
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


def test_the_broker_is_secured_as_deploy_kafka_configures_it(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    from tests.plugins.kafka_broker import load_deploy_module

    kafka = load_deploy_module("kafka")
    tls = kafka.BrokerTls(tmp_path / "ca.pem", tmp_path / "broker.pem")
    me = kafka.Voter(1, 9093, 9094)
    ours = dict(
        line.split("=", 1)
        for line in kafka.server_properties(tmp_path, me, [me], tls).split("\n")
        if line
    )
    env = services["kafka"]["environment"]
    theirs = {k.removeprefix("KAFKA_").lower().replace("_", "."): str(v) for k, v in env.items()}
    for key in (
        "listener.security.protocol.map",
        "ssl.keystore.type",
        "ssl.truststore.type",
        "ssl.client.auth",
        "ssl.protocol",
        "ssl.enabled.protocols",
        "ssl.endpoint.identification.algorithm",
        "ssl.principal.mapping.rules",
        "authorizer.class.name",
        "allow.everyone.if.no.acl.found",
        "super.users",
        "auto.create.topics.enable",
    ):
        assert theirs.get(key) == ours[key], key
    assert "PLAINTEXT" not in str(env)
    for name, s in services.items():
        for argv in nrm_commands(s):
            assert not any(a.startswith("--bootstrap=") and "9092" in a for a in argv), name


#: Who each service acts for. A secret or a private volume belongs to one party.
OWNERS = {
    "pki": "ca",
    "keys-registry": "registry",
    "registry": "registry",
    "keys-operator": "operator",
    "enrol": "operator",
    "provision": "operator",
    "keys-police": "police",
    "node-police": "police",
    "keys-authority": "authority",
    "node-authority": "authority",
    "keys-notifier": "notifier",
    "notifier": "notifier",
    "kafka": "broker",
    "postgres": "database",
}
PUBLIC_VOLUMES = {"trust"}


def _owner_of(resource: str) -> str:
    """`police_passphrase`, `pg_police`, `keys-police`, `tls-police`, `police-data`."""
    for pattern in (r"^(\w+)_passphrase$", r"^pg_(\w+)$", r"^(?:keys|tls)-(\w+)$", r"^(\w+)-data$"):
        if m := re.match(pattern, resource):
            return {"superuser": "database", "kafka": "broker", "postgres": "database"}.get(
                m[1], m[1]
            )
    return {"pki-ca": "ca"}[resource]


def _volumes(service: dict[str, Any]) -> list[str]:
    """The named volumes a service mounts (bind mounts are the project's own files)."""
    sources = [str(v).split(":")[0] for v in service.get("volumes", [])]
    binds = [v for v in sources if v.startswith((".", "/"))]
    assert all(b.startswith("./deploy/") and (ROOT / b).is_file() for b in binds), binds
    return [v for v in sources if v not in binds]


def test_no_service_is_given_another_parties_secret(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    assert set(OWNERS) == set(services), "name the owner of every service"
    declared = set(compose["secrets"])
    for name, s in services.items():
        me = OWNERS[name]
        for secret in s.get("secrets", []):
            assert secret in declared
            owner = _owner_of(secret)
            # the database server checks every service's password: it is given them
            issuer = me == "database" and secret.startswith("pg_")
            assert owner == me or issuer, f"{name} is given {secret}, which is {owner}'s"
        for volume in _volumes(s):
            if volume in PUBLIC_VOLUMES:
                continue
            owner = _owner_of(volume)
            issuer = me == "ca" and volume.startswith("tls-")  # the CA writes each TLS key
            assert owner == me or issuer, f"{name} mounts {volume}, which is {owner}'s"
        for var, value in (s.get("environment") or {}).items():
            if re.search(r"PASSPHRASE|PASSWORD", var):
                assert var.endswith(("_FILE", "_ENV")), f"{name}: {var} holds a secret inline"
                assert str(value).startswith("/run/secrets/") or var.endswith("_ENV"), var


def test_the_keys_that_matter_most_are_held_by_one_process(
    services: dict[str, dict[str, Any]],
) -> None:
    holders = {
        volume: sorted(n for n, s in services.items() if volume in _volumes(s))
        for volume in ("pki-ca", "keys-registry", "keys-notifier", "keys-police")
    }
    assert holders["pki-ca"] == ["pki"]
    assert holders["keys-registry"] == ["keys-registry", "registry"]  # directory signing
    assert holders["keys-police"] == ["keys-police", "node-police"]
    assert holders["keys-notifier"] == ["keys-notifier", "notifier"]
    notifier = services["notifier"]
    assert not [v for v in _volumes(notifier) if re.match(r"(keys|tls)-(police|authority)", v)]
    assert [a for a in notifier["command"] if "/keys/" in a] == [
        "--identity=/keys/notifier.keystore"
    ]
