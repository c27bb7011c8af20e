"""`nrm notifier serve`: the notifier for one or several agencies, as its own process.

The notifier has its own identity (`--identity`, a keystore made with `nrm agency init`,
passphrase in NRM_NOTIFIER_PASSPHRASE) and never an agency's keys: its tokens are scoped
to reading the nodes' logs (clear parts), appending escalations and reading its agencies'
subscriptions, whose secrets the registry seals to its key. Each `--agency ID@ROUTER_URL`
names an agency it serves. The directory is fetched from the registry and verified
against the pinned trust anchor before any token is accepted or any escalation addressed.
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
from nrm.agency_cli import DEFAULT_REGISTRY_URL, load_keys, load_public
from nrm.cli import CliError
from nrm.serving import add_tls_arguments
from referral_router import telemetry

DEFAULT_DB = Path(".nrm-data/notifier.sqlite")

log = logging.getLogger("nrm.notifier")


DEFAULT_IDENTITY_PASSPHRASE_ENV = "NRM_NOTIFIER_PASSPHRASE"


def _served(spec: str) -> ServedAgency:
    agency_id, sep, router_url = spec.partition("@")
    if "=" in agency_id:
        raise CliError(
            f"--agency {spec!r}: the notifier takes no agency keystore (ID@ROUTER_URL); it "
            "acts with its own --identity"
        )
    if not (sep and agency_id and router_url.startswith(("http://", "https://"))):
        raise CliError(f"--agency {spec!r}: expected ID@ROUTER_URL")
    # nrm node serve's default audience (NRM_AUDIENCE), not the URL it is reached by
    return ServedAgency(agency_id, router_url, router_audience=router_audience(agency_id))


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
    verify = serving.verify_context(args.ca_file)
    directory = DirectoryClient(
        lambda: (
            httpx.get(f"{registry}/v1/directory", timeout=15, verify=verify)
            .raise_for_status()
            .content
        ),
        anchor,
    )
    agencies = [_served(spec) for spec in args.agency]
    identity, _ = load_keys(args.identity, args.passphrase_env, "notifier")
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
        verify=verify,
    )
    clock = shifted_clock(args.domain_clock_file) if args.domain_clock_file else system_clock
    runtime = NotifierRuntime(settings, agencies, directory.current, identity, clock=clock)
    telemetry.setup_from_env("nrm-notifier")  # webhook deliveries continue nodes' traces
    tls = serving.tls_from_args(args)
    server = serving.server(runtime.app, args.host, args.port, tls, args.max_body)

    async def main() -> None:
        """Until SIGTERM/SIGINT: HTTP stops first, then the loops and the store."""
        loop = asyncio.create_task(runtime.run())
        try:
            await serving.serve_until_stopped(server)
        finally:
            await runtime.stop()
            await loop
            telemetry.shutdown()

    served = ", ".join(a.agency_id for a in agencies)
    where = f"{serving.scheme(tls)}://{args.host}:{args.port}"
    print(f"notifier for {served} on {where} (store {args.db})", flush=True)
    try:
        serving.run(main())
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
        metavar="ID@ROUTER_URL",
        help="an agency served (repeat for several)",
    )
    p.add_argument("--identity", type=Path, required=True, help="the notifier's own keystore")
    p.add_argument("--passphrase-env", default=DEFAULT_IDENTITY_PASSPHRASE_ENV)
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
    p.add_argument(
        "--ca-file",
        type=Path,
        default=os.environ.get("NRM_CA_FILE") or None,
        help="the CA the registry's and nodes' certificates chain to (default NRM_CA_FILE)",
    )
    add_tls_arguments(p)
    p.set_defaults(handler=cmd_serve)
