"""Liveness and readiness of a node."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from contracts.problems import ProblemError, openapi_responses, problem
from referral_router.api.auth import node_of

health = APIRouter(tags=["health"])


@health.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@health.get("/readyz", responses=openapi_responses(503))
def readyz(request: Request) -> Any:
    """The store answers and a verified directory is loaded."""
    node = node_of(request)
    try:
        position = node.store.max_position()
        serial = node.roster.directory.serial
    except Exception as exc:  # readiness reports any dependency failure as 503
        raise ProblemError(problem("not-ready", f"{type(exc).__name__}: {exc}")) from exc
    return {"status": "ready", "agency": node.agency_id, "log_size": position, "directory": serial}
