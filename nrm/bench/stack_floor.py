"""What the design card's parts cost per event with no bus logic at all: the stack's floor.

The crypto floor (`crypto_floor`) is what sealing and opening cannot go below. An event
also has to cross the parts every node is built from, whatever the bus does with it: one
HTTPS request into the sending node (uvicorn on the node's own loop, TLS and body limit,
`nrm.serving`), one Kafka record per recipient produced and consumed (aiokafka, from the
transport baseline of the same run), and one durable SQLite commit on the sender and on
each recipient (the store stage's raw loop). Here each is timed bare, as CPU: an app that
parses the body and answers 201, a loop that only produces and consumes, a table with
one column. Their sum beside the crypto floor says how much of the CPU-per-event target
is left for the bus's own work (rules, tokens, the audit log, the notifier) on this stack.
A commit is counted once per event on each node, as at a light load (at saturation the
bus groups them, so that part is the most grouping can save).
With the producing side timed alone (`transport_baseline.kafka_producer_us`), the sending
node's floor, single and batched, says whether the CPU and batch targets can hold together.

Run as a module, it is the bare server: ``python -m nrm.bench.stack_floor CERT PORT``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from nrm.bench.lane import Lane
from nrm.bench.targets import BATCH_SHARE, CPU_TIMES_FLOOR
from nrm.bench.workload import RECIPIENTS, follow_up
from nrm.supervisor import cpu_seconds

#: The answer of the bare server: what a node's 201 carries, about.
_ANSWER = json.dumps({"event_id": "0" * 36, "position": 1, "case": "case-0"}).encode()
#: A bearer token's length on the wire (the bare server reads it and checks nothing).
_TOKEN_CHARS = 520


async def _bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads the body whole, parses it as JSON, answers 201: HTTP and TLS, nothing else."""
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    json.loads(body or b"null")
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(_ANSWER))]
    await send({"type": "http.response.start", "status": 201, "headers": headers})
    await send({"type": "http.response.body", "body": _ANSWER})


def _serve(cert: Path, port: int) -> None:
    from nrm import serving

    served = serving.server(_bare_app, "127.0.0.1", port, serving.ServerTls(cert))
    serving.run(served.serve())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _until_listening(port: int, proc: subprocess.Popen[bytes], within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the bare server exited with {proc.returncode}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the bare server did not listen within {within} s")


async def https_request_us(requests: int = 2000, lanes: int = 16) -> dict[str, Any]:
    """CPU of the bare server per HTTPS request (a follow-up event's body and a token's
    length of header), `lanes` kept-open connections at once, as the loader sends."""
    from nrm.pki import LocalCA, service

    with tempfile.TemporaryDirectory(prefix="nrm-bench-https-") as tmp:
        ca = LocalCA.init(Path(tmp), "XA")
        cert = ca.issue(service("bench-bare"))
        port = _free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "nrm.bench.stack_floor", str(cert), str(port)],
            stdout=subprocess.DEVNULL,
        )
        try:
            await _until_listening(port, proc, within=30.0)
            tls = ssl.create_default_context(cafile=str(ca.ca_file))
            open_lanes = [Lane(f"https://127.0.0.1:{port}", tls) for _ in range(lanes)]
            event_type, payload = follow_up(1)
            body = {"type": event_type, "recipients": list(RECIPIENTS[:3]), "payload": payload}
            headers = (("authorization", "Bearer " + "t" * _TOKEN_CHARS),)
            each = max(1, requests // lanes)

            async def send(lane: Lane, n: int) -> None:
                for _ in range(n):
                    status, _, _ = await lane.request("POST", "/v1/cases/c/events", body, headers)
                    if status != 201:
                        raise RuntimeError(f"the bare server answered {status}")

            try:
                await asyncio.gather(*(send(lane, 5) for lane in open_lanes))  # connect, warm
                cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
                await asyncio.gather(*(send(lane, each) for lane in open_lanes))
                cpu, wall = cpu_seconds(proc.pid) - cpu0, time.perf_counter() - t0
            finally:
                for lane in open_lanes:
                    lane.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    done = each * lanes
    return {
        "requests": done,
        "lanes": lanes,
        "body_bytes": len(json.dumps(body)),
        "https_request_us": round(cpu / done * 1e6, 1),
        "requests_per_s": round(done / wall, 1),
    }


def floor(doc: dict[str, Any], recipients: int = 3) -> dict[str, Any] | None:
    """The stack's floor per event at `recipients` from this run's parts, or None when a
    part was not measured: one request, the records of the raw Kafka loop at saturation,
    one durable commit on the sender and on each recipient."""
    https = (doc.get("stack_floor") or {}).get("https_request_us")
    commit = (doc.get("store_append") or {}).get("raw_sqlite_cpu_us")
    kafka = next(
        (
            r.get("client_cpu_us_per_event")
            for r in doc.get("transport_baseline", [])
            if (r["transport"], r["recipients"], r["offered_events_per_s"])
            == ("kafka", recipients, "saturation")
        ),
        None,
    )
    if not (https and commit and kafka):
        return None
    commits = round((1 + recipients) * commit, 1)
    return {
        "recipients": recipients,
        "https_request_us": https,
        "kafka_client_us": kafka,
        "durable_commits_us": commits,
        "stack_us": round(https + kafka + commits, 1),
    }


def at_the_floor(
    doc: dict[str, Any], recipients: int = 3, size: int = 200
) -> dict[str, Any] | None:
    """The sending node's bare cost per event, single and in a batch of `size`, and what
    the CPU target would leave it: the batch target's ratio at the floor, and whether the
    two targets can hold together on this stack. None when a part was not measured.

    Bare, a single request costs the sender one request, sealing's crypto, one commit and
    producing its records; a batched event the same but a `size`-th of the request and
    the commit. Were the CPU target met, the sender could spend at most 4 crypto floors
    less what the recipients cannot go below (opening, a commit each, consuming), with the
    notifier free; the batch target allows a batched event a fifth of that. Producing is
    counted because the batch target is judged on the sending node's whole CPU, its
    relay's publishing included (`targets`)."""
    bare = floor(doc, recipients)
    producing = (doc.get("stack_floor") or {}).get("kafka_producer_us")
    crypto = next((r for r in doc.get("crypto_floor", []) if r["recipients"] == recipients), None)
    if not (bare and producing and crypto):
        return None
    https, client = bare["https_request_us"], bare["kafka_client_us"]
    commit = doc["store_append"]["raw_sqlite_cpu_us"]
    seal, opening = crypto["floor_seal_us"], crypto["floor_open_us"]
    single = https + seal + commit + producing
    batched = seal + producing + (https + commit) / size
    receivers = recipients * (opening + commit) + max(client - producing, 0.0)
    single_at_most = CPU_TIMES_FLOOR * (seal + recipients * opening) - receivers
    return {
        "sender_single_us": round(single, 1),
        "sender_batched_us": round(batched, 1),
        "batch_share_at_floor": round(batched / single, 3),
        "sender_single_at_most_us": round(single_at_most, 1),
        "batched_at_most_us": round(BATCH_SHARE * single_at_most, 1),
        "cpu_and_batch_targets_together": batched <= BATCH_SHARE * single_at_most,
    }


if __name__ == "__main__":
    _serve(Path(sys.argv[1]), int(sys.argv[2]))
