"""`nrm audit verify` and `nrm audit stats`: an oversight body's independent checks.

Thin on purpose: this module only fetches (httpx) and keeps the verifier's state file;
every judgement is made by `contracts.audit_verification` and `contracts.statistics`,
which an auditor can read, test and run without anything else from this project. The
node's key comes from the registry's directory, verified against the pinned anchor, never
from the node itself. Exit codes: 0 verified, 1 verification failed, 2 usage or
connection error.

Against `nrm up` every input has a default from its data folder: every node, the trust
anchor, the registry (directory and witness key), the oversight agency's demo keystore,
and a state file under `<data>/<country>/oversight/`. An oversight body auditing a real
bus names them: `--node`, `--anchor`, `--registry` or `--directory`, `--keystore`,
`--state`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import ssl
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from contracts.agency_token import issue_token
from contracts.audit_verification import (
    Finding,
    FindingKind,
    LeafEntry,
    LogReport,
    SeenLog,
    accountability_findings,
    claimed_checkpoint,
    first_error,
    report_json,
    sizes_to_prove,
    verify_exchange,
    verify_log,
    verify_witness_key,
)
from contracts.directory import (
    Directory,
    DirectoryError,
    KeyUse,
    TrustAnchor,
    verify_directory,
)
from contracts.endpoints import router_audience
from contracts.keystore import AgencyKeys
from contracts.statistics import charts, compute, figures_csv, victim_charts
from contracts.transparency import NoteError, NoteVerifier
from contracts.vocabulary import Role
from nrm import local_bus
from nrm.agency_cli import DEFAULT_PASSPHRASE_ENV, load_keys
from nrm.cli import CliError

STATE_FORMAT = "nrm-audit-state/1"
DEFAULT_AUDIENCE = router_audience("{agency}")


# --- inputs ----------------------------------------------------------------------------


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None


def _anchor(args: argparse.Namespace) -> TrustAnchor:
    try:
        return TrustAnchor.model_validate_json(_read(args.anchor))
    except ValueError as exc:
        raise CliError(f"{args.anchor}: not a trust anchor: {exc}") from None


def with_local_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Fill what was not given from the bus `nrm up` runs with `--data` (none needed when
    every input is given, so a real audit never reads a local file by accident)."""
    needs_bus = (
        not args.node
        or args.anchor is None
        or (args.directory is None and args.registry is None)
        or args.keystore is None
        or getattr(args, "state", "") is None
    )
    bus = local_bus.running(args) if needs_bus else None
    if bus is not None:
        here = local_bus.folder(args)
        args.node = args.node or [f"{a}={n.url}" for a, n in bus.nodes.items()]
        args.anchor = args.anchor or here / bus.anchor
        if args.directory is None and args.registry is None:
            args.registry = bus.registry.url
            args.witness = args.witness or [f"{bus.registry.url}/v1/witness/key"]
        oversight = args.agency or next(iter(bus.with_role("oversight")), None)
        if args.keystore is None:
            if oversight is None:
                raise CliError("this bus has no oversight agency: pass --keystore")
            args.keys = local_bus.demo_keys(args, oversight)
        if getattr(args, "state", "") is None:
            args.state = here / "oversight" / f"{args.keys.agency_id}.audit-state.json"
        if getattr(args, "out", "") is None:
            args.out = here / "oversight" / "statistics"
    if args.keystore is not None:
        args.keys, _ = load_keys(args.keystore, args.passphrase_env)
    if getattr(args, "out", "") is None:
        raise CliError("give --out DIR for the published statistics")
    return args


def _trust() -> ssl.SSLContext | bool:
    """HTTPS trust for registry and nodes: the local CA in NRM_CA_FILE, else the system's."""
    from nrm.serving import verify_context

    return verify_context()


def load_directory(args: argparse.Namespace) -> Directory:
    """The directory, believed only if the pinned anchor signed it."""
    anchor = _anchor(args)
    if args.directory:
        raw = _read(args.directory)
    elif args.registry:
        try:
            r = httpx.get(
                args.registry.rstrip("/") + "/v1/directory", timeout=15.0, verify=_trust()
            )
            r.raise_for_status()
        except httpx.HTTPError as exc:
            raise CliError(f"registry at {args.registry}: {exc}") from None
        raw = r.content
    else:
        raise CliError("give --directory FILE or --registry URL")
    try:
        return verify_directory(raw, anchor)
    except DirectoryError as exc:
        raise CliError(f"directory refused: {type(exc).__name__}: {exc}") from None


@dataclass
class NodeTarget:
    url: str
    agency: str | None


def parse_node(text: str) -> NodeTarget:
    agency, sep, url = text.partition("=")
    if not sep or "://" in agency:
        agency, url = "", text
    if not url.startswith(("http://", "https://")):
        raise CliError(f"--node {text!r}: expected [AGENCY=]http(s)://host:port")
    return NodeTarget(url.rstrip("/"), agency or None)


class NodeClient:
    """One node's oversight API, with a fresh one-time token per request (the nodes keep
    a replay cache of token ids)."""

    def __init__(self, target: NodeTarget, keys: AgencyKeys, audience: str, timeout: float):
        self.target = target
        self._keys = keys
        self._http = httpx.Client(base_url=target.url, timeout=timeout, verify=_trust())
        if target.agency is None:
            target.agency = self._agency_from_readyz()
        self._audience = audience.format(agency=target.agency)

    def close(self) -> None:
        self._http.close()

    def _agency_from_readyz(self) -> str:
        """Only to address the token: a wrong answer fails authentication, nothing more."""
        try:
            r = self._http.get("/readyz")
            agency = r.json().get("agency")
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            raise CliError(f"{self.target.url}: cannot learn the node's agency: {exc}") from None
        if not isinstance(agency, str):
            raise CliError(f"{self.target.url}: give the agency as --node AGENCY=URL")
        return agency

    def _token(self) -> str:
        pair = self._keys.current(KeyUse.SIGNING)
        return issue_token(self._keys.agency_id, pair.key_id, pair.ed25519(), self._audience)

    def request(
        self, method: str, path: str, params: dict[str, Any] | None = None, ok404: bool = False
    ) -> httpx.Response | None:
        headers = {"Authorization": f"Bearer {self._token()}"}
        try:
            r = self._http.request(method, path, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise CliError(f"{self.target.url} unreachable: {exc}") from None
        if r.status_code in (401, 403):
            raise CliError(f"{self.target.url} refused ({r.status_code}): {_detail(r)}")
        if r.status_code in (404, 422) and ok404:
            return None
        if r.status_code >= 400:
            raise CliError(f"{self.target.url}{path}: {r.status_code} {_detail(r)}")
        return r

    def json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        r = self.request("GET", path, params)
        assert r is not None
        try:
            return r.json()
        except ValueError:
            raise CliError(f"{self.target.url}{path}: not JSON") from None

    def pages(self, path: str, page: int) -> Iterator[dict[str, Any]]:
        start: int | None = 0
        while start is not None:
            body = self.json(path, {"start": start, "limit": page})
            yield from body.get("items", [])
            nxt = body.get("next")
            start = int(nxt) if nxt is not None and int(nxt) > start else None


def _detail(r: httpx.Response) -> str:
    try:
        return str(r.json().get("detail"))
    except (ValueError, AttributeError):
        return r.text[:200]


class Progress:
    """One progress line on stderr: rewritten in place on a terminal, else every 10%."""

    def __init__(self, label: str, quiet: bool = False) -> None:
        self.label = label
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self._last_tenth = -1

    def __call__(self, done: int, total: int) -> None:
        if self.quiet:
            return
        tenth = 10 * done // total if total else 10
        if self.tty:
            end = "\n" if done >= total else ""
            print(f"\r{self.label}: {done}/{total}", end=end, file=sys.stderr, flush=True)
        elif tenth != self._last_tenth:
            self._last_tenth = tenth
            print(f"{self.label}: {done}/{total}", file=sys.stderr, flush=True)


# --- state -----------------------------------------------------------------------------


class StateFile:
    """What the verifier remembers between runs: per origin, every checkpoint (size ->
    root) seen and the leaf hashes verified, in a sidecar binary file (32 bytes a leaf)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.dir = path.with_name(path.name + ".leaves")
        self.logs: dict[str, dict[str, Any]] = {}
        if path.exists():
            try:
                data = json.loads(path.read_text())
                if data.get("format") != STATE_FORMAT:
                    raise ValueError(f"format is not {STATE_FORMAT}")
                self.logs = dict(data["logs"])
            except (ValueError, KeyError, TypeError) as exc:
                raise CliError(f"{path}: not an audit state file: {exc}") from None

    def _leaf_file(self, origin: str) -> Path:
        return self.dir / (hashlib.sha256(origin.encode()).hexdigest()[:24] + ".bin")

    def seen(self, origin: str) -> SeenLog | None:
        data = self.logs.get(origin)
        if data is None:
            return None
        raw = self._leaf_file(origin).read_bytes() if self._leaf_file(origin).exists() else b""
        hashes = [raw[i : i + 32] for i in range(0, len(raw) - len(raw) % 32, 32)]
        try:
            return SeenLog.from_json(data, hashes)
        except (KeyError, ValueError, TypeError) as exc:
            raise CliError(f"{self.path}: bad entry for {origin}: {exc}") from None

    def remember(self, seen: SeenLog) -> None:
        self.logs[seen.origin] = seen.to_json()
        self.dir.mkdir(parents=True, exist_ok=True)
        _atomic_write(self._leaf_file(seen.origin), b"".join(seen.leaf_hashes))

    def save(self) -> None:
        body = {"format": STATE_FORMAT, "logs": self.logs}
        _atomic_write(self.path, (json.dumps(body, indent=2) + "\n").encode())


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# --- fetching and verifying ------------------------------------------------------------


@dataclass
class Fetched:
    notes: list[str]
    leaves: list[LeafEntry]
    proofs: dict[tuple[int, int], list[bytes]]


def fetch_log(
    client: NodeClient, seen_of: Callable[[str], SeenLog | None], args: argparse.Namespace
) -> tuple[Fetched, SeenLog | None]:
    if args.fresh:
        client.request("POST", "/v1/audit/checkpoints")
    notes = [str(c["note"]) for c in client.pages("/v1/audit/checkpoints", args.page_size)]
    latest = client.request("GET", "/v1/audit/checkpoint", ok404=True)
    if latest is not None and (not notes or notes[-1] != latest.text):
        notes.append(latest.text)
    claimed = claimed_checkpoint(notes[-1]) if notes else None
    seen = seen_of(claimed.origin) if claimed else None
    proofs: dict[tuple[int, int], list[bytes]] = {}
    for old, new in sizes_to_prove(notes, seen):
        r = client.request("GET", "/v1/audit/consistency", {"old": old, "new": new}, ok404=True)
        if r is not None:
            try:
                proofs[(old, new)] = [bytes.fromhex(h) for h in r.json()["proof"]]
            except (ValueError, KeyError, TypeError):
                continue  # malformed: verify_log reports the proof as missing
    size = claimed.size if claimed else 0
    progress = Progress(f"{client.target.agency}: fetching leaves", args.quiet)
    leaves: list[LeafEntry] = []
    start = 0
    while start < size:
        body = client.json(
            "/v1/audit/leaves", {"start": start, "limit": min(args.page_size, size - start)}
        )
        items = body.get("items", [])
        if not items:
            break
        for item in items:
            try:
                leaves.append(LeafEntry.from_json(item))
            except ValueError as exc:
                raise CliError(f"{client.target.url}: {exc}") from None
        start += len(items)
        progress(min(start, size), size)
    return Fetched(notes, leaves[:size], proofs), seen


def verify_nodes(
    args: argparse.Namespace, directory: Directory, state: StateFile | None
) -> tuple[list[LogReport], list[Finding]]:
    keys = args.keys
    witnesses = [_witness(v, args) for v in args.witness or []]
    reports: list[LogReport] = []
    for target in (parse_node(n) for n in args.node):
        client = NodeClient(target, keys, args.audience, args.timeout)
        try:
            fetched, seen = fetch_log(client, state.seen if state else lambda _: None, args)
        finally:
            client.close()
        report = verify_log(
            fetched.notes,
            fetched.leaves,
            fetched.proofs,
            directory,
            seen=seen,
            witnesses=witnesses,
            min_cosignatures=args.min_cosignatures,
            progress=Progress(f"{target.agency}: hashing leaves", args.quiet),
        )
        if report.checkpoint is not None and report.agency_id != target.agency:
            report.findings.insert(
                0,
                Finding(
                    FindingKind.WRONG_ORIGIN,
                    report.origin,
                    f"the node at {target.url} serves the log of {report.agency_id}, "
                    f"not {target.agency}",
                ),
            )
            report.seen = None
        report.findings.extend(accountability_findings(report))
        reports.append(report)
    exchange: list[Finding] = []
    if len(reports) > 1:
        by_agency = {r.agency_id: r for r in reports if r.checkpoint is not None}
        exchange = verify_exchange(by_agency, grace=timedelta(seconds=args.grace))
    return reports, exchange


def _witness(given: str, args: argparse.Namespace) -> NoteVerifier:
    """A witness key: the bare note key, or the registry's key document (`GET
    /v1/witness/key`) by URL or in a file, believed only if the pinned anchor vouches."""
    text = given
    if given.startswith(("http://", "https://")):
        try:
            text = httpx.get(given, timeout=args.timeout, verify=_trust()).raise_for_status().text
        except httpx.HTTPError as exc:
            raise CliError(f"--witness {given}: {exc}") from None
    elif not given.strip().startswith("{") and Path(given).is_file():
        text = Path(given).read_text()
    try:
        if text.strip().startswith("{"):
            return verify_witness_key(json.loads(text), _anchor(args))
        return NoteVerifier.from_vkey(text.strip())
    except (NoteError, ValueError) as exc:
        raise CliError(f"--witness: {exc}") from None


def print_verdict(reports: list[LogReport], exchange: list[Finding]) -> bool:
    for r in reports:
        cp = r.checkpoint
        head = f"size {cp.size}  root {cp.root.hex()[:16]}…" if cp else "no valid checkpoint"
        status = "ok" if r.ok else "FAILED"
        print(f"{r.agency_id:<20} {r.origin}  {head}  cosignatures {r.cosignatures}  {status}")
    findings = [f for r in reports for f in r.findings] + exchange
    errors = [f for f in findings if f.is_error]
    warnings = [f for f in findings if not f.is_error]
    for w in warnings:
        print(f"  warning: {w.line()}")
    first = first_error(findings)
    if first is None:
        leaves = sum(len(r.leaves) for r in reports)
        cross = ", exchange between nodes complete" if len(reports) > 1 else ""
        print(
            f"verdict: OK: {len(reports)} log(s), {leaves} leaves; signatures, consistency "
            f"and every leaf hash verified{cross}"
        )
        return True
    print(f"verdict: FAILED: {first.line()}")
    bad_leaf = next((f for f in errors if f.leaf is not None), None)
    bad_cp = next((f for f in errors if f.checkpoint_size is not None), None)
    if bad_cp is not None:
        print(f"first bad checkpoint: {bad_cp.origin} size {bad_cp.checkpoint_size}")
    if bad_leaf is not None:
        ev = f" (event {bad_leaf.event_id})" if bad_leaf.event_id else ""
        print(f"first bad leaf: {bad_leaf.origin} leaf {bad_leaf.leaf}{ev}")
    print(f"{len(errors)} problem(s):")
    for f in errors[:50]:
        print(f"  - {f.line()}")
    if len(errors) > 50:
        print(f"  … and {len(errors) - 50} more")
    return False


def cmd_verify(args: argparse.Namespace) -> int:
    with_local_defaults(args)
    directory = load_directory(args)
    state = StateFile(args.state)
    reports, exchange = verify_nodes(args, directory, state)
    ok = print_verdict(reports, exchange)
    if args.json:
        args.json.write_text(report_json(reports, exchange) + "\n")
    for r in reports:  # remember only what verified: a forked root must not replace the old
        if r.ok and r.seen is not None:
            state.remember(r.seen)
    state.save()
    return 0 if ok else 1


def cmd_stats(args: argparse.Namespace) -> int:
    with_local_defaults(args)
    directory = load_directory(args)
    args.fresh = getattr(args, "fresh", False)
    reports, exchange = verify_nodes(args, directory, None)
    if first_error([f for r in reports for f in r.findings] + exchange) is not None:
        print_verdict(reports, exchange)
        print("no statistics from logs that do not verify", file=sys.stderr)
        return 1
    roles = {a.id: str(a.roles[0]) for a in directory.agencies}
    envelopes = [e.envelope for r in reports for e in r.leaves if e.envelope is not None]
    figures = compute(envelopes, roles)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "statistics.json").write_text(json.dumps(figures, indent=2) + "\n")
    (out / "statistics.csv").write_text(figures_csv(figures))
    for name, svg in charts(figures).items():
        (out / name).write_text(svg)
    print(f"statistics of {figures['events']} events from {len(reports)} verified log(s)")
    print(f"  {out / 'statistics.json'}")
    print(f"  {out / 'statistics.csv'}")
    for name in charts(figures):
        print(f"  {out / name}")
    for agency, published in victim_statistics(args, directory).items():
        folder = out / "victims" / agency
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "victims.json").write_text(json.dumps(published, indent=2) + "\n")
        (folder / "victims.csv").write_text(figures_csv(published))
        for name, svg in victim_charts(published).items():
            (folder / name).write_text(svg)
        print(f"victim statistics published by {agency}: {folder}")
    return 0


def victim_statistics(args: argparse.Namespace, directory: Directory) -> dict[str, Any]:
    """What each competent authority's node publishes: the identified victims only it can
    count (the outcome travels sealed), as aggregates with small cells suppressed."""
    authorities = {a.id for a in directory.agencies if Role.COMPETENT_AUTHORITY in a.roles}
    out: dict[str, Any] = {}
    for target in (parse_node(n) for n in args.node):
        if target.agency is not None and target.agency not in authorities:
            continue
        client = NodeClient(target, args.keys, args.audience, args.timeout)
        try:
            if target.agency not in authorities:
                continue
            r = client.request("GET", "/v1/audit/victim-statistics", ok404=True)
            if r is None:
                print(f"{target.agency} publishes no victim statistics", file=sys.stderr)
                continue
            out[str(target.agency)] = r.json()
        finally:
            client.close()
    return out


# --- wiring ----------------------------------------------------------------------------


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--node",
        action="append",
        metavar="[AGENCY=]URL",
        help="a node's base URL (repeat for cross-node completeness; default: every node "
        "of the local bus)",
    )
    p.add_argument(
        "--anchor", type=Path, help="the registry's trust anchor (default: the local bus's)"
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--directory", type=Path, help="a signed directory file")
    src.add_argument(
        "--registry", help="fetch the signed directory from this registry (default: local)"
    )
    p.add_argument(
        "--keystore",
        type=Path,
        help="the oversight body's keystore (default: the local bus's oversight agency)",
    )
    p.add_argument("--agency", help="with the local bus: which oversight agency acts")
    p.add_argument("--passphrase-env", default=DEFAULT_PASSPHRASE_ENV)
    p.add_argument(
        "--audience", default=DEFAULT_AUDIENCE, help="token audience template ({agency})"
    )
    p.add_argument(
        "--witness",
        action="append",
        metavar="VKEY|URL|FILE",
        help="a witness's note key, or the registry's key document (its /v1/witness/key "
        "URL or a file), checked against the anchor (default: the local registry's)",
    )
    p.add_argument("--min-cosignatures", type=int, default=0)
    p.add_argument("--grace", type=float, default=300.0, help="seconds an event may be in transit")
    p.add_argument("--page-size", type=int, default=500)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    local_bus.add_options(p)


def add_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    audit = subparsers.add_parser("audit", help="verify nodes' audit logs; publish statistics")
    sub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)

    p = sub.add_parser("verify", help="independently verify one or more nodes' logs")
    _common(p)
    p.add_argument(
        "--state",
        type=Path,
        help="what earlier runs saw (JSON; default: under the local bus's oversight folder)",
    )
    p.add_argument("--fresh", action="store_true", help="ask each node for a new checkpoint")
    p.add_argument("--json", type=Path, help="also write the verdict as JSON here")
    p.set_defaults(handler=cmd_verify)

    p = sub.add_parser("stats", help="statistics for publication, small cells suppressed")
    _common(p)
    p.add_argument(
        "--out", type=Path, help="directory for JSON and SVG (default: under the local bus's)"
    )
    p.add_argument("--fresh", action="store_true", help="ask each node for a new checkpoint")
    p.set_defaults(handler=cmd_stats)
