"""Independent verification of nodes' audit logs, from fetched data only (no I/O).

An oversight body must not have to trust a node's operator. Given what a node served
(signed checkpoints, consistency proofs, the leaf range with the stored envelopes) and
what the verifier remembered from earlier runs, these functions check that

* every checkpoint is signed by the node's agency key from the verified directory (and
  cosigned by the expected witnesses), all for one origin;
* no size has two roots (a fork), the log never shrank, and each checkpoint extends the
  previous one (RFC 9162 consistency proofs), including those seen at earlier runs;
* every stored envelope hashes to its leaf, the leaves give every checkpoint's root, and
  no leaf verified at an earlier run has changed since;
* across nodes, every event A's log says A sent to B is in B's log with the same leaf
  hash, and every event B's log says it received from A is in A's log.

Each problem becomes a `Finding` that names the first bad checkpoint or leaf, so a report
can say exactly where a log was rewritten. The CLI (`nrm audit verify`) only fetches.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import pairwise
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature

from contracts.directory import Directory, KeyUse, TrustAnchor, b64url_decode
from contracts.events import DECISION_OFFICERS
from contracts.transparency import (
    EMPTY_ROOT,
    Checkpoint,
    CompactRange,
    NoteError,
    NoteVerifier,
    ProofError,
    hash_leaf,
    open_checkpoint,
    parse_note,
    verify_consistency,
    verify_cosignature,
)

# --- the witness's key ------------------------------------------------------------------

#: What the directory key signs to vouch for the witness key: this prefix, then the vkey.
WITNESS_KEY_STATEMENT = b"nrm-witness-key/v1\n"


def verify_witness_key(document: Mapping[str, Any], anchor: TrustAnchor) -> NoteVerifier:
    """The witness key the registry serves (`GET /v1/witness/key`), believed only if the
    anchor's key vouches for it: an oversight body pins the anchor, not the channel."""
    vkey = str(document.get("vkey", ""))
    try:
        anchor.ed25519().verify(
            b64url_decode(str(document.get("signature", ""))),
            WITNESS_KEY_STATEMENT + vkey.encode(),
        )
    except (InvalidSignature, ValueError, binascii.Error) as exc:
        raise NoteError(f"witness key {vkey!r} is not vouched for by the anchor") from exc
    return NoteVerifier.from_vkey(vkey)


# --- findings --------------------------------------------------------------------------


class FindingKind(StrEnum):
    """What went wrong; the value is the word a report prints."""

    MALFORMED = "malformed checkpoint"
    BAD_SIGNATURE = "bad signature"
    UNKNOWN_AGENCY = "unknown agency"
    WRONG_ORIGIN = "wrong origin"
    BAD_COSIGNATURE = "bad cosignature"
    TOO_FEW_COSIGNATURES = "too few cosignatures"
    FORK = "fork"
    SHRINKING = "shrinking log"
    INCONSISTENT = "inconsistent"
    MISSING_PROOF = "missing proof"
    LEAF_RANGE = "leaf range"
    LEAF_MISSING = "envelope missing"
    LEAF_HASH = "leaf hash"
    LEAF_EVENT_ID = "event id"
    DUPLICATE_EVENT = "duplicate event"
    ROOT_MISMATCH = "root mismatch"
    HISTORY_CHANGED = "history changed"
    NOT_RECEIVED = "not received"
    NOT_SENT = "not sent"
    EXCHANGE_MISMATCH = "exchange mismatch"
    IN_TRANSIT = "in transit"
    NO_OFFICER = "no officer"


#: Findings that do not fail verification on their own.
WARNINGS = frozenset({FindingKind.IN_TRANSIT, FindingKind.NO_OFFICER})


@dataclass(frozen=True)
class Finding:
    """One problem, located: the log (origin), and the checkpoint size or leaf index."""

    kind: FindingKind
    origin: str
    message: str
    checkpoint_size: int | None = None
    leaf: int | None = None
    event_id: str | None = None

    @property
    def is_error(self) -> bool:
        return self.kind not in WARNINGS

    def where(self) -> str:
        if self.leaf is not None:
            ev = f" (event {self.event_id})" if self.event_id else ""
            return f"leaf {self.leaf}{ev}"
        if self.checkpoint_size is not None:
            return f"checkpoint of size {self.checkpoint_size}"
        return "log"

    def line(self) -> str:
        return f"{self.origin}: {self.where()}: {self.kind}: {self.message}"

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "origin": self.origin,
            "checkpoint_size": self.checkpoint_size,
            "leaf": self.leaf,
            "event_id": self.event_id,
            "message": self.message,
            "error": self.is_error,
        }


def first_error(findings: Iterable[Finding]) -> Finding | None:
    return next((f for f in findings if f.is_error), None)


# --- leaves ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LeafEntry:
    """One leaf as a node served it: the hash its log recorded and the stored envelope
    (None when the store no longer holds it). Nothing here is trusted until checked."""

    index: int
    event_id: str
    leaf_hash: bytes
    envelope: Mapping[str, Any] | None

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> LeafEntry:
        """From one item of GET /v1/audit/leaves; raises ValueError if malformed."""
        try:
            leaf_hash = bytes.fromhex(str(item["leaf_hash"]))
            envelope = item.get("envelope")
            if envelope is not None and not isinstance(envelope, Mapping):
                raise ValueError("envelope is not an object")
            return cls(int(item["index"]), str(item["event_id"]), leaf_hash, envelope)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed leaf item: {exc!r}") from None


def envelope_leaf_hash(envelope: Mapping[str, Any]) -> bytes:
    """The RFC 9162 leaf hash of a stored envelope: SHA-256(0x00 || RFC 8785 bytes)."""
    return hash_leaf(rfc8785.dumps(envelope))


def _sender(envelope: Mapping[str, Any]) -> str | None:
    s = envelope.get("sender")
    return s if isinstance(s, str) else None


def _recipients(envelope: Mapping[str, Any]) -> tuple[str, ...]:
    r = envelope.get("recipients")
    return tuple(x for x in r if isinstance(x, str)) if isinstance(r, list | tuple) else ()


# --- decisions (R7) --------------------------------------------------------------------

#: Event types that record a decision, and where each names its officer (R7): the
#: catalogue's own table, so a new decision event is audited without a change here.
DECISION_TYPES: Mapping[str, str | None] = DECISION_OFFICERS


@dataclass(frozen=True)
class Decision:
    """Who decided what and when, from the clear operational envelope alone (R7)."""

    event_id: str
    event_type: str
    case: str
    time: str
    agency: str
    officer: str | None
    details: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "type": self.event_type,
            "case": self.case,
            "time": self.time,
            "agency": self.agency,
            "officer": self.officer,
            "details": dict(self.details),
        }


def decision_of(envelope: Mapping[str, Any]) -> Decision | None:
    """The decision an envelope records, or None if its type is not a decision."""
    event_type = envelope.get("type")
    if not isinstance(event_type, str) or event_type not in DECISION_TYPES:
        return None
    officer_field = DECISION_TYPES[event_type]
    op = envelope.get("operational")
    op = op if isinstance(op, Mapping) else {}
    officer = op.get(officer_field) if officer_field else None
    details = {k: v for k, v in op.items() if k != officer_field}
    return Decision(
        event_id=str(envelope.get("id", "")),
        event_type=event_type,
        case=str(envelope.get("subject", "")),
        time=str(envelope.get("time", "")),
        agency=_sender(envelope) or "",
        officer=officer if isinstance(officer, str) and officer else None,
        details=details,
    )


# --- checkpoints -----------------------------------------------------------------------


class CheckpointRejected(Exception):
    """A checkpoint note that cannot be believed; `kind` says why."""

    def __init__(self, kind: FindingKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def agency_of_origin(origin: str) -> tuple[str, str]:
    """(country, agency id) from an origin `<domain>/<country>/<agency>`."""
    parts = origin.split("/")
    if len(parts) < 3 or not parts[-1] or not parts[-2]:
        raise CheckpointRejected(
            FindingKind.WRONG_ORIGIN, f"origin {origin!r} is not <domain>/<country>/<agency>"
        )
    return parts[-2], parts[-1]


def node_verifiers(directory: Directory, origin: str) -> list[NoteVerifier]:
    """Every signing key (current and retired) of the agency the origin names: a key
    rotation must not make the checkpoints signed before it unverifiable."""
    country, agency_id = agency_of_origin(origin)
    record = directory.agency(agency_id)
    if record is None:
        raise CheckpointRejected(
            FindingKind.UNKNOWN_AGENCY, f"agency {agency_id!r} is not in the directory"
        )
    if record.country != country:
        raise CheckpointRejected(
            FindingKind.WRONG_ORIGIN,
            f"origin names country {country}, the directory says {agency_id} is in "
            f"{record.country}",
        )
    return [NoteVerifier(origin, k.ed25519()) for k in record.keys_for(KeyUse.SIGNING)]


def open_node_checkpoint(note: str, directory: Directory, origin: str | None = None) -> Checkpoint:
    """Verify a node's checkpoint with its agency's key from the directory; pin `origin`."""
    try:
        claimed = Checkpoint.from_body(parse_note(note).text).origin
    except NoteError as exc:
        raise CheckpointRejected(FindingKind.MALFORMED, str(exc)) from None
    if origin is not None and claimed != origin:
        raise CheckpointRejected(
            FindingKind.WRONG_ORIGIN, f"checkpoint is for {claimed!r}, expected {origin!r}"
        )
    last: NoteError | None = None
    for verifier in node_verifiers(directory, claimed):
        try:
            return open_checkpoint(note, verifier, claimed)
        except NoteError as exc:
            last = exc
            if type(exc).__name__ != "UnknownKeyError":
                break  # a line from this very key that does not verify
    raise CheckpointRejected(
        FindingKind.BAD_SIGNATURE,
        f"not signed by any signing key of {agency_of_origin(claimed)[1]}: {last}",
    )


def check_cosignatures(
    note: str, witnesses: Sequence[NoteVerifier], minimum: int = 0
) -> tuple[int, list[tuple[FindingKind, str]]]:
    """Verify the cosignature of every known witness present; lines from unknown keys
    are ignored, as the signed-note spec requires. Returns (valid count, problems)."""
    parsed = parse_note(note)
    names = {s.name for s in parsed.signatures}
    valid, problems = 0, []
    for w in witnesses:
        if w.name not in names:
            continue
        try:
            verify_cosignature(parsed, w)
            valid += 1
        except NoteError as exc:
            if type(exc).__name__ == "UnknownKeyError":
                continue  # same name, other key: not this witness's line
            problems.append((FindingKind.BAD_COSIGNATURE, str(exc)))
    if valid < minimum:
        problems.append(
            (FindingKind.TOO_FEW_COSIGNATURES, f"{valid} valid cosignatures, {minimum} required")
        )
    return valid, problems


# --- what the verifier remembers -------------------------------------------------------


@dataclass(frozen=True)
class SeenLog:
    """A log as verified at earlier runs: the checkpoints (size -> root) and the leaf
    hashes up to the largest one. Kept by the verifier, never by the node."""

    origin: str
    checkpoints: Mapping[int, bytes]
    leaf_hashes: Sequence[bytes] = ()

    @property
    def size(self) -> int:
        return max(self.checkpoints, default=0)

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "checkpoints": [
                {"size": s, "root": r.hex()} for s, r in sorted(self.checkpoints.items())
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], leaf_hashes: Sequence[bytes] = ()) -> SeenLog:
        cps = {int(c["size"]): bytes.fromhex(c["root"]) for c in data["checkpoints"]}
        return cls(str(data["origin"]), cps, leaf_hashes)


def consistency_pairs(sizes: Iterable[int]) -> list[tuple[int, int]]:
    """The proofs to fetch: one per pair of consecutive distinct non-zero sizes, which
    chains every checkpoint to every other (consistency is transitive)."""
    ordered = sorted({s for s in sizes if s > 0})
    return list(pairwise(ordered))


def sizes_to_prove(notes: Sequence[str], seen: SeenLog | None) -> list[tuple[int, int]]:
    """The consistency proofs `verify_log` will ask for, from the notes' claimed sizes
    (unverified: only to plan the fetches)."""
    sizes = set(seen.checkpoints) if seen else set()
    for note in notes:
        try:
            sizes.add(Checkpoint.from_body(parse_note(note).text).size)
        except NoteError:
            continue
    return consistency_pairs(sizes)


# --- one log ---------------------------------------------------------------------------

Progress = Callable[[int, int], None]


@dataclass
class LogReport:
    """The verdict on one node's log, and what to remember if it passed."""

    origin: str
    agency_id: str
    checkpoint: Checkpoint | None
    findings: list[Finding]
    leaves: Sequence[LeafEntry]
    seen: SeenLog | None
    cosignatures: int = 0

    @property
    def ok(self) -> bool:
        return first_error(self.findings) is None

    @property
    def first_bad_leaf(self) -> Finding | None:
        return next((f for f in self.findings if f.is_error and f.leaf is not None), None)

    @property
    def first_bad_checkpoint(self) -> Finding | None:
        return next(
            (f for f in self.findings if f.is_error and f.checkpoint_size is not None), None
        )


def verify_log(
    notes: Sequence[str],
    leaves: Sequence[LeafEntry],
    proofs: Mapping[tuple[int, int], Sequence[bytes]],
    directory: Directory,
    *,
    seen: SeenLog | None = None,
    origin: str | None = None,
    witnesses: Sequence[NoteVerifier] = (),
    min_cosignatures: int = 0,
    progress: Progress | None = None,
) -> LogReport:
    """Check one node's log. `notes` are its checkpoints in the order it issued them,
    the latest last; `leaves` are leaves [0, latest size); `proofs` hold the consistency
    proofs `sizes_to_prove` asked for. Checkpoint findings come first, then leaf
    findings in leaf order, so the first error names the first bad checkpoint or leaf."""
    pinned = seen.origin if seen is not None else origin
    label = pinned or "?"
    findings: list[Finding] = []

    # 1. signatures, origin, cosignatures
    good: list[Checkpoint] = []
    cosigned = 0
    for k, note in enumerate(notes):
        try:
            cp = open_node_checkpoint(note, directory, pinned)
        except CheckpointRejected as exc:
            size = _claimed_size(note)
            findings.append(Finding(exc.kind, label, f"checkpoint #{k}: {exc.message}", size))
            continue
        pinned = label = cp.origin
        valid, problems = check_cosignatures(note, witnesses, min_cosignatures)
        cosigned = valid
        findings.extend(
            Finding(kind, label, f"checkpoint #{k}: {msg}", cp.size) for kind, msg in problems
        )
        good.append(cp)
    if not good:
        if not notes:
            findings.append(Finding(FindingKind.MALFORMED, label, "the node served no checkpoint"))
        return LogReport(label, _agency(label), None, findings, leaves, None)
    latest = good[-1]
    agency_id = _agency(latest.origin)

    # 2. forks and shrinking, against earlier runs and within the history
    roots: dict[int, bytes] = dict(seen.checkpoints) if seen else {}
    forked: set[int] = set()
    for k, cp in enumerate(good):
        known = roots.get(cp.size)
        if known is not None and known != cp.root:
            forked.add(cp.size)
            findings.append(
                Finding(
                    FindingKind.FORK,
                    label,
                    f"two roots for size {cp.size}: {cp.root.hex()} now, {known.hex()} before",
                    cp.size,
                )
            )
        roots.setdefault(cp.size, cp.root)
        if k and cp.size < good[k - 1].size:
            findings.append(
                Finding(
                    FindingKind.SHRINKING,
                    label,
                    f"size {cp.size} issued after size {good[k - 1].size}",
                    cp.size,
                )
            )
    if seen is not None and latest.size < seen.size:
        findings.append(
            Finding(
                FindingKind.SHRINKING,
                label,
                f"latest size {latest.size} is smaller than size {seen.size} seen before",
                latest.size,
            )
        )

    # 3. consistency proofs between consecutive sizes
    for old, new in consistency_pairs(roots):
        if old in forked or new in forked:
            continue
        proof = proofs.get((old, new))
        if proof is None:
            findings.append(
                Finding(
                    FindingKind.MISSING_PROOF, label, f"no consistency proof {old} -> {new}", new
                )
            )
            continue
        try:
            verify_consistency(old, new, roots[old], roots[new], proof)
        except ProofError as exc:
            findings.append(
                Finding(
                    FindingKind.INCONSISTENT,
                    label,
                    f"does not extend the checkpoint of size {old}: {exc}",
                    new,
                )
            )

    # 4. leaves: envelope -> leaf hash -> every checkpoint root
    findings.extend(_check_leaves(label, latest.size, leaves, roots, seen, progress))
    ok = first_error(findings) is None
    new_seen = SeenLog(label, roots, [e.leaf_hash for e in leaves[: latest.size]]) if ok else None
    return LogReport(label, agency_id, latest, findings, leaves, new_seen, cosigned)


def claimed_checkpoint(note: str) -> Checkpoint | None:
    """The checkpoint a note claims, unverified (only to plan fetches), or None if the note
    is malformed."""
    try:
        return Checkpoint.from_body(parse_note(note).text)
    except NoteError:
        return None


def _claimed_size(note: str) -> int | None:
    claimed = claimed_checkpoint(note)
    return claimed.size if claimed else None


def _agency(origin: str) -> str:
    try:
        return agency_of_origin(origin)[1]
    except CheckpointRejected:
        return origin


def _check_leaves(
    origin: str,
    size: int,
    leaves: Sequence[LeafEntry],
    roots: Mapping[int, bytes],
    seen: SeenLog | None,
    progress: Progress | None,
) -> list[Finding]:
    out: list[Finding] = []
    if len(leaves) != size:
        out.append(
            Finding(
                FindingKind.LEAF_RANGE,
                origin,
                f"the node served {len(leaves)} leaves for a checkpoint of size {size}",
                size,
            )
        )
    targets = sorted(s for s in roots if 0 < s <= min(size, len(leaves)))
    previous = seen.leaf_hashes if seen is not None else ()
    compact = CompactRange()
    first_index: dict[str, int] = {}
    t = 0
    for i, entry in enumerate(leaves[:size]):
        if entry.index != i:
            out.append(
                Finding(
                    FindingKind.LEAF_RANGE,
                    origin,
                    f"item {i} of the range claims index {entry.index}",
                    leaf=i,
                    event_id=entry.event_id,
                )
            )
        out.extend(_check_entry(origin, i, entry, first_index))
        if i < len(previous) and previous[i] != entry.leaf_hash:
            out.append(
                Finding(
                    FindingKind.HISTORY_CHANGED,
                    origin,
                    f"leaf hash {entry.leaf_hash.hex()} differs from {previous[i].hex()} "
                    "verified at an earlier run: the log was rewritten",
                    leaf=i,
                    event_id=entry.event_id,
                )
            )
        compact.append_hash(entry.leaf_hash)
        while t < len(targets) and targets[t] == compact.size:
            got = compact.root()
            if got != roots[compact.size]:
                out.append(
                    Finding(
                        FindingKind.ROOT_MISMATCH,
                        origin,
                        f"the first {compact.size} leaf hashes give root {got.hex()}, "
                        f"the checkpoint signs {roots[compact.size].hex()}",
                        compact.size,
                    )
                )
            t += 1
        if progress is not None and (i + 1) % 1000 == 0:
            progress(i + 1, size)
    if progress is not None:
        progress(min(size, len(leaves)), size)
    if 0 in roots and roots[0] != EMPTY_ROOT:
        out.append(Finding(FindingKind.ROOT_MISMATCH, origin, "empty log with a non-empty root", 0))
    # checkpoint-level findings first, then leaf findings in leaf order
    return sorted(out, key=lambda f: (f.leaf is not None, f.leaf or 0))


def _check_entry(
    origin: str, i: int, entry: LeafEntry, first_index: dict[str, int]
) -> list[Finding]:
    out: list[Finding] = []
    env = entry.envelope
    if env is None:
        out.append(
            Finding(
                FindingKind.LEAF_MISSING,
                origin,
                "the store no longer holds (or cannot read) the envelope this leaf logged",
                leaf=i,
                event_id=entry.event_id,
            )
        )
    else:
        try:
            got = envelope_leaf_hash(env)
        except (TypeError, ValueError) as exc:
            got = b""
            detail = f"envelope cannot be canonicalised: {exc}"
        else:
            detail = (
                f"stored envelope hashes to {got.hex()}, the log recorded {entry.leaf_hash.hex()}"
            )
        if got != entry.leaf_hash:
            out.append(
                Finding(FindingKind.LEAF_HASH, origin, detail, leaf=i, event_id=entry.event_id)
            )
        if str(env.get("id")) != entry.event_id:
            out.append(
                Finding(
                    FindingKind.LEAF_EVENT_ID,
                    origin,
                    f"stored envelope is event {env.get('id')}, the log recorded {entry.event_id}",
                    leaf=i,
                    event_id=entry.event_id,
                )
            )
    earlier = first_index.setdefault(entry.event_id, i)
    if earlier != i:
        out.append(
            Finding(
                FindingKind.DUPLICATE_EVENT,
                origin,
                f"event already logged at leaf {earlier}",
                leaf=i,
                event_id=entry.event_id,
            )
        )
    return out


# --- across nodes ----------------------------------------------------------------------


def verify_exchange(
    logs: Mapping[str, LogReport],
    *,
    now: datetime | None = None,
    grace: timedelta = timedelta(0),
) -> list[Finding]:
    """Cross-node completeness. For every two nodes A and B given: each event A's log
    says A sent to B is in B's log with the same leaf hash, and each event B's log says
    B received from A is in A's log. An event younger than `grace` (by its envelope
    time, against `now`) missing at the receiver is only a warning: it may be in transit.
    """
    now = now or datetime.now(UTC)
    index: dict[str, dict[str, LeafEntry]] = {}
    for agency, report in logs.items():
        by_id: dict[str, LeafEntry] = {}
        for e in report.leaves:
            by_id.setdefault(e.event_id, e)
        index[agency] = by_id
    out: list[Finding] = []
    for a, report_a in logs.items():
        for b, report_b in logs.items():
            if a == b:
                continue
            for e in report_a.leaves:  # A's log: A sent to B
                env = e.envelope
                if env is None or _sender(env) != a or b not in _recipients(env):
                    continue
                there = index[b].get(e.event_id)
                if there is None:
                    young = _is_young(env, now, grace)
                    out.append(
                        Finding(
                            FindingKind.IN_TRANSIT if young else FindingKind.NOT_RECEIVED,
                            report_a.origin,
                            f"{a} logged sending this event to {b}, whose log does not hold it"
                            + (" (recent: may be in transit)" if young else ""),
                            leaf=e.index,
                            event_id=e.event_id,
                        )
                    )
                elif there.leaf_hash != e.leaf_hash:
                    out.append(
                        Finding(
                            FindingKind.EXCHANGE_MISMATCH,
                            report_a.origin,
                            f"{b} logged this event at leaf {there.index} with leaf hash "
                            f"{there.leaf_hash.hex()}, {a} with {e.leaf_hash.hex()}",
                            leaf=e.index,
                            event_id=e.event_id,
                        )
                    )
            for e in report_b.leaves:  # B's log: B received from A
                env = e.envelope
                if env is None or _sender(env) != a or b not in _recipients(env):
                    continue
                if e.event_id not in index[a]:
                    out.append(
                        Finding(
                            FindingKind.NOT_SENT,
                            report_b.origin,
                            f"{b} logged receiving this event from {a}, whose log does not hold it",
                            leaf=e.index,
                            event_id=e.event_id,
                        )
                    )
    return out


def _is_young(envelope: Mapping[str, Any], now: datetime, grace: timedelta) -> bool:
    if grace <= timedelta(0):
        return False
    try:
        t = datetime.fromisoformat(str(envelope.get("time")).replace("Z", "+00:00"))
    except ValueError:
        return False
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return now - t < grace


def accountability_findings(report: LogReport) -> list[Finding]:
    """R7 warnings: decisions in the log that name no officer."""
    out = []
    for e in report.leaves:
        d = decision_of(e.envelope) if e.envelope is not None else None
        if d is not None and d.officer is None and DECISION_TYPES[d.event_type] is not None:
            out.append(
                Finding(
                    FindingKind.NO_OFFICER,
                    report.origin,
                    f"{d.event_type} by {d.agency} names no officer (R7)",
                    leaf=e.index,
                    event_id=e.event_id,
                )
            )
    return out


def report_json(reports: Sequence[LogReport], exchange: Sequence[Finding]) -> str:
    """A machine-readable verdict for archiving next to the human one."""
    findings = [f for r in reports for f in r.findings] + list(exchange)
    first = first_error(findings)
    body = {
        "ok": first is None,
        "first_error": first.as_json() if first else None,
        "logs": [
            {
                "origin": r.origin,
                "agency": r.agency_id,
                "size": r.checkpoint.size if r.checkpoint else None,
                "root": r.checkpoint.root.hex() if r.checkpoint else None,
                "cosignatures": r.cosignatures,
                "ok": r.ok,
            }
            for r in reports
        ],
        "findings": [f.as_json() for f in findings],
    }
    return json.dumps(body, indent=2)
