"""`nrm pki` and `nrm kafka`: the local CA, and the broker's topics and ACLs.

    nrm pki init --dir D --country XA            a new CA (ca.pem; ca.key 0600)
    nrm pki issue --dir D broker --name kafka    the brokers' certificate (+ SANs)
    nrm pki issue --dir D operator               the operator's provisioning client
    nrm pki issue --dir D agency xa-police --country XA
    nrm pki issue --dir D service registry --name registry.example
    nrm pki rotate --dir D agency xa-police --country XA
    nrm pki list --dir D                         identities, principals, expiry
    nrm pki export-ca --dir D --out F            the CA certificate alone (public)

    nrm kafka provision --bootstrap H:P --pki D --registry URL --anchor F [--watch S]
        (or --ca-file F --cert F instead of --pki: the operator's certificate alone)

`issue`/`rotate --out FILE` write the identity's file there instead of the folder (the
machine or volume of the service that owns it).

Every file holding a private key is written 0600; nothing prints private material.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nrm.cli import CliError
from nrm.pki import LEAF_DAYS, LOCAL_NAMES, Identity, Kind, LocalCA, PkiError


def _identity(args: argparse.Namespace) -> Identity:
    kind = Kind(args.kind)
    try:
        if kind is Kind.AGENCY:
            if not args.id or not args.country:
                raise CliError("an agency certificate needs its id and --country")
            return Identity(kind, args.id, args.country)
        if kind is Kind.SERVICE:
            if not args.id:
                raise CliError("a service certificate needs its name")
            return Identity(kind, args.id)
        return Identity(kind)
    except PkiError as exc:
        raise CliError(str(exc)) from None


def _names(args: argparse.Namespace) -> list[str]:
    """Operators are clients only; every other identity also serves TLS on its names."""
    if Kind(args.kind) is Kind.OPERATOR:
        return []
    return [*LOCAL_NAMES, *(args.name or [])]


def _principal(identity: Identity) -> str:
    if identity.kind is Kind.AGENCY:
        from referral_router.transport.access import agency_principal

        return agency_principal(identity.country, identity.name)
    if identity.kind is Kind.SERVICE:
        return "(none: not a broker client)"
    return f"User:{identity.kind}"


def _init(args: argparse.Namespace) -> int:
    try:
        ca = LocalCA.init(args.dir, args.country)
    except PkiError as exc:
        raise CliError(str(exc)) from None
    print(f"CA for {args.country} in {ca.folder}: ca.pem (share), ca.key (0600, keep offline)")
    return 0


def _issue(args: argparse.Namespace) -> int:
    identity = _identity(args)
    ca = LocalCA(args.dir)
    try:
        if args.rotate:
            path, previous = ca.rotate(identity, _names(args), args.days, out=args.out)
        else:
            path, previous = ca.issue(identity, _names(args), args.days, out=args.out), None
        cert = ca.certificate(identity, path)
    except PkiError as exc:
        raise CliError(str(exc)) from None
    print(f"{path} (0600): {cert.subject.rfc4514_string()}, principal {_principal(identity)}")
    print(f"valid until {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    if previous is not None:
        print(f"previous key and certificate kept in {previous} until the switch-over")
    return 0


def _export_ca(args: argparse.Namespace) -> int:
    ca = LocalCA(args.dir)
    if not ca.ca_file.exists():
        raise CliError(f"no CA in {args.dir}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(ca.ca_file.read_bytes())
    print(f"CA certificate written to {args.out}")
    return 0


def _list(args: argparse.Namespace) -> int:
    ca = LocalCA(args.dir)
    if not ca.exists():
        raise CliError(f"no CA in {args.dir}")
    from nrm.pki import pem_certificates

    now = datetime.now(UTC)
    for path in sorted(args.dir.glob("*.pem")):
        if path.name == "ca.pem" or path.name.endswith(".prev.pem"):
            continue
        cert = pem_certificates(path.read_bytes())[0]
        days = (cert.not_valid_after_utc - now).days
        flag = "EXPIRED" if days < 0 else ("rotate soon" if days < 14 else "")
        print(f"{path.stem:32} {cert.subject.rfc4514_string():40} {days:4d} days {flag}")
    return 0


async def _provision(args: argparse.Namespace) -> int:
    import httpx

    from contracts.directory import TrustAnchor
    from contracts.directory_client import DirectoryClient
    from nrm import serving
    from nrm.broker import keep_provisioned
    from nrm.serving import verify_context
    from referral_router.transport.access import plan
    from referral_router.transport.kafka import KafkaTls, KafkaTransport
    from referral_router.transport.kafka_access import provision

    try:
        anchor = TrustAnchor.model_validate_json(args.anchor.read_bytes())
    except (OSError, ValueError) as exc:
        raise CliError(f"{args.anchor}: not a readable trust anchor: {exc}") from None
    if args.pki is not None:
        tls = KafkaTls(args.pki / "ca.pem", args.pki / "operator.pem")
    elif args.ca_file and args.cert:
        tls = KafkaTls(args.ca_file, args.cert)
    else:
        raise CliError("give --pki DIR, or --ca-file and --cert (the operator's certificate)")
    verify = verify_context(tls.ca_file)
    url = f"{args.registry.rstrip('/')}/v1/directory"
    client = DirectoryClient(
        lambda: httpx.get(url, timeout=15, verify=verify).raise_for_status().content, anchor
    )
    directory = await asyncio.to_thread(client.refresh)
    if args.dry_run:
        access = plan(directory)
        for topic in sorted(access.topics):
            print(f"topic {topic.name} partitions={topic.partitions}")
        for acl in sorted(access.acls):
            print(acl)
        return 0
    operator = KafkaTransport(args.bootstrap, tls=tls)
    try:
        delta = await provision(operator, directory)
        print(
            f"directory {directory.country} serial {directory.serial}: "
            f"{len(delta.topics)} topic(s) created, {len(delta.create)} ACL(s) added, "
            f"{len(delta.delete)} withdrawn"
        )
        if args.watch:
            print(f"following the directory every {args.watch:g} s; Ctrl-C stops", flush=True)
            stop = asyncio.Event()
            serving.stop_on_signals(stop)  # SIGTERM as Ctrl-C: the operator's client closed
            await keep_provisioned(operator, client.refresh, stop, args.watch)
    finally:
        await operator.close()
    return 0


def _kafka_provision(args: argparse.Namespace) -> int:
    from nrm import serving

    try:
        return serving.run(_provision(args))
    except KeyboardInterrupt:
        return 0
    except Exception as exc:
        if isinstance(exc, CliError):
            raise
        print(f"nrm kafka provision: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _identity_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dir", type=Path, required=True, help="the PKI folder")
    p.add_argument("kind", choices=[k.value for k in Kind])
    p.add_argument("id", nargs="?", help="agency id, or service name")
    p.add_argument("--country", help="an agency's country (ISO code)")
    p.add_argument(
        "--name",
        action="append",
        help="a host name or IP it serves on (repeat); localhost and 127.0.0.1 always are",
    )
    p.add_argument("--days", type=int, default=LEAF_DAYS, help=f"validity (default {LEAF_DAYS})")
    p.add_argument("--out", type=Path, help="write the key and certificate here instead")


def add_commands(sub: Any) -> None:
    pki = sub.add_parser("pki", help="the local CA: TLS certificates for Kafka and HTTP")
    actions = pki.add_subparsers(dest="pki_command", metavar="ACTION", required=True)
    p = actions.add_parser("init", help="create the CA (once)")
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("--country", required=True)
    p.set_defaults(handler=_init)
    p = actions.add_parser("issue", help="a key and certificate for one identity")
    _identity_arguments(p)
    p.set_defaults(handler=_issue, rotate=False)
    p = actions.add_parser("rotate", help="a new key and certificate, the old kept as .prev")
    _identity_arguments(p)
    p.set_defaults(handler=_issue, rotate=True)
    p = actions.add_parser("export-ca", help="write the CA certificate (public) to a file")
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(handler=_export_ca)
    p = actions.add_parser("list", help="identities, subjects, days left")
    p.add_argument("--dir", type=Path, required=True)
    p.set_defaults(handler=_list)

    kafka = sub.add_parser("kafka", help="the broker's topics and ACLs, from the directory")
    actions = kafka.add_subparsers(dest="kafka_command", metavar="ACTION", required=True)
    p = actions.add_parser(
        "provision",
        help="create topics and make ACLs match the signed directory (as the operator)",
    )
    p.add_argument("--bootstrap", required=True, help="host:port[,host:port]")
    p.add_argument("--pki", type=Path, help="folder with ca.pem and operator.pem")
    p.add_argument("--ca-file", type=Path, help="instead of --pki: the CA certificate")
    p.add_argument("--cert", type=Path, help="instead of --pki: operator.pem (key + chain)")
    p.add_argument("--registry", required=True, help="the registry's base URL")
    p.add_argument("--anchor", type=Path, required=True, help="the registry's trust anchor")
    p.add_argument("--watch", type=float, metavar="SECONDS", help="keep following it")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.set_defaults(handler=_kafka_provision)
