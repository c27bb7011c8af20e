"""`nrm token`, `nrm dpop` and `nrm url`: what a developer needs to call a running bus.

`nrm token --agency A` prints an access token for A's systems, bound (DPoP, RFC 9449) to
a client key that it keeps in a file (0600) and creates on first use; `nrm dpop METHOD
URL` prints the proof each request needs, made with that key for the token in
`$NRM_TOKEN`. A token copied elsewhere is useless without that key file. `--once`
prints a one-time bearer token instead (one request, at most 120 s).

Against `nrm up` (the defaults) the agency's keystore, its passphrase and the services'
URLs and audiences come from the data folder; against a real deployment pass
`--keystore` (passphrase in `$NRM_KEYSTORE_PASSPHRASE`) and `--audience`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, OKPKey

from contracts import dpop, endpoints
from contracts.agency_token import (
    DEFAULT_ACCESS_LIFETIME,
    MAX_ACCESS_LIFETIME,
    MAX_LIFETIME,
    issue_access_token,
    issue_token,
)
from contracts.directory import KeyUse
from contracts.keystore import AgencyKeys
from nrm import local_bus
from nrm.agency_cli import DEFAULT_PASSPHRASE_ENV, load_keys, write_private_file
from nrm.cli import CliError

TOKEN_ENV = "NRM_TOKEN"


def dpop_key_path(args: argparse.Namespace, agency: str) -> Path:
    given: Path | None = getattr(args, "dpop_key", None)
    return given or local_bus.folder(args) / "clients" / f"{agency}.dpop.jwk"


def agency_keys(args: argparse.Namespace) -> AgencyKeys:
    """From --keystore, else from the local bus's demo keychain."""
    if args.keystore is None:
        return local_bus.demo_keys(args, args.agency)
    keys, _ = load_keys(args.keystore, args.passphrase_env)
    if keys.agency_id != args.agency:
        raise CliError(f"{args.keystore} holds {keys.agency_id}'s keys, not {args.agency}'s")
    return keys


def audience(args: argparse.Namespace) -> str:
    if args.audience:
        return str(args.audience)
    if args.service == "router":
        return endpoints.router_audience(args.node or args.agency)
    if args.service == "registry":
        return f"nrm-registry:{args.country}"
    if args.keystore is None:  # the local bus knows its notifier's audience
        notifier = local_bus.running(args).notifier
        if notifier is not None:
            return notifier.audience
    return endpoints.notifier_audience(args.country)


# --- DPoP key files --------------------------------------------------------------------


def load_or_create_key(path: Path) -> dpop.ProofKey:
    """The client's proof key (a private JWK, 0600), made on first use."""
    if path.exists():
        try:
            key = JWKRegistry.import_key(json.loads(path.read_text()))
        except (OSError, ValueError, JoseError) as exc:
            raise CliError(f"{path}: not a DPoP key: {exc}") from None
        if not isinstance(key, OKPKey | ECKey) or not key.is_private:
            raise CliError(f"{path}: not a private EC or OKP key")
        return key
    key = dpop.generate_key()
    write_private_file(path, json.dumps(key.as_dict(private=True)).encode())
    return key


def token_issuer(token: str) -> str:
    """The `iss` of a token, unverified: only to find the matching key file."""
    try:
        claims = json.loads(jws.extract_compact(token.encode("ascii")).payload)
        return str(claims["iss"])
    except (JoseError, ValueError, KeyError, TypeError, UnicodeError):
        raise CliError("that is not an NRM token (set NRM_TOKEN from `nrm token`)") from None


# --- handlers --------------------------------------------------------------------------


def cmd_token(args: argparse.Namespace) -> int:
    keys = agency_keys(args)
    pair = keys.current(KeyUse.SIGNING)
    aud = audience(args)
    now = datetime.now(UTC)
    try:
        if args.once:
            lifetime = timedelta(seconds=args.lifetime or MAX_LIFETIME.total_seconds())
            token = issue_token(
                keys.agency_id, pair.key_id, pair.ed25519(), aud, lifetime=lifetime, now=now
            )
        else:
            key = load_or_create_key(dpop_key_path(args, keys.agency_id))
            lifetime = (
                timedelta(seconds=args.lifetime) if args.lifetime else DEFAULT_ACCESS_LIFETIME
            )
            token = issue_access_token(
                keys.agency_id,
                pair.key_id,
                pair.ed25519(),
                aud,
                dpop.thumbprint(key),
                lifetime=lifetime,
                now=now,
            )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    print(token)
    if sys.stderr.isatty():
        scheme = "Bearer" if args.once else "DPoP"
        print(
            f"# {scheme} token for {aud}, valid {int(lifetime.total_seconds())} s"
            + ("" if args.once else f"; proofs: nrm dpop METHOD URL (token in ${TOKEN_ENV})"),
            file=sys.stderr,
        )
    return 0


def cmd_dpop(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get(TOKEN_ENV)
    if not token:
        raise CliError(f"no token: set {TOKEN_ENV}=$(nrm token --agency A) or pass --token")
    path = dpop_key_path(args, token_issuer(token))
    if not path.exists():
        raise CliError(f"no DPoP key at {path}: get the token with `nrm token` first")
    key = load_or_create_key(path)
    try:
        proof = dpop.make_proof(
            key, args.method, args.url, access_token=token, now=datetime.now(UTC)
        )
    except dpop.ProofError as exc:
        raise CliError(str(exc)) from None
    print(proof)
    return 0


def cmd_url(args: argparse.Namespace) -> int:
    bus = local_bus.running(args)
    if args.service is None:
        print(f"registry  {bus.registry.url}")
        if bus.notifier is not None:
            print(f"notifier  {bus.notifier.url}")
        for agency, node in bus.nodes.items():
            print(f"node      {node.url}  {agency}")
        return 0
    if args.service == "registry":
        print(bus.registry.url)
    elif args.service == "notifier":
        if bus.notifier is None:
            raise CliError("this bus runs no notifier")
        print(bus.notifier.url)
    else:
        try:
            print(bus.node(args.service).url)
        except KeyError as exc:
            raise CliError(str(exc.args[0])) from None
    return 0


# --- wiring ----------------------------------------------------------------------------


def add_commands(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "token",
        help="print an access token for an agency's system (curl, scripts)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--agency", required=True, help="the agency whose systems call")
    p.add_argument(
        "--for",
        dest="service",
        choices=("router", "notifier", "registry"),
        default="router",
        help="which API the token is for (default: the agency's own node)",
    )
    p.add_argument("--node", help="another agency's node (an oversight body's audit reads)")
    p.add_argument("--once", action="store_true", help="a one-time bearer token instead")
    p.add_argument(
        "--lifetime",
        type=int,
        help=f"seconds (default {int(DEFAULT_ACCESS_LIFETIME.total_seconds())}, at most "
        f"{int(MAX_ACCESS_LIFETIME.total_seconds())}; with --once at most "
        f"{int(MAX_LIFETIME.total_seconds())})",
    )
    p.add_argument("--audience", help="the token's audience, overriding --for")
    p.add_argument("--keystore", type=Path, help="the agency's keystore (default: the bus's)")
    p.add_argument("--passphrase-env", default=DEFAULT_PASSPHRASE_ENV)
    p.add_argument("--dpop-key", type=Path, help="client key file (default under the data)")
    local_bus.add_options(p)
    p.set_defaults(handler=cmd_token)

    p = subparsers.add_parser(
        "dpop",
        help="print the DPoP proof for one request with the token in $NRM_TOKEN",
        description="A DPoP proof (RFC 9449) is good for one request: make a new one for "
        'each call, e.g. curl -H "DPoP: $(nrm dpop POST $NODE/v1/cases)".',
    )
    p.add_argument("method", help="the request's HTTP method, e.g. GET or POST")
    p.add_argument("url", help="the request's URL (its query is ignored)")
    p.add_argument("--token", help=f"the access token (default: ${TOKEN_ENV})")
    p.add_argument("--dpop-key", type=Path, help="client key file (default under the data)")
    local_bus.add_options(p)
    p.set_defaults(handler=cmd_dpop)

    p = subparsers.add_parser("url", help="where the running bus's services listen")
    p.add_argument(
        "service", nargs="?", help="an agency id, 'registry' or 'notifier' (default: all)"
    )
    local_bus.add_options(p)
    p.set_defaults(handler=cmd_url)
