"""`nrm gateway serve`: a country's cross-border gateway as its own OS process.

The gateway is the gateway agency's node (configured exactly as `nrm node serve`, by the
same ``NRM_*`` variables, with its own keystore, store and broker identity) plus the
border towards one peer country: the pump posts forwardings to the peer's gateway, and
the door, on its own address, checks what the peer posts and publishes it on the
counterpart node's inbox topic of this country's bus. Besides the node's variables:

==========================  ===============================================================
``NRM_GATEWAY_PEER``        the peer country's code, e.g. ``XB`` (required)
``NRM_GATEWAY_HOST``        where the door listens (default ``NRM_HOST``)
``NRM_GATEWAY_PORT``        its port (default 8600); the peer's registry publishes its URL
``NRM_GATEWAY_DIR``         the crossing ledger's folder (default ``<NRM_DATA_DIR>/gateway``)
==========================  ===============================================================
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from nrm import logs
from nrm.cli import CliError
from nrm.node_cli import (
    add_serve_command,
    config_from_env,
    env_with_options,
    open_node,
    run_until_stopped,
)

DEFAULT_PORT = 8600


async def serve(env: dict[str, str], stop: asyncio.Event | None = None) -> None:
    from referral_router.runtime.gateway import GatewayRuntime

    cfg = config_from_env(env)
    peer = env.get("NRM_GATEWAY_PEER", "").strip()
    if not peer or peer == cfg.country:
        raise CliError("NRM_GATEWAY_PEER must name the peer country, e.g. XB")
    host = env.get("NRM_GATEWAY_HOST") or cfg.host
    try:
        port = int(env.get("NRM_GATEWAY_PORT") or DEFAULT_PORT)
    except ValueError:
        raise CliError(f"NRM_GATEWAY_PORT={env['NRM_GATEWAY_PORT']!r} is not a port") from None
    folder = Path(env.get("NRM_GATEWAY_DIR") or cfg.data_dir / "gateway")
    node = await open_node(cfg)
    gateway = GatewayRuntime(cfg.country, peer, folder, cfg.registry_url, node.anchor, node.runtime)
    print(
        f"gateway {cfg.country} -> {peer} on http://{host}:{port}, "
        f"node {cfg.agency_id} on http://{cfg.host}:{cfg.port}",
        flush=True,
    )
    apps = [(node.runtime.app, cfg.host, cfg.port), (gateway.app, host, port)]
    await run_until_stopped(node, apps, stop, beside=gateway)


def cmd_gateway_serve(args: argparse.Namespace) -> int:
    logs.setup_from(args)
    try:
        asyncio.run(serve(env_with_options(args)))
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
