"""Refusing what the node cannot take, before it costs anything.

When the node's intake is saturated (`Intake.saturated`), a request that would append is
answered at once with 503 `overloaded` and `Retry-After`, before its token is checked or
its body parsed: under an overload the node spends its time on what it accepted, and a
client learns at once when to come back instead of waiting in an unbounded queue or
losing its connection. Reads are never shed.
"""

from __future__ import annotations

import json
import re
from typing import Any

from contracts.problems import MEDIA_TYPE, problem
from referral_router.sending.intake import Intake

_APPENDS = re.compile(r"^/v1/(cases|cases/[^/]+/events|events:batch)$")


class Shedding:
    """Pure ASGI middleware in front of a node's app."""

    def __init__(self, app: Any, intake: Intake) -> None:
        self.app = app
        self.intake = intake

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and self.intake.saturated()
            and _APPENDS.match(scope["path"])
        ):
            await self._refuse(send)
            return
        await self.app(scope, receive, send)

    async def _refuse(self, send: Any) -> None:
        wait = self.intake.retry_after()
        found = problem("overloaded", f"the node is at capacity; retry after {wait} s")
        body = json.dumps(found.body()).encode()
        headers = [
            (b"content-type", MEDIA_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(wait).encode()),
        ]
        await send({"type": "http.response.start", "status": found.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
