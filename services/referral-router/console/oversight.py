"""The oversight body's watch over every node's audit log, run from its own node.

It fetches what `nrm audit verify` fetches (checkpoints, consistency proofs, the leaves
with their stored envelopes) from each node's oversight API, authenticating with this
node's own agency key, and lets `contracts.audit_verification` judge: the console adds no
verification logic of its own. Each verdict is kept with its time, so the view shows the
verdict over time; what a log showed at the last good run is remembered (its latest
checkpoint and every leaf hash), so a later rewrite or fork is caught even if the node
rewrote its whole history in between.

For one event the watch also hands the browser the raw material of an inclusion proof
(the node's signed checkpoint, the proof, the leaf's bytes, the registry's signed
directory and the pinned anchor), which the page checks itself: the oversight body need
not trust the server it is looking at.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import rfc8785

from contracts.audit_verification import (
    Finding,
    FindingKind,
    LeafEntry,
    LogReport,
    SeenLog,
    accountability_findings,
    check_cosignatures,
    claimed_checkpoint,
    first_error,
    sizes_to_prove,
    verify_exchange,
    verify_log,
    verify_witness_key,
)
from contracts.directory import Directory, TrustAnchor
from contracts.transparency import NoteError, NoteVerifier
from contracts.vocabulary import Role

log = logging.getLogger("nrm.console.oversight")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS oversight_verdicts ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT, agency TEXT NOT NULL, checked_at TEXT NOT NULL,"
    " ok INTEGER NOT NULL, size INTEGER, root TEXT, cosignatures INTEGER NOT NULL,"
    " cosigned_size INTEGER, problem TEXT, warnings INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS oversight_seen ("
    " origin TEXT PRIMARY KEY, checkpoints TEXT NOT NULL, leaf_hashes BLOB NOT NULL,"
    " notes INTEGER NOT NULL)",
)


class Unreachable(Exception):
    """A node's oversight API could not be read (down, refusing, or answering nonsense)."""


@dataclass(frozen=True)
class NodeVerdict:
    agency: str
    checked_at: datetime
    ok: bool
    size: int | None
    root: str | None
    cosignatures: int  # valid witness cosignatures on the latest checkpoint
    cosigned_size: int | None  # the largest checkpoint the witness cosigned, of those seen
    problem: str | None
    warnings: int


@dataclass
class Snapshot:
    """The last verification of every watched node."""

    checked_at: datetime
    verdicts: list[NodeVerdict]
    reports: dict[str, LogReport] = field(default_factory=dict)
    exchange: list[Finding] = field(default_factory=list)

    @property
    def verified(self) -> dict[str, LogReport]:
        return {a: r for a, r in self.reports.items() if r.ok}

    def envelopes(self) -> list[Mapping[str, Any]]:
        """Stored envelopes of verified logs only: nothing is counted from a log that
        does not verify."""
        return [
            e.envelope for r in self.verified.values() for e in r.leaves if e.envelope is not None
        ]

    @property
    def exchange_ok(self) -> bool:
        return first_error(self.exchange) is None


@dataclass(frozen=True)
class WatchSettings:
    peers: Callable[[], Mapping[str, str]]  # agency -> router base URL
    token: Callable[[str], str]  # a fresh bearer token for calling that agency's node
    registry_url: str | None = None
    anchor: TrustAnchor | None = None
    grace: timedelta = timedelta(minutes=5)  # an event this young may still be in transit
    timeout: float = 30.0
    page: int = 500
    max_leaves: int = 200_000
    first_notes: int = 100  # checkpoints verified on first sight of a log (then every new one)


class OversightWatch:
    def __init__(
        self,
        book: Path,
        directory: Callable[[], Directory],
        settings: WatchSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self._directory = directory
        self._clock = clock
        self._lock = threading.Lock()
        self._running = asyncio.Lock()
        self._db = sqlite3.connect(str(book), check_same_thread=False, timeout=10)
        self._db.execute("PRAGMA journal_mode=WAL")
        for statement in _SCHEMA:
            self._db.execute(statement)
        self._db.commit()
        self.latest: Snapshot | None = None
        self._cosigned: dict[str, int] = {}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- verification --------------------------------------------------------------

    async def verify(self) -> Snapshot:
        """Fetch and verify every watched node now (one run at a time)."""
        async with self._running, self._client() as client:
            directory = self._directory()
            witnesses = await self._witnesses(client)
            now = self._clock()
            reports: dict[str, LogReport] = {}
            verdicts: list[NodeVerdict] = []
            for agency, url in sorted(self.settings.peers().items()):
                try:
                    report = await self._verify_node(client, agency, url, directory, witnesses)
                except Unreachable as exc:
                    verdicts.append(
                        NodeVerdict(agency, now, False, None, None, 0, None, str(exc), 0)
                    )
                    continue
                reports[agency] = report
                verdicts.append(_verdict(agency, now, report, self._cosigned.get(agency)))
            exchange = verify_exchange(
                {a: r for a, r in reports.items() if r.checkpoint is not None},
                now=now,
                grace=self.settings.grace,
            )
            self._record(verdicts)
            self.latest = Snapshot(now, verdicts, reports, exchange)
            return self.latest

    async def victim_statistics(self) -> dict[str, Any]:
        """What each competent authority's node publishes (victims presumed and identified,
        small cells suppressed): the figures only it can count, since the outcome of an
        identification travels sealed. agency -> figures, or {"unavailable": reason}."""
        directory = self._directory()
        authorities = {a.id for a in directory.agencies if Role.COMPETENT_AUTHORITY in a.roles}
        out: dict[str, Any] = {}
        async with self._client() as client:
            for agency, url in sorted(self.settings.peers().items()):
                if agency not in authorities:
                    continue
                try:
                    out[agency] = await self._json(
                        client, agency, url, "/v1/audit/victim-statistics"
                    )
                except Unreachable as exc:
                    out[agency] = {"unavailable": str(exc)}
        return out

    @contextlib.asynccontextmanager
    async def _client(self) -> Any:
        async with httpx.AsyncClient(timeout=self.settings.timeout) as client:
            yield client

    async def _get(
        self, client: httpx.AsyncClient, agency: str, url: str, path: str, **params: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.settings.token(agency)}"}
        try:
            r = await client.get(url.rstrip("/") + path, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise Unreachable(f"{agency} unreachable: {type(exc).__name__}") from None
        if r.status_code >= 400:
            raise Unreachable(f"{agency} answered {r.status_code} to {path}: {_detail(r)}")
        return r

    async def _json(
        self, client: httpx.AsyncClient, agency: str, url: str, path: str, **params: Any
    ) -> Any:
        r = await self._get(client, agency, url, path, **params)
        try:
            return r.json()
        except ValueError:
            raise Unreachable(f"{agency}: {path} did not answer JSON") from None

    async def _witnesses(self, client: httpx.AsyncClient) -> list[NoteVerifier]:
        """The registry's witness key, believed only if the pinned anchor vouches for it."""
        s = self.settings
        if s.registry_url is None or s.anchor is None:
            return []
        try:
            r = await client.get(s.registry_url.rstrip("/") + "/v1/witness/key")
            return [verify_witness_key(r.json(), s.anchor)]
        except (httpx.HTTPError, ValueError, KeyError, NoteError) as exc:
            log.warning("no witness key from the registry: %s", exc)
            return []

    async def _verify_node(
        self,
        client: httpx.AsyncClient,
        agency: str,
        url: str,
        directory: Directory,
        witnesses: Sequence[NoteVerifier],
    ) -> LogReport:
        headers = {"Authorization": f"Bearer {self.settings.token(agency)}"}
        # A fresh checkpoint, so the view is of now (a node that refuses is not fatal).
        with contextlib.suppress(httpx.HTTPError):
            await client.post(url.rstrip("/") + "/v1/audit/checkpoints", headers=headers)
        latest = (await self._get(client, agency, url, "/v1/audit/checkpoint")).text
        claimed = claimed_checkpoint(latest)
        seen, notes_seen = self._seen(claimed.origin) if claimed else (None, 0)
        notes = await self._notes(client, agency, url, notes_seen)
        if not notes or notes[-1] != latest:
            notes.append(latest)
        proofs: dict[tuple[int, int], list[bytes]] = {}
        for old, new in sizes_to_prove(notes, seen):
            body = await self._json(client, agency, url, "/v1/audit/consistency", old=old, new=new)
            with contextlib.suppress(ValueError, KeyError, TypeError):
                proofs[(old, new)] = [bytes.fromhex(h) for h in body["proof"]]
        size = claimed.size if claimed else 0
        if size > self.settings.max_leaves:
            raise Unreachable(
                f"{agency}'s log holds {size} leaves, more than this console verifies "
                f"({self.settings.max_leaves}): use `nrm audit verify`"
            )
        leaves = await self._leaves(client, agency, url, size)
        report = await asyncio.to_thread(
            verify_log, notes, leaves, proofs, directory, seen=seen, witnesses=witnesses
        )
        if report.checkpoint is not None and report.agency_id != agency:
            report.findings.insert(
                0,
                Finding(
                    FindingKind.WRONG_ORIGIN,
                    report.origin,
                    f"the node at {url} serves the log of {report.agency_id}, not {agency}",
                ),
            )
            report.seen = None
        report.findings.extend(accountability_findings(report))
        for note in notes:
            cp = claimed_checkpoint(note)
            if cp is not None and witnesses and check_cosignatures(note, witnesses)[0] > 0:
                self._cosigned[agency] = max(self._cosigned.get(agency, 0), cp.size)
        if report.ok and report.seen is not None:
            self._remember(report.seen, notes_seen + len(notes))
        return report

    async def _notes(
        self, client: httpx.AsyncClient, agency: str, url: str, seen: int
    ) -> list[str]:
        """Checkpoints issued since the last run (on first sight, the latest few)."""
        head = await self._json(client, agency, url, "/v1/audit/checkpoints", start=0, limit=1)
        total = int(head.get("total", 0))
        start = seen if seen else max(0, total - self.settings.first_notes)
        notes: list[str] = []
        while start < total:
            body = await self._json(
                client, agency, url, "/v1/audit/checkpoints", start=start, limit=self.settings.page
            )
            items = body.get("items", [])
            if not items:
                break
            notes.extend(str(c["note"]) for c in items)
            start += len(items)
        return notes

    async def _leaves(
        self, client: httpx.AsyncClient, agency: str, url: str, size: int
    ) -> list[LeafEntry]:
        leaves: list[LeafEntry] = []
        while len(leaves) < size:
            body = await self._json(
                client,
                agency,
                url,
                "/v1/audit/leaves",
                start=len(leaves),
                limit=min(self.settings.page, size - len(leaves)),
            )
            items = body.get("items", [])
            if not items:
                break
            try:
                leaves.extend(LeafEntry.from_json(i) for i in items)
            except ValueError as exc:
                raise Unreachable(f"{agency} served a malformed leaf: {exc}") from None
        return leaves[:size]

    # --- what the watch remembers --------------------------------------------------

    def _seen(self, origin: str) -> tuple[SeenLog | None, int]:
        with self._lock:
            row = self._db.execute(
                "SELECT checkpoints, leaf_hashes, notes FROM oversight_seen WHERE origin = ?",
                (origin,),
            ).fetchone()
        if row is None:
            return None, 0
        raw = bytes(row[1])
        hashes = [raw[i : i + 32] for i in range(0, len(raw) - len(raw) % 32, 32)]
        return SeenLog.from_json(json.loads(row[0]), hashes), int(row[2])

    def _remember(self, seen: SeenLog, notes: int) -> None:
        """Only the largest checkpoint is kept: earlier ones were proven consistent with it
        at earlier runs, and consistency is transitive, so each run fetches only the
        proofs from there on."""
        largest = max(seen.checkpoints, default=0)
        kept = SeenLog(seen.origin, {largest: seen.checkpoints[largest]} if largest else {})
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO oversight_seen VALUES (?, ?, ?, ?)",
                (seen.origin, json.dumps(kept.to_json()), b"".join(seen.leaf_hashes), notes),
            )
            self._db.commit()

    def _record(self, verdicts: Sequence[NodeVerdict]) -> None:
        with self._lock:
            self._db.executemany(
                "INSERT INTO oversight_verdicts (agency, checked_at, ok, size, root,"
                " cosignatures, cosigned_size, problem, warnings)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        v.agency,
                        v.checked_at.isoformat(),
                        int(v.ok),
                        v.size,
                        v.root,
                        v.cosignatures,
                        v.cosigned_size,
                        v.problem,
                        v.warnings,
                    )
                    for v in verdicts
                ],
            )
            self._db.commit()

    def history(self, per_node: int = 12) -> dict[str, list[NodeVerdict]]:
        """Each node's latest verdicts, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT agency, checked_at, ok, size, root, cosignatures, cosigned_size,"
                " problem, warnings"
                " FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY agency ORDER BY seq DESC)"
                " AS n FROM oversight_verdicts) WHERE n <= ? ORDER BY agency, n",
                (per_node,),
            ).fetchall()
        out: dict[str, list[NodeVerdict]] = {}
        for a, t, ok, size, root, cos, cosigned, problem, warnings in rows:
            out.setdefault(a, []).append(
                NodeVerdict(
                    a,
                    datetime.fromisoformat(t),
                    bool(ok),
                    size,
                    root,
                    cos,
                    cosigned,
                    problem,
                    warnings,
                )
            )
        return out

    async def run(self, interval: float, stop: asyncio.Event) -> None:
        """Verify every `interval` seconds until `stop`; a failed run is logged, not fatal."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
            if stop.is_set():
                return
            try:
                await self.verify()
            except Exception:
                log.exception("oversight verification failed; next run retries")

    # --- material for the browser's own check ---------------------------------------

    async def proof_material(self, agency: str, event_id: str) -> dict[str, Any]:
        """Everything the page needs to check, by itself, that the event is in the node's
        log: nothing here is checked by this server, on purpose."""
        url = self.settings.peers().get(agency)
        if url is None:
            raise LookupError(f"{agency} is not a watched node")
        async with self._client() as client:
            note = (await self._get(client, agency, url, "/v1/audit/checkpoint")).text
            claimed = claimed_checkpoint(note)
            if claimed is None:
                raise Unreachable(f"{agency} served a malformed checkpoint")
            proof = await self._json(
                client, agency, url, "/v1/audit/inclusion", event_id=event_id, size=claimed.size
            )
            index = int(proof["index"])
            leaf = await self._json(client, agency, url, "/v1/audit/leaves", start=index, limit=1)
            items = leaf.get("items") or [{}]
            envelope = items[0].get("envelope")
            if envelope is None:
                raise Unreachable(f"{agency} no longer holds the envelope of leaf {index}")
            directory, witness = await self._registry_documents(client)
        s = self.settings
        return {
            "agency": agency,
            "event_id": event_id,
            "note": note,
            "index": index,
            "size": claimed.size,
            "proof": list(proof.get("proof", [])),
            "leaf": base64.b64encode(rfc8785.dumps(envelope)).decode(),
            "anchor": s.anchor.model_dump() if s.anchor is not None else None,
            "signed_directory": directory,
            "witness_key": witness,
        }

    async def _registry_documents(self, client: httpx.AsyncClient) -> tuple[Any | None, Any | None]:
        base = self.settings.registry_url
        if base is None:
            return None, None
        out = []
        for path in ("/v1/directory", "/v1/witness/key"):
            try:
                r = await client.get(base.rstrip("/") + path)
                out.append(r.json() if r.is_success else None)
            except (httpx.HTTPError, ValueError):
                out.append(None)
        return out[0], out[1]


def _verdict(
    agency: str, now: datetime, report: LogReport, cosigned_size: int | None
) -> NodeVerdict:
    first = first_error(report.findings)
    cp = report.checkpoint
    return NodeVerdict(
        agency=agency,
        checked_at=now,
        ok=first is None,
        size=cp.size if cp else None,
        root=cp.root.hex() if cp else None,
        cosignatures=report.cosignatures,
        cosigned_size=cosigned_size,
        problem=first.line() if first else None,
        warnings=sum(1 for f in report.findings if not f.is_error),
    )


def _detail(r: httpx.Response) -> str:
    try:
        return str(r.json().get("detail"))[:200]
    except (ValueError, AttributeError):
        return r.text[:200]
