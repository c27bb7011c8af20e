"""The load generator, run as its own process (`python -m nrm.bench.loader CONFIG`).

Why a separate process: an agency's systems are not inside the bus, and an HTTP client in
the bus's own interpreter would take the GIL from the nodes it measures. The loader reads
one JSON command per stdin line, plays it against the sender's router, and answers with
one JSON line: per request, when it was due, sent and answered (CLOCK_MONOTONIC,
comparable with every process of this machine), the event ids and the status.

Modes: a fixed offered load (open loop: request i is due at t0 + i/rate, whatever the
answers, with up to `concurrency` requests in flight) and saturation (closed loop:
`concurrency` requests always in flight); with `batch`, each request is a
`POST /v1/events:batch` of that many events instead of one event. No two requests in
flight touch the same case: concurrent appends to one case are refused by the store's
optimistic concurrency, which is not what is being measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
import sys
import time
from pathlib import Path
from typing import Any

from contracts.agency_token import issue_token
from contracts.directory import KeyUse
from nrm import serving
from nrm.bench.lane import Lane
from nrm.bench.workload import EVENTS_PER_CASE, follow_up, screened_payload
from nrm.embedded import Keychain
from nrm.serving import verify_context

#: A result: [due, sent, answered, event ids (or the error), status, Retry-After or None]
Result = list[Any]


class _Slot:
    """One lane of traffic: the case it is filling, how many events it holds, and the
    connection it sends through."""

    def __init__(self, lane: Lane) -> None:
        self.lane = lane
        self.case: str | None = None
        self.count = 0


async def _open(lane: Lane) -> None:
    with contextlib.suppress(Exception):  # a lane that fails to open opens later
        await lane.request("GET", "/healthz")


class Loader:
    def __init__(
        self,
        base_url: str,
        sender: str,
        secrets: Path,
        audience: str,
        ca_file: str | None = None,
    ) -> None:
        pair = Keychain(secrets).keys(sender).current(KeyUse.SIGNING)
        self.sender = sender
        self.key_id = pair.key_id
        self.private = pair.ed25519()
        self.audience = audience
        self.base_url = base_url
        #: an HTTPS node (the process topology) is trusted through the country's CA; one
        #: context for every lane (each would otherwise load the system's CAs)
        self.verify = verify_context(ca_file) if ca_file else ssl.create_default_context()
        self.seq = 0

    def _token(self) -> str:
        return issue_token(self.sender, self.key_id, self.private, self.audience)

    def _single(self, slot: _Slot, recipients: list[str]) -> tuple[str, dict[str, Any]]:
        self.seq += 1
        if slot.case is None or slot.count >= EVENTS_PER_CASE:
            slot.case, slot.count = None, 0
            return "/v1/cases", {"recipients": recipients, "payload": screened_payload(self.seq)}
        event_type, payload = follow_up(self.seq)
        return f"/v1/cases/{slot.case}/events", {
            "type": event_type,
            "recipients": recipients,
            "payload": payload,
        }

    def _batch(self, size: int, recipients: list[str]) -> dict[str, Any]:
        """`size` events: whole cases (a screening, then its follow-ups by `case_of`)."""
        events: list[dict[str, Any]] = []
        opened = 0
        for i in range(size):
            self.seq += 1
            if i % EVENTS_PER_CASE == 0:
                opened = i
                events.append(
                    {
                        "type": "case.screened",
                        "recipients": recipients,
                        "payload": screened_payload(self.seq),
                    }
                )
            else:
                event_type, payload = follow_up(self.seq)
                events.append(
                    {
                        "type": event_type,
                        "recipients": recipients,
                        "payload": payload,
                        "case_of": opened,
                    }
                )
        return {"events": events}

    async def run(self, cmd: dict[str, Any]) -> dict[str, Any]:
        n: int = cmd["n"]
        rate: float | None = cmd.get("rate")
        concurrency: int = cmd.get("concurrency", 32)
        recipients: list[str] = cmd["recipients"]
        batch: int | None = cmd.get("batch")
        #: a fixed load stops offering after this long, even if the bus fell behind
        max_seconds: float = cmd.get("max_seconds") or float("inf")
        results: list[Result] = []
        free: asyncio.Queue[_Slot] = asyncio.Queue()
        cpu0 = os.times()
        lanes = [_Slot(Lane(self.base_url, self.verify)) for _ in range(concurrency)]
        try:
            # Every lane's connection is opened before the clock starts, as an agency's
            # client keeps its connections: the row times requests, not TLS handshakes.
            await asyncio.gather(*(_open(slot.lane) for slot in lanes))
            for slot in lanes:
                free.put_nowait(slot)

            async def one(slot: _Slot, due: float) -> None:
                headers = (("authorization", f"Bearer {self._token()}"),)
                if batch:
                    url, body = "/v1/events:batch", self._batch(batch, recipients)
                else:
                    url, body = self._single(slot, recipients)
                t_send = time.monotonic()
                try:
                    status, answer, data = await slot.lane.request("POST", url, body, headers)
                    retry_after = answer.get("retry-after")
                except Exception as exc:  # a failed request is a result, not a crash
                    status, data, retry_after = 599, {"detail": repr(exc)}, None
                t_done = time.monotonic()
                if batch and status == 200:
                    ids = [r["event_id"] for r in data["results"] if r["status"] == 201]
                    results.append([due, t_send, t_done, ids, 201, None, len(body["events"])])
                elif status == 201:
                    slot.case = data["case"]
                    slot.count += 1
                    results.append([due, t_send, t_done, [data["event_id"]], status, None, 1])
                else:
                    results.append([due, t_send, t_done, str(data)[:200], status, retry_after, 1])
                    if not rate and retry_after and retry_after.isdigit():
                        # A closed loop is a well-behaved client: it waits as it is told.
                        await asyncio.sleep(min(float(retry_after), 5.0))
                free.put_nowait(slot)

            tasks: set[asyncio.Task[None]] = set()
            t0 = time.monotonic() + 0.05
            for i in range(n):
                if time.monotonic() - t0 > max_seconds:
                    break
                due = t0 + i / rate if rate else time.monotonic()
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                slot = await free.get()
                task = asyncio.create_task(one(slot, due if rate else time.monotonic()))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            while tasks:
                await asyncio.gather(*list(tasks))
        finally:
            for slot in lanes:
                slot.lane.close()
        cpu1 = os.times()
        return {
            "results": results,
            "loader_cpu_s": round((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system), 3),
        }


async def _serve(config: dict[str, Any]) -> None:
    loader = Loader(
        config["base_url"],
        config["sender"],
        Path(config["secrets"]),
        config["audience"],
        config.get("ca_file"),
    )
    loop = asyncio.get_running_loop()
    print(json.dumps({"ready": True}), flush=True)
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line.strip():
            return
        cmd = json.loads(line)
        if cmd.get("op") == "stop":
            return
        out = await loader.run(cmd)
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    serving.run(_serve(json.loads(sys.argv[1])))  # the services' loop (NRM_EVENT_LOOP)
