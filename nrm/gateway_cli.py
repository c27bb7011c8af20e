"""`nrm gateway serve`: a country's cross-border gateway as its own OS process.

The gateway is the gateway agency's node (configured exactly as `nrm node serve`, by the
same ``NRM_*`` variables, with its own keystore, store and broker identity) plus the
border towards one peer country: the pump posts forwardings to the peer's gateway, and
the door, on its own address, checks what the peer posts and publishes it on the
counterpart node's inbox topic of this country's bus. Besides the node's variables:

==========================  ===============================================================
``NRM_GATEWAY_PEER``        the peer country's code, e.g. ``XB`` (required)
``NRM_GATEWAY_TLS_FILE``    the gateway's key and certificate chain, PEM, from its
                            country's CA (``nrm pki``): the border is mutual TLS, each
                            side pinned to the certificate its federation agreement names
                            for the other (required)
``NRM_GATEWAY_HOST``        where the doors listen (default ``NRM_HOST``)
``NRM_GATEWAY_PORT``        the border door's port (default 8600); the peer's registry
                            publishes its URL
``NRM_GATEWAY_ADMIN_PORT``  the local door: crossings for the gateway and oversight,
                            ``/readyz`` with what is pending (default 8601; HTTPS with the
                            node's ``NRM_TLS_CERT_FILE``)
``NRM_GATEWAY_DIR``         the crossing ledger's folder (default ``<NRM_DATA_DIR>/gateway``)
==========================  ===============================================================

The border door waits (up to the node's startup timeout) for this country's registry to
name the peer's gateway certificate: it never serves an unpinned peer.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING

from nrm import logs, serving
from nrm.cli import CliError
from nrm.node_cli import (
    add_serve_command,
    config_from_env,
    env_with_options,
    open_node,
    run_until_stopped,
)

if TYPE_CHECKING:
    from referral_router.runtime.gateway import GatewayRuntime

DEFAULT_PORT = 8600
DEFAULT_ADMIN_PORT = 8601


def _port(env: dict[str, str], name: str, default: int) -> int:
    try:
        return int(env.get(name) or default)
    except ValueError:
        raise CliError(f"{name}={env[name]!r} is not a port") from None


async def serve(env: dict[str, str], stop: asyncio.Event | None = None) -> None:
    from referral_router.runtime.gateway import GatewayRuntime

    cfg = config_from_env(env)
    peer = env.get("NRM_GATEWAY_PEER", "").strip()
    if not peer or peer == cfg.country:
        raise CliError("NRM_GATEWAY_PEER must name the peer country, e.g. XB")
    tls_file = env.get("NRM_GATEWAY_TLS_FILE", "").strip()
    if not tls_file:
        raise CliError("NRM_GATEWAY_TLS_FILE must name the gateway's key and certificate")
    host = env.get("NRM_GATEWAY_HOST") or cfg.host
    port = _port(env, "NRM_GATEWAY_PORT", DEFAULT_PORT)
    admin_port = _port(env, "NRM_GATEWAY_ADMIN_PORT", DEFAULT_ADMIN_PORT)
    folder = Path(env.get("NRM_GATEWAY_DIR") or cfg.data_dir / "gateway")
    node = await open_node(cfg)
    gateway = GatewayRuntime(
        cfg.country,
        peer,
        folder,
        cfg.registry_url,
        node.anchor,
        node.runtime,
        Path(tls_file),
        registry_verify=serving.verify_context(cfg.ca_file),
    )
    try:
        pinned = await _pinned_peer(gateway, cfg.startup_timeout)
        servers = [
            serving.server(node.runtime.app, cfg.host, cfg.port, cfg.tls, cfg.max_body),
            serving.server(
                gateway.border_app,
                host,
                port,
                serving.ServerTls(Path(tls_file), client_pins=pinned),
                cfg.max_body,
            ),
            serving.server(gateway.app, host, admin_port, cfg.tls, cfg.max_body),
        ]
    except (CliError, RuntimeError) as exc:
        await gateway.stop()
        await node.close()
        raise CliError(str(exc)) from None
    where = serving.scheme(cfg.tls)
    print(
        f"gateway {cfg.country} -> {peer}: border on https://{host}:{port} (mutual TLS), "
        f"crossings on {where}://{host}:{admin_port}, "
        f"node {cfg.agency_id} on {where}://{cfg.host}:{cfg.port}",
        flush=True,
    )
    await run_until_stopped(node, servers, stop, beside=gateway)


async def _pinned_peer(gateway: GatewayRuntime, timeout: float) -> str:
    """The peer gateway's certificate, once this country's registry names it."""
    from contracts.federation import BorderRefused
    from referral_router.federation.trust import PeerUnreachable

    deadline = time.monotonic() + timeout
    while True:
        try:
            return await asyncio.to_thread(gateway.pinned_peer_certificate)
        except (BorderRefused, PeerUnreachable) as exc:
            reason = getattr(exc, "reason", str(exc))
            if time.monotonic() > deadline:
                raise CliError(f"no pinned certificate for the peer's gateway: {reason}") from None
            await asyncio.sleep(1.0)


def cmd_gateway_serve(args: argparse.Namespace) -> int:
    logs.setup_from(args)
    try:
        serving.run(serve(env_with_options(args)))
    except KeyboardInterrupt:
        return 0
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    add_serve_command(
        subparsers,
        "gateway",
        "a country's cross-border gateway (its node and the border)",
        __doc__ or "",
        cmd_gateway_serve,
    )
