"""A real bus running beside a test: embedded (one process) or a process per piece.

Both run their event loop in a background thread and offer the same sync helpers, so a
test written against `Running` proves its point on both topologies. What a test reads
behind the APIs (a node's store, its case keys, what is left on the transport) it reads
from the node's own files and the transport itself: on the process topology nothing of
a node is in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx

from contracts.keystore import AgencyKeys
from contracts.sealing import CaseKeyGrant, prove_unopenable
from nrm.broker import SecuredKafka
from nrm.embedded import DEMO_AGENCIES, AgencySpec, CountryAccess, CountryBus
from referral_router.runtime.node import sqlite_store_env
from referral_router.sealing.case_keys import SqliteCaseKeyStore
from referral_router.store.case_store import CaseStore
from referral_router.transport.sqlite_log import decode_headers

T = TypeVar("T")

GRANT_HEADER = "nrm_case_key_grant"


class Running:
    """Owns an event loop thread running a country's bus; sync helpers for tests."""

    bus: CountryAccess
    #: The folder holding every byte the bus wrote (stores, logs, the transport's files).
    written: Path

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def client(self, agency: str) -> httpx.Client:
        bus = self.bus

        def auth(request: httpx.Request) -> None:
            request.headers["Authorization"] = f"Bearer {bus.token(agency)}"

        return httpx.Client(
            base_url=bus.urls[agency],
            timeout=30,
            verify=bus.verify,
            event_hooks={"request": [auth]},
        )

    def get(self, url: str, **kw: Any) -> httpx.Response:
        """A GET trusting what the bus's servers are certified by (HTTPS on processes)."""
        return httpx.get(url, verify=self.bus.verify, **kw)

    def prove_nothing_opens(self, envelopes: list[Any]) -> None:
        """Every key material left anywhere (case key stores, long-term keys, master
        keys) fails to open any of `envelopes`."""
        sources = [self.case_keys(a).get for a in self.agencies]
        candidates: list[bytes] = []
        for agency in self.agencies:
            for pair in self.keys(agency).pairs:
                raw = pair.private
                candidates += [raw[i : i + 32] for i in range(0, len(raw), 32)]
            candidates.append(self.master_key(agency))
        for env in envelopes:
            prove_unopenable(env, key_sources=sources, candidate_keys=candidates)

    def settle(self) -> None:
        self.run(self.bus.settle(timeout=30), timeout=40)  # type: ignore[attr-defined]

    def order_erasure(self, case: str, legal_basis: str, officer: str) -> httpx.Response:
        """The competent authority orders the case erased (every party destroys its keys)."""
        with self.client("nrm-authority") as c:
            return c.post(
                f"/v1/cases/{case}/events",
                json={
                    "type": "case.erasure-ordered",
                    "recipients": ["child-protection"],
                    "payload": {"legal_basis": legal_basis, "ordered_by_officer": officer},
                },
            )

    def stop(self) -> None:
        try:
            self.run(self.bus.stop(), timeout=90)  # type: ignore[attr-defined]
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)

    # --- what lies behind the nodes' APIs ----------------------------------------------

    @property
    def agencies(self) -> list[str]:
        return list(self.bus.urls)

    def keys(self, agency: str) -> AgencyKeys:
        return self.bus.agency_keys[agency]

    def master_key(self, agency: str) -> bytes:
        return self.bus.keychain.master_key(agency)

    def store(self, agency: str) -> CaseStore:
        raise NotImplementedError

    def case_keys(self, agency: str) -> SqliteCaseKeyStore:
        raise NotImplementedError

    def grants_left(self) -> list[CaseKeyGrant]:
        """Every case-key grant still riding on the transport."""
        raise NotImplementedError

    def close_readers(self) -> None:
        """Close what `store` and `case_keys` opened."""


class RunningBus(Running):
    """The embedded bus (`CountryBus`): every piece in one process."""

    def __init__(
        self, data_dir: Path, agencies: tuple[AgencySpec, ...] = DEMO_AGENCIES, **kw: Any
    ) -> None:
        super().__init__()
        self.data_dir = self.written = data_dir
        self.bus: CountryBus = CountryBus("XA", data_dir, agencies=agencies, **kw)
        self.run(self.bus.start(), timeout=120)

    def store(self, agency: str) -> CaseStore:
        return self.bus.nodes[agency].store

    def case_keys(self, agency: str) -> SqliteCaseKeyStore:
        return self.bus.nodes[agency].case_keys

    def grants_left(self) -> list[CaseKeyGrant]:
        db = sqlite3.connect(self.data_dir / "XA" / "bus.db")
        try:
            return [
                CaseKeyGrant.from_bytes(value)
                for (headers,) in db.execute("SELECT headers FROM records")
                for name, value in decode_headers(headers)
                if name == GRANT_HEADER
            ]
        finally:
            db.close()


class RunningProcesses(Running):
    """The bus as a process per piece (`CountryProcesses`) on the secured Kafka `kafka`."""

    def __init__(
        self,
        data_dir: Path,
        kafka: SecuredKafka,
        agencies: tuple[AgencySpec, ...] = DEMO_AGENCIES,
        written: Path | None = None,
        **kw: Any,
    ) -> None:
        from nrm.topology import CountryProcesses

        super().__init__()
        self.written = written or data_dir
        self.kafka = kafka
        self.bus: CountryProcesses = CountryProcesses(
            "XA", data_dir, kafka, agencies=agencies, **kw
        )
        self._readers: list[Any] = []
        try:
            self.run(self.bus.start(), timeout=180)
        except BaseException:
            self.stop()
            raise

    def node_dir(self, agency: str) -> Path:
        return self.bus.root / "nodes" / agency

    def store(self, agency: str) -> CaseStore:
        """The node's store, opened from its file beside the running node."""
        store = CaseStore(env=sqlite_store_env(self.node_dir(agency) / "store.db"))
        self._readers.append(store)
        return store

    def case_keys(self, agency: str) -> SqliteCaseKeyStore:
        path = self.node_dir(agency) / "case-keys.db"
        keys = SqliteCaseKeyStore(path, self.master_key(agency))
        self._readers.append(keys)
        return keys

    def grants_left(self) -> list[CaseKeyGrant]:
        records = self.run(records_on(self.kafka, prefix="nrm.XA."), timeout=60)
        return [
            CaseKeyGrant.from_bytes(bytes(value))
            for _, headers in records
            for name, value in headers
            if name == GRANT_HEADER
        ]

    def close_readers(self) -> None:
        for reader in self._readers:
            reader.close()
        self._readers.clear()

    def stop(self) -> None:
        self.close_readers()
        super().stop()


async def records_on(
    kafka: SecuredKafka, prefix: str
) -> list[tuple[bytes, list[tuple[str, bytes]]]]:
    """(value, headers) of every record still on the topics named `prefix`*, read from
    each partition's start to its end by a consumer of no group (it commits nothing), as
    the operator."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(**kafka.client_options(), enable_auto_commit=False)
    await consumer.start()
    try:
        topics = [t for t in await consumer.topics() if t.startswith(prefix)]
        parts = [
            TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()
        ]
        if not parts:
            return []
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        out: list[tuple[bytes, list[tuple[str, bytes]]]] = []
        remaining = {tp for tp in parts if await consumer.position(tp) < ends[tp]}
        while remaining:
            batches = await consumer.getmany(timeout_ms=1000)
            for tp, records in batches.items():
                out += [(r.value or b"", list(r.headers or ())) for r in records]
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
            if not batches:
                remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
        return out
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await consumer.stop()


@contextmanager
def running_bus(data_dir: Path, **kw: Any) -> Iterator[RunningBus]:
    bus = RunningBus(data_dir, **kw)
    try:
        yield bus
    finally:
        bus.stop()
