"""Liveness and readiness of a node."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from contracts.directory import DirectoryError
from contracts.problems import ProblemError, openapi_responses, problem
from referral_router.api.auth import node_of

health = APIRouter(tags=["health"])


@health.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@health.get("/readyz", responses=openapi_responses(503))
async def readyz(request: Request) -> Any:
    """The store answers and a verified directory, confirmed by the registry within its
    maximum age, is loaded (otherwise the node neither sends nor applies events); with
    them the node's lags (`relay`: stored, not yet published; `inbox`: on its inbox
    topic, not yet applied), which an operator's status page and a supervisor watch."""
    node = node_of(request)
    lags = getattr(request.app.state, "lags", None)
    try:
        position = await asyncio.to_thread(node.store.max_position)
        serial = (await asyncio.to_thread(node.roster.fresh)).serial
        behind = await lags() if lags is not None else None
    except DirectoryError as exc:
        raise ProblemError(problem("directory-too-old", str(exc), rule="DIRECTORY")) from exc
    except Exception as exc:  # readiness reports any dependency failure as 503
        raise ProblemError(problem("not-ready", f"{type(exc).__name__}: {exc}")) from exc
    age = node.roster.source.age()
    return {
        "status": "ready",
        "agency": node.agency_id,
        "log_size": position,
        "directory": serial,
        "directory_age_seconds": None if age is None else int(age.total_seconds()),
        **({"lag": behind} if behind is not None else {}),
    }
