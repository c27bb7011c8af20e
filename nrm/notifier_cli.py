"""`nrm notifier serve`: the notifier for one or several agencies, as its own process.

Each `--agency ID=KEYSTORE@ROUTER_URL` names an agency it serves: the keystore signs its
tokens (router, registry) and opens its subscription secrets; all keystores share one
passphrase variable. The directory is fetched from the registry and verified against
the pinned trust anchor before any token is accepted or any escalation addressed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import httpx

from contracts.agency_token import system_clock
from contracts.directory import TrustAnchor
from contracts.directory_client import DirectoryClient
from contracts.endpoints import router_audience
from notifier import NotifierRuntime, NotifierSettings, RetryPolicy, ServedAgency
from nrm import logs, serving
from nrm.agency_cli import DEFAULT_PASSPHRASE_ENV, DEFAULT_REGISTRY_URL, load_keys, load_public
from nrm.cli import CliError
from referral_router import telemetry

DEFAULT_DB = Path(".nrm-data/notifier.sqlite")

log = logging.getLogger("nrm.notifier")


def _served(spec: str, passphrase_env: str) -> ServedAgency:
    agency_id, sep, rest = spec.partition("=")
    keystore, sep2, router_url = rest.partition("@")
    if not (sep and sep2 and agency_id and keystore and router_url):
        raise CliError(f"--agency {spec!r}: expected ID=KEYSTORE@ROUTER_URL")
    keys, _ = load_keys(Path(keystore), passphrase_env)
    if keys.agency_id != agency_id:
        raise CliError(f"{keystore} holds the keys of {keys.agency_id}, not {agency_id}")
    # nrm node serve's default audience (NRM_AUDIENCE), not the URL it is reached by
    return ServedAgency(agency_id, router_url, keys, router_audience=router_audience(agency_id))


def shifted_clock(path: Path) -> Callable[[], datetime]:
    """Domain time moved by the seconds written in `path` (read on each change of the
    file; missing or empty: no shift). For demos and drills that must see a deadline
    pass without waiting for it; tokens and signatures keep the system clock."""
    seen: list[tuple[float, float]] = [(-1.0, 0.0)]

    def now() -> datetime:
        try:
            stamp = path.stat().st_mtime
        except OSError:
            return system_clock()
        if stamp != seen[0][0]:
            text = path.read_text().strip()
            try:
                seen[0] = (stamp, float(text) if text else 0.0)
            except ValueError:
                log.warning("%s: %r is not a number of seconds; clock not shifted", path, text)
                seen[0] = (stamp, 0.0)
        return system_clock() + timedelta(seconds=seen[0][1])

    return now


def cmd_serve(args: argparse.Namespace) -> int:
    logs.setup_from(args)
    try:
        anchor = TrustAnchor.model_validate_json(Path(args.anchor).read_bytes())
    except (OSError, ValueError) as exc:
        raise CliError(f"{args.anchor}: not a readable trust anchor: {exc}") from None
    registry = args.registry.rstrip("/")
    directory = DirectoryClient(
        lambda: httpx.get(f"{registry}/v1/directory", timeout=15).raise_for_status().content,
        anchor,
    )
    agencies = [_served(spec, args.passphrase_env) for spec in args.agency]
    operator = load_public(args.operator_keystore) if args.operator_keystore else None
    settings = NotifierSettings(
        db_path=args.db,
        audience=args.audience or f"http://{args.host}:{args.port}",
        registry_url=registry,
        registry_audience=args.registry_audience or f"nrm-registry:{anchor.country}",
        operator_id=operator.agency_id if operator else None,
        operator_keys=operator.records if operator else (),
        retry=RetryPolicy(max_attempts=args.max_attempts),
        subscription_refresh_seconds=args.subscription_refresh,
    )
    clock = shifted_clock(args.domain_clock_file) if args.domain_clock_file else system_clock
    runtime = NotifierRuntime(settings, agencies, directory.current, clock=clock)
    telemetry.setup_from_env("nrm-notifier")  # webhook deliveries continue nodes' traces

    async def main() -> None:
        """Until SIGTERM/SIGINT: HTTP stops first, then the loops and the store."""
        loop = asyncio.create_task(runtime.run())
        try:
            await serving.serve_until_stopped(serving.server(runtime.app, args.host, args.port))
        finally:
            await runtime.stop()
            await loop
            telemetry.shutdown()

    served = ", ".join(a.agency_id for a in agencies)
    print(f"notifier for {served} on http://{args.host}:{args.port} (store {args.db})", flush=True)
    try:
        asyncio.run(main())
    except RuntimeError as exc:
        raise CliError(str(exc)) from None
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    notifier = subparsers.add_parser("notifier", help="webhooks, SSE, deadlines, escalation")
    sub = notifier.add_subparsers(dest="notifier_command", metavar="ACTION", required=True)
    p = sub.add_parser("serve", help="follow the agencies' nodes and notify their systems")
    p.add_argument(
        "--agency",
        action="append",
        required=True,
        metavar="ID=KEYSTORE@ROUTER_URL",
        help="an agency served (repeat for several)",
    )
    p.add_argument("--passphrase-env", default=DEFAULT_PASSPHRASE_ENV)
    p.add_argument("--registry", default=os.environ.get("NRM_REGISTRY_URL", DEFAULT_REGISTRY_URL))
    p.add_argument("--registry-audience", help="default: nrm-registry:<anchor country>")
    p.add_argument("--anchor", type=Path, required=True, help="the registry's trust anchor")
    p.add_argument(
        "--operator-keystore", type=Path, help="the operator's keystore (public part read)"
    )
    p.add_argument("--db", type=Path, default=DEFAULT_DB)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8720)
    p.add_argument("--audience", help="this API's token audience (default: its URL)")
    p.add_argument("--max-attempts", type=int, default=8)
    logs.add_options(p)
    p.add_argument(
        "--subscription-refresh",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how often each agency's subscriptions are read from the registry",
    )
    p.add_argument(
        "--domain-clock-file",
        type=Path,
        help="demos and drills only: seconds to add to the domain clock (deadlines), read "
        "from this file whenever it changes",
    )
    p.set_defaults(handler=cmd_serve)
