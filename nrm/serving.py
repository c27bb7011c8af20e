"""HTTP servers for `nrm` commands: TLS, body limits, and clean stops on SIGINT and SIGTERM.

- `ServerTls`: a service's certificate and key (`nrm pki issue ... service <name>`), and
  optionally the CA whose client certificates it requires, or the exact certificates it
  accepts (mutual TLS, pinned). uvicorn serves it.
- `verify_context`: what a client trusts. `NRM_CA_FILE` names the local CA; without it,
  the system's CAs (a registry behind a public certificate).
- `BodyLimit`: every request body (POST, PUT, PATCH) above the limit gets 413 before the
  application reads a byte of it, whether the client announced its length or streams it.
- `run`: a service's main coroutine on uvloop (`NRM_EVENT_LOOP=asyncio` for the standard
  loop): its TLS transport and callbacks are compiled, the standard loop's are Python, and
  every piece of the bus speaks TLS all day (HTTPS between processes, Kafka).
- Signals: uvicorn, left to itself, installs its own signal handlers in whichever server
  started last and re-raises the signal once it stopped serving, which kills the process
  before stores are closed (SQLite's WAL left behind, a Kafka consumer group not left, a
  broker orphaned). Here the command owns the signals: a signal sets an event, every
  server is asked to exit, then the command closes what it opened, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import signal
import ssl
from collections.abc import Awaitable, Callable, Coroutine, Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

from contracts.connections import SERVER_IDLE_S
from contracts.problems import MEDIA_TYPE, problem

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

#: `asyncio` runs a service on the standard event loop instead of uvloop.
EVENT_LOOP_ENV = "NRM_EVENT_LOOP"
EVENT_LOOPS = ("uvloop", "asyncio")

T = TypeVar("T")

#: Case events and registry records are small; a megabyte is generous and bounded.
DEFAULT_MAX_BODY = 1024 * 1024
CA_FILE_ENV = "NRM_CA_FILE"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class ServerTls:
    """A server's TLS identity; with `client_ca`, clients must present a certificate
    from that CA (mutual TLS); with `client_pins` (PEM), exactly one of these
    certificates (pinned: a gateway accepts its peer's alone, not its whole CA)."""

    cert_file: Path
    key_file: Path | None = None
    client_ca: Path | None = None
    client_pins: str | None = None

    def uvicorn_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "ssl_certfile": str(self.cert_file),
            "ssl_keyfile": str(self.key_file or self.cert_file),
        }
        if self.client_ca is not None:
            options["ssl_ca_certs"] = str(self.client_ca)
            options["ssl_cert_reqs"] = ssl.CERT_REQUIRED
        return options

    @classmethod
    def from_env(cls, env: MutableMapping[str, str] | None = None) -> ServerTls | None:
        """`NRM_TLS_CERT_FILE` (+ `NRM_TLS_KEY_FILE` unless in the same file); none: HTTP."""
        env = os.environ if env is None else env
        cert = env.get("NRM_TLS_CERT_FILE")
        if not cert:
            return None
        key = env.get("NRM_TLS_KEY_FILE")
        return cls(Path(cert), Path(key) if key else None)


def pin(ctx: ssl.SSLContext, certificates: str) -> ssl.SSLContext:
    """Trust exactly `certificates` (PEM), each its own anchor: no other certificate of
    their CA passes (OpenSSL's partial chains; validity and usage are still checked)."""
    ctx.load_verify_locations(cadata=certificates)
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return ctx


def verify_context(
    ca_file: str | os.PathLike[str] | None = None,
    client_cert: str | os.PathLike[str] | None = None,
) -> ssl.SSLContext | bool:
    """httpx's `verify=`: the local CA (`ca_file`, else `NRM_CA_FILE`) or the system's;
    with `client_cert` (key and chain in one PEM, or chain only), present it."""
    ca = ca_file or os.environ.get(CA_FILE_ENV)
    if not ca and not client_cert:
        return True
    ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if client_cert:
        ctx.load_cert_chain(str(client_cert))
    return ctx


def scheme(tls: ServerTls | None) -> str:
    return "https" if tls is not None else "http"


class BodyLimit:
    """413 for any request body over `max_bytes`, announced (Content-Length) or streamed.

    The body is read here first, up to the limit, and replayed to the application: a
    refused body never reaches a route, so nothing is looked up or written for it."""

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = True  # a length we cannot read is not one we accept
                if too_big:
                    await self._refuse(send)
                    return
        buffered: list[Message] = []
        size = 0
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                break  # the client left
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        refusal = problem(
            "payload-too-large", f"request bodies are limited to {self.max_bytes} bytes"
        )
        body = json.dumps(refusal.body()).encode()
        await send(
            {
                "type": "http.response.start",
                "status": refusal.status,
                "headers": [
                    (b"content-type", MEDIA_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class QuietServer(uvicorn.Server):
    """A uvicorn server that leaves the signals to the command running it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def server(
    app: Any,
    host: str,
    port: int,
    tls: ServerTls | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    **options: Any,
) -> QuietServer:
    """One server: its body limit, its TLS, no access log lines (they would carry case
    pseudonyms in paths), the process's logging configuration kept (`nrm.logs`)."""
    if tls is not None:
        options = {**tls.uvicorn_options(), **options}
    options.setdefault("timeout_keep_alive", SERVER_IDLE_S)  # contracts.connections
    config = uvicorn.Config(
        BodyLimit(app, max_body),
        host=host,
        port=port,
        log_level="warning",
        log_config=None,
        access_log=False,
        lifespan="off",
        **options,
    )
    if tls is not None and tls.client_pins:
        config.load()  # uvicorn builds the context here; serve() keeps a loaded config
        assert config.ssl is not None
        config.ssl.verify_mode = ssl.CERT_REQUIRED
        pin(config.ssl, tls.client_pins)
    return QuietServer(config)


def event_loop(env: MutableMapping[str, str] | None = None) -> str:
    """The event loop a service runs on: `NRM_EVENT_LOOP`, uvloop unless said."""
    chosen = (os.environ if env is None else env).get(EVENT_LOOP_ENV) or "uvloop"
    if chosen not in EVENT_LOOPS:
        raise ValueError(f"{EVENT_LOOP_ENV}={chosen!r}: one of {', '.join(EVENT_LOOPS)}")
    return chosen


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` for a service's process, on the event loop `event_loop` names."""
    try:
        factory = _loop_factory(event_loop())
    except ValueError:
        main.close()  # never started: no "coroutine was never awaited" warning
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if name == "asyncio":
        return None
    import uvloop

    return uvloop.new_event_loop


def stop_on_signals(stop: asyncio.Event) -> None:
    """SIGINT and SIGTERM set `stop` (a second signal changes nothing: the stop is
    already under way and is bounded by its own timeouts)."""
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)


def settle_heap() -> None:
    """Move everything alive once a service has started (modules, schemas, the directory)
    out of the garbage collector's sight: a long-running service then pays for
    collecting what it allocates while working, not for re-scanning what it built."""
    gc.collect()
    gc.freeze()
    # Young collections less often: a request allocates hundreds of short-lived objects,
    # and collecting every 700 allocations mostly re-finds them alive mid-request.
    gc.set_threshold(20_000, 20, 50)


async def serve_until_stopped(served: QuietServer, stop: asyncio.Event | None = None) -> None:
    """Run `served` until a signal (or `stop`), then let it finish its open requests."""
    settle_heap()
    stop = stop or asyncio.Event()
    stop_on_signals(stop)
    http = asyncio.create_task(served.serve(), name="http")
    waiter = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([http, waiter], return_when=asyncio.FIRST_COMPLETED)
    finally:
        served.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(http, 10)
        waiter.cancel()
    if http.done() and not http.cancelled() and http.exception() is not None:
        raise RuntimeError(f"HTTP server failed: {http.exception()}")


def add_tls_arguments(p: Any) -> None:
    """--tls-cert/--tls-key (default NRM_TLS_CERT_FILE/NRM_TLS_KEY_FILE) and --max-body."""
    p.add_argument(
        "--tls-cert",
        type=Path,
        default=os.environ.get("NRM_TLS_CERT_FILE") or None,
        help="serve HTTPS with this certificate chain, PEM (may hold the key too)",
    )
    p.add_argument("--tls-key", type=Path, default=os.environ.get("NRM_TLS_KEY_FILE") or None)
    p.add_argument(
        "--max-body", type=int, default=DEFAULT_MAX_BODY, help="request body limit (bytes)"
    )


def tls_from_args(args: Any) -> ServerTls | None:
    return ServerTls(args.tls_cert, args.tls_key) if args.tls_cert else None
