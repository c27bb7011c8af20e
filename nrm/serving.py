"""HTTP servers for `nrm` commands, and clean stops on SIGINT and SIGTERM.

uvicorn, left to itself, installs its own signal handlers in whichever server started
last and re-raises the signal once it stopped serving, which kills the process before
stores are closed (SQLite's WAL left behind, a Kafka consumer group not left, a broker
orphaned). Here the command owns the signals: a signal sets an event, every server is
asked to exit, then the command closes what it opened, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Iterator
from typing import Any

import uvicorn

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class QuietServer(uvicorn.Server):
    """A uvicorn server that leaves the signals to the command running it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def server(app: Any, host: str, port: int, **options: Any) -> QuietServer:
    """One server: no access log lines (they would carry case pseudonyms in paths), the
    process's logging configuration kept (`nrm.logs`)."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        log_config=None,
        access_log=False,
        lifespan="off",
        **options,
    )
    return QuietServer(config)


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
