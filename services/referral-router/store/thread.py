"""The node's one thread for its store, and group commit on it.

A node's event loop never waits on the disk: every store transaction runs on one thread
of its own (`StoreThread`), so SQLite's writes are serialised without lock contention and
an fsync blocks nobody but the next transaction. Concurrent appends share transactions
(`GroupCommit`): while one batch commits, the next gathers, so a busy node pays one fsync
for many events and an idle one commits each event at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

log = logging.getLogger("nrm.store")

T = TypeVar("T")
Item = TypeVar("Item")
Result = TypeVar("Result")


class StoreThread:
    """Runs store work, one call at a time, on a dedicated thread (named `store` in the
    operating system's view, so `top -H` tells its time from the event loop's)."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix=f"store-{name}",
            initializer=_os_name,
            initargs=("store",),
        )

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=True)


@dataclass(eq=False)
class GroupCommit(Generic[Item, Result]):
    """Appends from concurrent callers, many to a transaction, in arrival order.

    `commit` appends a list of items in one transaction (it runs on the store thread) and
    returns one result per item; a batch takes waiting items up to `max_size` in all
    (`size` of each; one item is never split)."""

    thread: StoreThread
    commit: Callable[[Sequence[Item]], list[Result]]
    size: Callable[[Item], int] = lambda _: 1
    max_size: int = 500
    _waiting: list[tuple[Item, asyncio.Future[Result]]] = field(init=False, default_factory=list)
    _draining: asyncio.Task[None] | None = field(init=False, default=None)
    #: Size of the items waiting or being committed now.
    pending: int = field(init=False, default=0)

    def append(self, item: Item) -> asyncio.Future[Result]:
        """A future of `item`'s result, once its transaction committed (or failed: then
        the future raises the failure)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Result] = loop.create_future()
        self._waiting.append((item, done))
        self.pending += self.size(item)
        if self._draining is None:
            self._draining = loop.create_task(self._drain())
        return done

    def _take(self) -> list[tuple[Item, asyncio.Future[Result]]]:
        taken, total = 0, 0
        for item, _ in self._waiting:
            total += self.size(item)
            if taken and total > self.max_size:
                break
            taken += 1
        batch = self._waiting[:taken]
        del self._waiting[:taken]
        return batch

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = self._take()
                failure: Exception | None = None
                try:
                    results = await self.thread.run(self.commit, [i for i, _ in batch])
                except Exception as exc:  # the transaction itself failed: every item with it
                    log.exception("group commit failed")
                    failure, results = exc, []
                for n, (item, done) in enumerate(batch):
                    self.pending -= self.size(item)
                    if done.done():
                        continue
                    if failure is not None:
                        done.set_exception(failure)
                    else:
                        done.set_result(results[n])
        finally:
            self._draining = None


def _os_name(name: str) -> None:
    """Name the calling thread for the operating system (Linux; elsewhere a no-op)."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None)
        libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
