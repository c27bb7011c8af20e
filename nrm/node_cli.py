"""`nrm node serve`: one agency's router node as its own OS process, set up by environment.

This is how a node runs in a real deployment (docker-compose, systemd, Kubernetes): one
process per agency, its own store, talking to the country's registry over HTTP and to
other nodes only through the transport. Configuration is by environment so a container
needs no files but its secrets:

==============================  =========================================================
``NRM_AGENCY_ID``               the agency this node serves (required; registered)
``NRM_COUNTRY``                 ISO country code of the bus, e.g. ``XA`` (required)
``NRM_TRANSPORT``               ``kafka://host:9092[,host2:9092]`` (production),
                                ``sqlite:/path/bus.db`` or ``memory:`` (required)
``NRM_KAFKA_CA_FILE``           with Kafka (required): the CA the brokers' certificates
                                chain to (``nrm pki``'s ``ca.pem``)
``NRM_KAFKA_CERT_FILE``         with Kafka (required): this agency's client certificate
                                chain, PEM (``agency-<id>.pem``; its subject is the
                                node's broker principal)
``NRM_KAFKA_KEY_FILE``          its private key, PEM, unless in the certificate file
``NRM_REGISTRY_URL``            base URL of the country's registry (required)
``NRM_TRUST_ANCHOR``            trust anchor JSON file (``nrm registry anchor``) (required)
``NRM_KEYSTORE``                the agency's passphrase-sealed keystore file (required)
``NRM_KEYSTORE_PASSPHRASE_ENV`` name of the variable holding its passphrase
                                (default ``NRM_KEYSTORE_PASSPHRASE``); ``<name>_FILE``
                                may name a file holding it instead (container secrets)
``NRM_MASTER_KEY_FILE``         32 random bytes protecting the case key store at rest;
                                created (mode 0600) on first start if missing
``NRM_DATA_DIR``                folder for the node's local files (default ``.nrm-node``)
``NRM_STORE``                   ``sqlite:<path>`` (default ``<NRM_DATA_DIR>/store.db``) or
                                ``postgres``: eventsourcing's ``POSTGRES_DBNAME``,
                                ``POSTGRES_HOST``, ``POSTGRES_PORT``, ``POSTGRES_USER``,
                                ``POSTGRES_PASSWORD`` (or ``POSTGRES_PASSWORD_FILE``) and
                                optional ``POSTGRES_SCHEMA`` apply
``NRM_CASE_KEYS``               case key store (SQLite, default ``<NRM_DATA_DIR>/case-keys.db``)
``NRM_AUDIT_LOG``               the node's verifiable log (Merkle tree, checkpoints; SQLite,
                                default ``<NRM_DATA_DIR>/audit.db``); ``off``: none
``NRM_CHECKPOINT_INTERVAL``     seconds between signed checkpoints (default 60)
``NRM_LOG_ORIGIN``              origin domain of the log's checkpoints (default
                                ``nrm.example``; origin ``<domain>/<country>/<agency>``)
``NRM_WITNESS_URL``             the witness that cosigns checkpoints (default
                                ``NRM_REGISTRY_URL``: the registry); ``off``: none
``NRM_WITNESS_AUDIENCE``        its token audience (default ``nrm-registry:<country>``)
``NRM_FEDERATION``              ``on`` (default): take forwardings from peer countries this
                                country's registry federates with off the inbox; ``off``
``NRM_FORWARDINGS``             forwardings received across a border (SQLite, default
                                ``<NRM_DATA_DIR>/forwardings.db``)
``NRM_HOST`` / ``NRM_PORT``     where the HTTP API listens (default 127.0.0.1:8500)
``NRM_TLS_CERT_FILE``           serve HTTPS with this certificate chain, PEM (the
                                agency's ``nrm pki`` file holds chain and key); unset: HTTP
``NRM_TLS_KEY_FILE``            its key, PEM, unless in the certificate file
``NRM_CA_FILE``                 the CA the registry's (and witness's) certificates chain
                                to, for an ``https://`` NRM_REGISTRY_URL (default: the
                                system's CAs)
``NRM_MAX_BODY_BYTES``          request body limit, larger bodies get 413 (default 1 MiB)
``NRM_NOTIFIER_KEYS``           the notifier's public keys (``nrm agency public``): its
                                tokens may read the log and append escalations; unset:
                                no notifier is accepted
``NRM_AUDIENCE``                token audience (default ``nrm-router:<agency>``)
``NRM_PUBLIC_URL``              base URL clients call, when a proxy stands in front
                                (DPoP proofs name it; default: the request's own URL)
``NRM_POLL_INTERVAL``           longest wait of one inbox poll, in seconds (default 1)
``NRM_STARTUP_TIMEOUT``         seconds to wait for the registry at start (default 60)
``NRM_DIRECTORY_REFRESH``       seconds between directory refreshes (default 300)
``NRM_DIRECTORY_MAX_AGE``       seconds a directory may go unconfirmed by the registry
                                before the node stops sending and applying (default 3600);
                                the last accepted serial is kept in
                                ``<NRM_DATA_DIR>/directory-serial.json``
``NRM_KAFKA_SESSION_TIMEOUT_MS`` consumer group session timeout (default 10000); with
``NRM_KAFKA_HEARTBEAT_MS``      the heartbeat interval (default 3000): faster failover
``NRM_OTEL_EXPORTER``           ``none`` | ``console`` | ``otlp`` (referral_router.telemetry;
                                ``NRM_OTEL_SERVICE_NAME`` and the OTLP ``OTEL_*`` apply)
``NRM_CONSOLE``                 ``on`` (default) serves the web console under /console;
                                ``off`` does not
``NRM_CONSOLE_DB``              officers, sessions, verdicts (default
                                ``<NRM_DATA_DIR>/console.db``; ``nrm officer`` manages it)
``NRM_CONSOLE_PEERS``           oversight nodes only: ``agency=url,...`` to watch (default:
                                every router URL of the country in the directory)
``NRM_CONSOLE_SECURE_COOKIES``  ``1`` behind a TLS-terminating proxy (cookies get
                                ``Secure`` and the ``__Host-`` prefix; automatic on https)
``NRM_LOG_FORMAT``              ``text`` (default) or ``json`` (also ``--log-format``)
``NRM_LOG_LEVEL``               the bus's own loggers (default INFO; libraries: WARNING)
``NRM_FAULT_EXIT_AFTER_PUBLISH`` fault drills only: ``1`` exits right after a publish,
                                before the relay records its position (relay.py)
==============================  =========================================================

Several processes with the same agency id and the same PostgreSQL store are replicas:
they share the agency's consumer group (Kafka splits the inbox partitions between them)
and each receipt is tracked in the shared store, so nothing is applied twice.
The health routes are ``/healthz`` (process up) and ``/readyz`` (store and directory,
with the relay and inbox lags).
SIGTERM and SIGINT stop the node cleanly: HTTP first, then its loops, the consumer
group and the store (checkpointed and closed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from contracts.endpoints import router_audience
from nrm import logs, serving
from nrm.cli import CliError
from nrm.serving import CA_FILE_ENV, DEFAULT_MAX_BODY, ServerTls, verify_context

log = logging.getLogger("nrm.node")

DEFAULT_PORT = 8500


@dataclass(frozen=True)
class NodeConfig:
    """Everything `nrm node serve` reads from the environment, checked up front."""

    agency_id: str
    country: str
    transport_url: str
    registry_url: str
    anchor_file: Path
    keystore: Path
    passphrase_env: str
    master_key_file: Path
    data_dir: Path
    store_env: dict[str, str]
    case_keys: Path
    host: str
    port: int
    audience: str
    public_url: str | None
    poll_interval: float
    startup_timeout: float
    kafka: dict[str, object]
    console_db: Path | None = None  # None: no console
    console_peers: dict[str, str] | None = None
    console_secure_cookies: bool = False
    directory_refresh: float = 300.0
    directory_max_age: float = 3600.0
    audit_log: Path | None = None
    checkpoint_interval: float = 60.0
    log_origin: str = "nrm.example"
    witness_url: str | None = None
    witness_audience: str | None = None
    federation: bool = True
    forwardings: Path | None = None
    tls: ServerTls | None = None
    max_body: int = DEFAULT_MAX_BODY
    ca_file: Path | None = None
    notifier_keys: Path | None = None


def _need(env: dict[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise CliError(f"{name} is not set (see `nrm node serve --help`)")
    return value


def _number(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    try:
        return float(raw) if raw else default
    except ValueError:
        raise CliError(f"{name}={raw!r} is not a number") from None


def store_env_from(env: dict[str, str], data_dir: Path) -> dict[str, str]:
    """eventsourcing's settings for NRM_STORE: SQLite by path, or PostgreSQL by POSTGRES_*."""
    store = env.get("NRM_STORE", "").strip() or f"sqlite:{data_dir / 'store.db'}"
    if store.startswith("sqlite:"):
        path = store.removeprefix("sqlite:")
        if not path:
            raise CliError("NRM_STORE=sqlite: needs a path, e.g. sqlite:/data/store.db")
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path}
    if store == "postgres":
        from nrm.agency_cli import secret_from_env

        out = {"PERSISTENCE_MODULE": "eventsourcing.postgres"}
        for name in ("POSTGRES_DBNAME", "POSTGRES_HOST", "POSTGRES_USER"):
            out[name] = _need(env, name)
        password = secret_from_env("POSTGRES_PASSWORD", env)
        if not password:
            raise CliError("POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) is not set")
        out["POSTGRES_PASSWORD"] = password
        for name in ("POSTGRES_PORT", "POSTGRES_SCHEMA", "POSTGRES_POOL_SIZE"):
            if env.get(name):
                out[name] = env[name]
        return out
    raise CliError(f"NRM_STORE={store!r}: use sqlite:<path> or postgres")


def config_from_env(env: dict[str, str] | None = None) -> NodeConfig:
    env = dict(os.environ if env is None else env)
    agency = _need(env, "NRM_AGENCY_ID")
    data_dir = Path(env.get("NRM_DATA_DIR") or ".nrm-node")
    registry_url = _need(env, "NRM_REGISTRY_URL").rstrip("/")
    kafka: dict[str, object] = {}
    if env.get("NRM_KAFKA_SESSION_TIMEOUT_MS"):
        kafka["session_timeout_ms"] = int(_number(env, "NRM_KAFKA_SESSION_TIMEOUT_MS", 10_000))
    if env.get("NRM_KAFKA_HEARTBEAT_MS"):
        kafka["heartbeat_interval_ms"] = int(_number(env, "NRM_KAFKA_HEARTBEAT_MS", 3_000))
    transport_url = _need(env, "NRM_TRANSPORT")
    if transport_url.startswith("kafka://"):
        kafka["tls"] = kafka_tls_from(env)
    return NodeConfig(
        agency_id=agency,
        country=_need(env, "NRM_COUNTRY"),
        transport_url=transport_url,
        registry_url=registry_url,
        anchor_file=Path(_need(env, "NRM_TRUST_ANCHOR")),
        keystore=Path(_need(env, "NRM_KEYSTORE")),
        passphrase_env=env.get("NRM_KEYSTORE_PASSPHRASE_ENV") or "NRM_KEYSTORE_PASSPHRASE",
        master_key_file=Path(env.get("NRM_MASTER_KEY_FILE") or data_dir / "master.key"),
        data_dir=data_dir,
        store_env=store_env_from(env, data_dir),
        case_keys=Path(env.get("NRM_CASE_KEYS") or data_dir / "case-keys.db"),
        host=env.get("NRM_HOST") or "127.0.0.1",
        port=int(_number(env, "NRM_PORT", DEFAULT_PORT)),
        audience=env.get("NRM_AUDIENCE") or router_audience(agency),
        public_url=env.get("NRM_PUBLIC_URL") or None,
        poll_interval=_number(env, "NRM_POLL_INTERVAL", 1.0),
        startup_timeout=_number(env, "NRM_STARTUP_TIMEOUT", 60.0),
        kafka=kafka,
        console_db=(
            None
            if env.get("NRM_CONSOLE", "on").strip().lower() == "off"
            else Path(env.get("NRM_CONSOLE_DB") or data_dir / "console.db")
        ),
        console_peers=_peers(env.get("NRM_CONSOLE_PEERS", "")),
        console_secure_cookies=env.get("NRM_CONSOLE_SECURE_COOKIES", "") in ("1", "true", "yes")
        or bool(env.get("NRM_TLS_CERT_FILE")),  # served over HTTPS: Secure cookies
        directory_refresh=_number(env, "NRM_DIRECTORY_REFRESH", 300.0),
        directory_max_age=_number(env, "NRM_DIRECTORY_MAX_AGE", 3600.0),
        audit_log=_optional_path(env, "NRM_AUDIT_LOG", data_dir / "audit.db"),
        checkpoint_interval=_number(env, "NRM_CHECKPOINT_INTERVAL", 60.0),
        log_origin=env.get("NRM_LOG_ORIGIN") or "nrm.example",
        witness_url=_switch(env, "NRM_WITNESS_URL", registry_url),
        witness_audience=env.get("NRM_WITNESS_AUDIENCE") or None,
        federation=_switch(env, "NRM_FEDERATION", "on") == "on",
        forwardings=Path(env.get("NRM_FORWARDINGS") or data_dir / "forwardings.db"),
        tls=ServerTls.from_env(env),
        max_body=int(_number(env, "NRM_MAX_BODY_BYTES", DEFAULT_MAX_BODY)),
        ca_file=Path(env[CA_FILE_ENV]) if env.get(CA_FILE_ENV) else None,
        notifier_keys=Path(env["NRM_NOTIFIER_KEYS"]) if env.get("NRM_NOTIFIER_KEYS") else None,
    )


def _switch(env: dict[str, str], name: str, default: str) -> str | None:
    """A setting that is on by default and ``off`` turns off (None)."""
    value = (env.get(name) or "").strip() or default
    return None if value.lower() == "off" else value


def _optional_path(env: dict[str, str], name: str, default: Path) -> Path | None:
    value = _switch(env, name, str(default))
    return Path(value) if value else None


def _peers(text: str) -> dict[str, str] | None:
    """`agency=url,agency=url` -> {agency: url}; empty: None (use the directory)."""
    if not text.strip():
        return None
    out = {}
    for item in text.split(","):
        agency, sep, url = item.strip().partition("=")
        if not sep or not url.startswith(("http://", "https://")):
            raise CliError(f"NRM_CONSOLE_PEERS: {item!r} is not agency=http(s)://host:port")
        out[agency] = url.rstrip("/")
    return out


def kafka_tls_from(env: dict[str, str]) -> object:
    """The node's TLS identity towards the brokers; without it, no Kafka (no plaintext)."""
    from referral_router.transport.kafka import PLAINTEXT_REFUSED, KafkaTls

    ca, cert = env.get("NRM_KAFKA_CA_FILE", ""), env.get("NRM_KAFKA_CERT_FILE", "")
    if not (ca and cert):
        raise CliError(PLAINTEXT_REFUSED)
    key = env.get("NRM_KAFKA_KEY_FILE")
    for path in (ca, cert, key):
        if path and not Path(path).is_file():
            raise CliError(f"{path}: no such file (NRM_KAFKA_*)")
    return KafkaTls(Path(ca), Path(cert), Path(key) if key else None)


def master_key(path: Path) -> bytes:
    """The case key store's master key; made on first start (0600), never printed."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(32))
            log.warning("created a new master key at %s: back it up", path)
    key = path.read_bytes()
    if len(key) != 32:
        raise CliError(f"{path}: a master key is exactly 32 bytes, found {len(key)}")
    return key


@dataclass
class OpenNode:
    """A started node of this process: its runtime, and what closes with it."""

    cfg: NodeConfig
    runtime: Any  # referral_router.runtime.node.NodeRuntime
    anchor: Any  # contracts.directory.TrustAnchor
    closers: list[Callable[[], Any]]

    async def close(self) -> None:
        await self.runtime.stop()
        for close in reversed(self.closers):
            result = close()
            if asyncio.iscoroutine(result):
                await result


async def open_node(cfg: NodeConfig) -> OpenNode:
    """Keys, the verified directory (waiting for the registry up to the startup
    timeout), store, audit log, witnessing, console, federation beliefs and transport: a
    started node whose loops are not yet running."""
    import httpx

    from contracts.directory import TrustAnchor
    from contracts.directory_client import DirectoryClient
    from nrm.agency_cli import load_keys, load_party
    from referral_router import telemetry
    from referral_router.console.settings import ConsoleSettings
    from referral_router.federation.trust import PeerTrust
    from referral_router.runtime.directory_memory import SerialMemory
    from referral_router.runtime.node import NodeRuntime, NodeSettings
    from referral_router.runtime.registries import RegistryFetch
    from referral_router.transport.base import TransportError
    from referral_router.transport.factory import open_transport
    from referral_router.transport.kafka import KafkaTransport

    telemetry.setup_from_env(f"nrm-router-{cfg.agency_id}")
    keys, _ = load_keys(cfg.keystore, cfg.passphrase_env)
    if keys.agency_id != cfg.agency_id:
        raise CliError(f"{cfg.keystore} holds {keys.agency_id}'s keys, not {cfg.agency_id}'s")
    try:
        anchor = TrustAnchor.model_validate_json(cfg.anchor_file.read_bytes())
    except (OSError, ValueError) as exc:
        raise CliError(f"{cfg.anchor_file}: not a readable trust anchor: {exc}") from None
    url = f"{cfg.registry_url}/v1/directory"
    verify = verify_context(cfg.ca_file)

    def fetch() -> bytes:
        resp = httpx.get(url, timeout=10, verify=verify)
        resp.raise_for_status()
        return resp.content

    memory = SerialMemory(cfg.data_dir / "directory-serial.json")
    directory = DirectoryClient(
        fetch,
        anchor,
        refresh_every=timedelta(seconds=cfg.directory_refresh),
        max_age=timedelta(seconds=cfg.directory_max_age),
        last_seen=memory.load(),
        remember=memory.remember,
    )
    deadline = time.monotonic() + cfg.startup_timeout
    while True:  # the registry may start after us (compose): wait, then refuse to guess
        try:
            await asyncio.to_thread(directory.refresh)
            break
        except Exception as exc:
            if time.monotonic() > deadline:
                raise CliError(f"no verified directory from {url}: {exc}") from None
            await asyncio.sleep(1.0)

    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    settings = NodeSettings(
        agency_id=cfg.agency_id,
        country=cfg.country,
        store_env=cfg.store_env,
        case_keys_path=cfg.case_keys,
        master_key=master_key(cfg.master_key_file),
        audience=cfg.audience,
        audit_path=cfg.audit_log,
        checkpoint_interval=cfg.checkpoint_interval,
        log_origin_domain=cfg.log_origin,
        witness_url=cfg.witness_url,
        witness_audience=cfg.witness_audience,
        witness_verify=verify,
        poll_interval=cfg.poll_interval,
        forwardings_path=cfg.forwardings,
        console=(
            ConsoleSettings(
                book_path=cfg.console_db,
                peers=(lambda: dict(cfg.console_peers or {})) if cfg.console_peers else None,
                registry_url=cfg.registry_url,
                anchor=anchor,
                secure_cookies=cfg.console_secure_cookies,
            )
            if cfg.console_db is not None
            else None
        ),
        public_url=cfg.public_url,
        notifier=load_party(cfg.notifier_keys) if cfg.notifier_keys else None,
    )
    closers: list[Callable[[], Any]] = []
    peers = None
    if cfg.federation:
        registries = RegistryFetch(verify=verify)
        closers.append(registries.close)
        peers = PeerTrust(cfg.country, anchor, cfg.registry_url, registries)
    transport = open_transport(cfg.transport_url, **cfg.kafka)
    closers.append(transport.close)
    if isinstance(transport, KafkaTransport):
        try:  # a plaintext listener is named now, not retried forever
            await transport.check_tls()
        except TransportError as exc:
            raise CliError(str(exc)) from None
    runtime = NodeRuntime(settings, keys, directory, transport, peers)
    while True:  # the operator's provisioning may not have made our topics and ACLs yet
        try:
            await runtime.start()
            break
        except TransportError as exc:
            if time.monotonic() > deadline:
                raise CliError(f"the broker refuses this node: {exc}") from None
            log.warning("waiting for the broker to know this node: %s", exc)
            await asyncio.sleep(2.0)
    return OpenNode(cfg, runtime, anchor, closers)


async def serve(cfg: NodeConfig, stop: asyncio.Event | None = None) -> None:
    """Run the node until SIGINT/SIGTERM (or `stop`): HTTP API, relay and inbox loop."""
    node = await open_node(cfg)
    where = f"{serving.scheme(cfg.tls)}://{cfg.host}:{cfg.port}"
    print(f"node {cfg.agency_id} ({cfg.country}) on {where}", flush=True)
    if node.runtime.console is not None:
        print(f"console on {where}/console/ (nrm officer add)", flush=True)
    try:
        served = serving.server(node.runtime.app, cfg.host, cfg.port, cfg.tls, cfg.max_body)
    except RuntimeError as exc:
        await node.close()
        raise CliError(str(exc)) from None
    await run_until_stopped(node, [served], stop)


async def run_until_stopped(
    node: OpenNode,
    servers: list[serving.QuietServer],
    stop: asyncio.Event | None = None,
    beside: Any = None,
) -> None:
    """Run `servers` and the node's loops (and `beside`, which has `start()` and
    `stop()`, e.g. a gateway) until SIGINT/SIGTERM or `stop`; then stop the servers,
    `beside`, the node and its transport, in that order."""
    from referral_router import telemetry

    stop = stop or asyncio.Event()
    serving.stop_on_signals(stop)
    loops = asyncio.create_task(node.runtime.run(), name=f"node-{node.cfg.agency_id}")
    loops.add_done_callback(lambda _: stop.set())  # the loops never end on their own
    https = [asyncio.create_task(s.serve(), name="http") for s in servers]
    for http in https:
        http.add_done_callback(lambda _: stop.set())  # a server that fails stops it all
    if beside is not None:
        beside.start()
    try:
        await stop.wait()
    finally:
        node.runtime.feed.close()  # long polls and log streams end now: no server waits
        for server in servers:
            server.should_exit = True
        for http in https:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(http, 10)
        if beside is not None:
            await beside.stop()
        await node.close()
        loops.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await loops
        telemetry.shutdown()
        log.info("node %s stopped", node.cfg.agency_id)
    failed = [h.exception() for h in https if h.done() and not h.cancelled() and h.exception()]
    if failed:
        raise CliError(f"HTTP server failed: {failed[0]}")


def cmd_node_serve(args: argparse.Namespace) -> int:
    logs.setup_from(args)
    cfg = config_from_env(env_with_options(args))
    try:
        serving.run(serve(cfg))
    except KeyboardInterrupt:
        return 0
    return 0


def add_serve_command(
    subparsers: argparse._SubParsersAction,  # type: ignore[type-arg]
    noun: str,
    help: str,
    description: str,
    handler: Callable[[argparse.Namespace], int],
) -> argparse.ArgumentParser:
    """`nrm <noun> serve`, configured by NRM_* variables (its description lists them),
    with --host, --port and the logging options."""
    command = subparsers.add_parser(noun, help=f"run {help}")
    sub = command.add_subparsers(dest=f"{noun}_command", metavar="COMMAND", required=True)
    p = sub.add_parser(
        "serve",
        help=f"serve {help} (configured by NRM_* environment variables)",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", help="overrides NRM_HOST")
    p.add_argument("--port", type=int, help="overrides NRM_PORT")
    logs.add_options(p)
    p.set_defaults(handler=handler)
    return p


def env_with_options(args: argparse.Namespace) -> dict[str, str]:
    """This process's environment with --host and --port applied."""
    env = dict(os.environ)
    if args.port is not None:
        env["NRM_PORT"] = str(args.port)
    if args.host is not None:
        env["NRM_HOST"] = args.host
    return env


def add_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    add_serve_command(subparsers, "node", "one agency's router node", __doc__, cmd_node_serve)


def main(argv: list[str] | None = None) -> int:
    """`python -m nrm.node_cli node serve`: the same command without the other areas."""
    from nrm.cli import CliError as _CliError

    parser = argparse.ArgumentParser(prog="nrm")
    add_commands(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except _CliError as exc:
        print(f"nrm {args.command}: {exc}", flush=True)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
