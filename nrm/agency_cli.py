"""`nrm agency`, `nrm directory` and `nrm registry`: keys, registration and the directory.

Private keys live only in passphrase-sealed keystore files (mode 0600); nothing here
prints private material. Writes to the registry are signed with the operator's
keystore, as the registry accepts changes only from its operator.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from contracts.agency_token import FixedParty, issue_token
from contracts.directory import (
    Directory,
    DirectoryError,
    KeyUse,
    SignedDirectory,
    TrustAnchor,
    b64url_decode,
    verify_directory,
)
from contracts.keystore import (
    AgencyKeys,
    KeystoreError,
    KeystorePublic,
    generate_agency_keys,
    open_keystore,
    read_public,
    rotated,
    seal_keystore,
)
from contracts.problems import Problem
from contracts.vocabulary import Role, ServiceKind
from nrm import logs
from nrm.cli import CliError
from nrm.serving import add_tls_arguments, verify_context

DEFAULT_PASSPHRASE_ENV = "NRM_KEYSTORE_PASSPHRASE"
DEFAULT_OPERATOR_PASSPHRASE_ENV = "NRM_OPERATOR_PASSPHRASE"
DEFAULT_REGISTRY_URL = "http://127.0.0.1:8700"


def scrypt_cost() -> int:
    """log2 of scrypt's N for new keystores; tests lower it through the environment."""
    return int(os.environ.get("NRM_KEYSTORE_SCRYPT_LOG2_N", "15"))


# --- keystore files --------------------------------------------------------------------


def secret_from_env(name: str, env: dict[str, str] | None = None) -> str | None:
    """`name`'s value, or the content of the file `<name>_FILE` names (container
    secrets are files: the value never sits in the process environment)."""
    env = dict(os.environ) if env is None else env
    if name in env:
        return env[name]
    path = env.get(f"{name}_FILE")
    if not path:
        return None
    try:
        return Path(path).read_text().rstrip("\r\n")
    except OSError as exc:
        raise CliError(f"{name}_FILE={path}: {exc.strerror}") from None


def passphrase(env_var: str, *, confirm: bool = False, what: str = "keystore") -> str:
    """From the named environment variable (or the file `<env_var>_FILE` names), else a
    terminal prompt; never empty."""
    value = secret_from_env(env_var)
    if value is None:
        if not sys.stdin.isatty():
            raise CliError(f"a {what} passphrase is required: set {env_var} or use a terminal")
        value = getpass.getpass(f"{what} passphrase: ")
        if confirm and getpass.getpass(f"repeat {what} passphrase: ") != value:
            raise CliError("passphrases differ")
    if not value:
        raise CliError(f"the {what} passphrase must not be empty")
    return value


def write_private_file(path: Path, data: bytes) -> None:
    """Atomically, created 0600 from the start (never briefly world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None


def load_keys(path: Path, env_var: str, what: str = "keystore") -> tuple[AgencyKeys, str]:
    """The keys and the passphrase that opened them (to reseal after a rotation)."""
    data = _read(path)
    secret = passphrase(env_var, what=what)
    try:
        return open_keystore(data, secret), secret
    except KeystoreError as exc:
        raise CliError(f"{path}: {exc}") from None


def load_public(path: Path) -> KeystorePublic:
    try:
        return read_public(_read(path))
    except KeystoreError as exc:
        raise CliError(f"{path}: {exc}") from None


def load_party(path: Path) -> FixedParty:
    """A service identity (the notifier) from its public keys file, or its keystore's
    public part: never its private keys."""
    public = load_public(path)
    return FixedParty(public.agency_id, public.records)


def fingerprint(public_key: bytes) -> str:
    return "sha256:" + hashlib.sha256(public_key).hexdigest()[:32]


# --- registry calls --------------------------------------------------------------------


def _client(url: str) -> httpx.Client:
    """To the registry; an https:// one is checked against NRM_CA_FILE (else the system)."""
    return httpx.Client(base_url=url.rstrip("/"), timeout=15.0, verify=verify_context())


def _call(
    url: str, method: str, path: str, *, token: str | None = None, json: Any = None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with _client(url) as http:
            r = http.request(method, path, json=json, headers=headers)
    except httpx.HTTPError as exc:
        raise CliError(f"registry at {url} unreachable: {exc}") from None
    if r.status_code >= 400:
        raise CliError(f"registry refused ({r.status_code}): {_refusal(r)}")
    return r


def _refusal(r: httpx.Response) -> str:
    """A problem's detail, and every field at fault (contracts.problems)."""
    try:
        found = Problem.model_validate_json(r.content)
    except ValueError:
        return r.text[:200]
    fields = "; ".join(f"{'.'.join(map(str, e.loc))}: {e.msg}" for e in found.errors or ())
    return f"{found.detail} [{fields}]" if fields else found.detail


def _audience(args: argparse.Namespace) -> str:
    """The registry's token audience: given, or from the (public) directory's country.
    Reading the country unverified is harmless: a wrong audience only fails auth."""
    if getattr(args, "audience", None):
        return str(args.audience)
    raw = _call(args.registry, "GET", "/v1/directory").content
    try:
        signed = SignedDirectory.from_bytes(raw)
        country = Directory.model_validate_json(b64url_decode(signed.directory)).country
    except (DirectoryError, ValueError) as exc:
        raise CliError(f"cannot read the registry's country: {exc}") from None
    return f"nrm-registry:{country}"


def _operator_token(args: argparse.Namespace) -> str:
    operator, _ = load_keys(args.operator_keystore, args.operator_passphrase_env, "operator")
    pair = operator.current(KeyUse.SIGNING)
    return issue_token(operator.agency_id, pair.key_id, pair.ed25519(), _audience(args))


def _key_inputs(records: list[Any]) -> list[dict[str, str]]:
    return [
        {"key_id": r.key_id, "use": str(r.use), "alg": str(r.alg), "public_key": r.public_key}
        for r in records
    ]


# --- handlers --------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    path: Path = args.keystore
    if path.exists() and not args.force:
        raise CliError(f"{path} exists; pass --force to replace it (its keys would be lost)")
    secret = passphrase(args.passphrase_env, confirm=True)
    keys = generate_agency_keys(args.agency)
    write_private_file(path, seal_keystore(keys, secret, log2_n=scrypt_cost()))
    print(f"keystore {path} (mode 0600) for agency {keys.agency_id}")
    for pair in keys.pairs:
        print(f"  {pair.use:<10} {pair.key_id}  {pair.alg}  {fingerprint(pair.public_key)}")
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    public = load_public(args.keystore)
    body = {
        "id": public.agency_id,
        "name": args.name,
        "country": args.country,
        "roles": args.role,
        "services": args.service or [],
        "endpoints": {"router_url": args.router_url, "webhook_url": args.webhook_url},
        "keys": _key_inputs([public.current(u) for u in KeyUse]),
    }
    r = _call(args.registry, "POST", "/v1/agencies", token=_operator_token(args), json=body)
    print(f"registered {r.json()['id']} ({', '.join(r.json()['roles'])})")
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    """New pairs are sealed into a temporary keystore first and only take its place once
    the registry accepted them, so neither side ends up with keys the other lacks."""
    keys, secret = load_keys(args.keystore, args.passphrase_env)
    uses = tuple(KeyUse) if args.use == "both" else (KeyUse(args.use),)
    new_keys, new = rotated(keys, uses)
    sealed = seal_keystore(new_keys, secret, log2_n=scrypt_cost())
    token = _operator_token(args)
    body = {
        "keys": _key_inputs([p.public_record() for p in new]),
        "grace_hours": args.grace_hours,
    }
    _call(args.registry, "POST", f"/v1/agencies/{keys.agency_id}/keys", token=token, json=body)
    write_private_file(args.keystore, sealed)
    for pair in new:
        print(f"rotated {pair.use}: now {pair.key_id}  {fingerprint(pair.public_key)}")
    print(
        f"old keys kept in {args.keystore} (retired in the registry; they verify what "
        f"reaches the bus within {args.grace_hours:g} h)"
    )
    return 0


def cmd_compromise(args: argparse.Namespace) -> int:
    """Report a key stolen or feared so: every node refuses what reaches the transport
    signed with it from then on. The agency then rotates its keys."""
    body: dict[str, Any] = {"reason": args.reason}
    if args.since:
        body["compromised_at"] = args.since
    path = f"/v1/agencies/{args.agency}/keys/{args.key_id}/compromise"
    r = _call(args.registry, "POST", path, token=_operator_token(args), json=body)
    key = next(k for k in r.json()["keys"] if k["key_id"] == args.key_id)
    print(f"{args.agency}/{args.key_id} compromised from {key['compromised_at']}")
    print("nothing that reaches the bus signed with it counts; rotate the agency's keys now")
    return 0


def _status_command(status: str) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        body = {"status": status, "reason": args.reason}
        path = f"/v1/agencies/{args.agency}/status"
        r = _call(args.registry, "POST", path, token=_operator_token(args), json=body)
        print(f"{r.json()['id']} is now {r.json()['status']}")
        return 0

    return handler


def cmd_directory_show(args: argparse.Namespace) -> int:
    try:
        anchor = TrustAnchor.model_validate_json(_read(args.anchor))
    except ValueError as exc:
        raise CliError(f"{args.anchor}: not a trust anchor: {exc}") from None
    raw = _call(args.registry, "GET", "/v1/directory").content
    try:
        d = verify_directory(raw, anchor, args.last_serial)
    except DirectoryError as exc:
        raise CliError(f"directory refused: {type(exc).__name__}: {exc}") from None
    if args.json:
        print(d.model_dump_json(indent=2))
        return 0
    print(f"directory {d.country}  serial {d.serial}  issued {d.issued_at.isoformat()}")
    print(f"  verified against anchor {anchor.key_id} ({args.anchor})")
    print(f"  hash sha256:{d.directory_hash()}")
    print(f"agencies ({len(d.agencies)}):")
    for a in d.agencies:
        print(f"  {a.id:<24} {a.status:<9} {', '.join(a.roles)}")
        if a.services:
            print(f"  {'':<24} services: {', '.join(a.services)}")
        for k in a.keys:
            until = f" until {k.valid_until.isoformat()}" if k.valid_until else ""
            print(f"  {'':<24} {k.use:<10} {k.key_id} {k.status}{until}")
    print(f"agreement: {d.agreement.get('name')}")
    for category, by_role in sorted(d.agreement.get("grants", {}).items()):
        grants = ", ".join(f"{r}={c}" for r, c in sorted(by_role.items()))
        print(f"  {category:<21} {grants}")
    return 0


def cmd_registry_anchor(args: argparse.Namespace) -> int:
    public = load_public(args.keystore)
    signing = public.current(KeyUse.SIGNING)
    anchor = TrustAnchor(country=args.country, key_id=signing.key_id, public_key=signing.public_key)
    return _emit(anchor.model_dump_json(indent=2) + "\n", args.out, "trust anchor")


def _emit(text: str, out: Path | None, what: str) -> int:
    """Public material to a file (saying so), or to standard output."""
    if out:
        out.write_text(text)
        print(f"{what} written to {out}")
    else:
        print(text, end="")
    return 0


def public_part(keystore: Path) -> str:
    """The keystore's public part alone (no KDF parameters, no ciphertext): what another
    service is given of this identity, e.g. the notifier's keys for nodes and registry."""
    doc = json.loads(_read(keystore))
    public = {k: doc[k] for k in ("format", "agency_id", "public") if k in doc}
    load_public(keystore)  # refuses anything that is not a keystore
    return json.dumps(public, indent=2) + "\n"


def cmd_public(args: argparse.Namespace) -> int:
    text = public_part(args.keystore)
    return _emit(text, args.out, f"public keys of {json.loads(text)['agency_id']}")


def cmd_registry_serve(args: argparse.Namespace) -> int:
    from nrm import serving
    from registry import Registry, RegistryConfig, create_app

    logs.setup_from(args)
    own, _ = load_keys(args.keystore, args.passphrase_env, "registry")
    operator = load_public(args.operator_keystore)
    signing = own.current(KeyUse.SIGNING)
    config = RegistryConfig(
        country=args.country,
        signing_key=signing.ed25519(),
        signing_key_id=signing.key_id,
        operator_id=operator.agency_id,
        operator_keys=operator.records,
        audience=args.audience or "",
        notifier=load_party(args.notifier_keys) if args.notifier_keys else None,
    )
    env = None
    if args.db:
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(args.db)}
        args.db.parent.mkdir(parents=True, exist_ok=True)
    elif "POSTGRES_PASSWORD_FILE" in os.environ:
        env = {**os.environ, "POSTGRES_PASSWORD": secret_from_env("POSTGRES_PASSWORD") or ""}
    registry = Registry(config, env=env)
    tls = serving.tls_from_args(args)
    where = f"{serving.scheme(tls)}://{args.host}:{args.port}"
    print(f"registry {args.country} on {where} (anchor {signing.key_id})", flush=True)
    served = serving.server(create_app(registry), args.host, args.port, tls, args.max_body)
    try:  # until SIGTERM/SIGINT; then the store is closed (and its WAL checkpointed)
        serving.run(serving.serve_until_stopped(served))
    except RuntimeError as exc:
        raise CliError(str(exc)) from None
    finally:
        registry.close()
    return 0


# --- wiring ----------------------------------------------------------------------------


def _registry_args(p: argparse.ArgumentParser, operator: bool = True) -> None:
    p.add_argument("--registry", default=os.environ.get("NRM_REGISTRY_URL", DEFAULT_REGISTRY_URL))
    p.add_argument("--audience", help="token audience (default: nrm-registry:<country>)")
    if operator:
        p.add_argument("--operator-keystore", type=Path, required=True)
        p.add_argument("--operator-passphrase-env", default=DEFAULT_OPERATOR_PASSPHRASE_ENV)


def add_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    agency = subparsers.add_parser("agency", help="an agency's keys and registration")
    sub = agency.add_subparsers(dest="agency_command", metavar="ACTION", required=True)

    p = sub.add_parser("init", help="make key pairs in a new passphrase-sealed keystore")
    p.add_argument("--agency", required=True, help="the agency id, e.g. xa-police")
    p.add_argument("--keystore", type=Path, required=True)
    p.add_argument("--passphrase-env", default=DEFAULT_PASSPHRASE_ENV)
    p.add_argument("--force", action="store_true")
    p.set_defaults(handler=cmd_init)

    p = sub.add_parser("public", help="write the keystore's public keys alone (no secret)")
    p.add_argument("--keystore", type=Path, required=True)
    p.add_argument("--out", type=Path)
    p.set_defaults(handler=cmd_public)

    p = sub.add_parser("register", help="register the keystore's agency (operator signs)")
    p.add_argument("--keystore", type=Path, required=True, help="the agency's keystore")
    p.add_argument("--name", required=True)
    p.add_argument("--country", required=True)
    p.add_argument("--role", action="append", required=True, choices=[str(r) for r in Role])
    p.add_argument("--service", action="append", choices=[str(s) for s in ServiceKind])
    p.add_argument("--router-url", required=True)
    p.add_argument("--webhook-url", required=True)
    _registry_args(p)
    p.set_defaults(handler=cmd_register)

    p = sub.add_parser("rotate-keys", help="new key pairs; old ones kept and retired")
    p.add_argument("--keystore", type=Path, required=True)
    p.add_argument("--passphrase-env", default=DEFAULT_PASSPHRASE_ENV)
    p.add_argument("--use", choices=["both", "signing", "encryption"], default="both")
    p.add_argument(
        "--grace-hours",
        type=float,
        default=24.0,
        help="the old keys still verify what reaches the bus within this time (default 24)",
    )
    _registry_args(p)
    p.set_defaults(handler=cmd_rotate)

    p = sub.add_parser("compromise", help="report a key compromised (operator)")
    p.add_argument("--agency", required=True)
    p.add_argument("--key-id", required=True)
    p.add_argument("--reason", required=True)
    p.add_argument("--since", help="when misuse began (RFC 3339; default: now)")
    _registry_args(p)
    p.set_defaults(handler=cmd_compromise)

    for name, status in (("suspend", "suspended"), ("revoke", "revoked"), ("reactivate", "active")):
        p = sub.add_parser(name, help=f"mark an agency {status} (operator)")
        p.add_argument("--agency", required=True)
        p.add_argument("--reason", required=True)
        _registry_args(p)
        p.set_defaults(handler=_status_command(status))

    directory = subparsers.add_parser("directory", help="the signed directory")
    dsub = directory.add_subparsers(dest="directory_command", metavar="ACTION", required=True)
    p = dsub.add_parser("show", help="fetch, verify against the anchor, and print")
    p.add_argument("--anchor", type=Path, required=True, help="trust anchor JSON file")
    p.add_argument("--last-serial", type=int, default=None, help="refuse anything older")
    p.add_argument("--json", action="store_true")
    _registry_args(p, operator=False)
    p.set_defaults(handler=cmd_directory_show)

    registry = subparsers.add_parser("registry", help="run the country's registry")
    rsub = registry.add_subparsers(dest="registry_command", metavar="ACTION", required=True)
    p = rsub.add_parser("serve", help="serve the registry API with uvicorn")
    p.add_argument("--keystore", type=Path, required=True, help="the registry's own keystore")
    p.add_argument("--passphrase-env", default="NRM_REGISTRY_PASSPHRASE")
    p.add_argument("--operator-keystore", type=Path, required=True, help="public part is read")
    p.add_argument("--country", required=True)
    p.add_argument("--db", type=Path, help="SQLite file (default: env, else .nrm-data/)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8700)
    p.add_argument("--audience")
    logs.add_options(p)
    p.add_argument(
        "--notifier-keys",
        type=Path,
        help="the notifier's public keys (`nrm agency public`): it reads subscriptions, "
        "whose secrets are sealed to it",
    )
    add_tls_arguments(p)
    p.set_defaults(handler=cmd_registry_serve)

    p = rsub.add_parser("anchor", help="write the trust anchor nodes pin (public only)")
    p.add_argument("--keystore", type=Path, required=True)
    p.add_argument("--country", required=True)
    p.add_argument("--out", type=Path)
    p.set_defaults(handler=cmd_registry_anchor)
