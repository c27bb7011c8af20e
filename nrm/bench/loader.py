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
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from contracts.agency_token import issue_token
from contracts.connections import CLIENT_IDLE_S
from contracts.directory import KeyUse
from nrm import serving
from nrm.bench.workload import EVENTS_PER_CASE, follow_up, screened_payload
from nrm.embedded import Keychain
from nrm.serving import verify_context

#: A result: [due, sent, answered, event ids (or the error), status, Retry-After or None]
Result = list[Any]


#: Lanes per HTTP client. httpcore's pool re-scans every connection against every
#: queued request on each request it starts or ends, asking each TLS connection whether
#: it expired (quadratic in the pool's size): one pool of 500 lanes cost the loader ~10
#: ms of CPU per request at the overload row, on the same two cores as the bus it
#: measures, and pools of 16 still spent a third of the loader's samples there. A pool
#: of one keeps that bookkeeping to one connection.
LANES_PER_CLIENT = 1


class _Slot:
    """One lane of traffic: the case it is filling, how many events it holds, and the
    client (connection pool) it sends through."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.case: str | None = None
        self.count = 0


async def _open(client: httpx.AsyncClient) -> None:
    with contextlib.suppress(httpx.HTTPError):  # a lane that fails to open opens later
        await client.get("/healthz")


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
        #: context for every lane's client (each would otherwise load the system's CAs)
        self.verify = verify_context(ca_file) if ca_file else httpx.create_ssl_context()
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
        pool = min(concurrency, LANES_PER_CLIENT)
        limits = httpx.Limits(
            max_connections=pool, max_keepalive_connections=pool, keepalive_expiry=CLIENT_IDLE_S
        )
        cpu0 = os.times()
        async with contextlib.AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(
                    httpx.AsyncClient(
                        base_url=self.base_url, timeout=60, limits=limits, verify=self.verify
                    )
                )
                for _ in range(-(-concurrency // pool))
            ]
            lanes = [_Slot(clients[lane // pool]) for lane in range(concurrency)]
            # Every lane's connection is opened before the clock starts, as an agency's
            # client keeps its pool: the row times requests, not TLS handshakes.
            await asyncio.gather(*(_open(lane.client) for lane in lanes))
            for lane in lanes:
                free.put_nowait(lane)

            async def one(slot: _Slot, due: float) -> None:
                headers = {"Authorization": f"Bearer {self._token()}"}
                if batch:
                    url, body = "/v1/events:batch", self._batch(batch, recipients)
                else:
                    url, body = self._single(slot, recipients)
                t_send = time.monotonic()
                try:
                    resp = await slot.client.post(url, json=body, headers=headers)
                    status, data = resp.status_code, resp.json()
                    retry_after = resp.headers.get("retry-after")
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
