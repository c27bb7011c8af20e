"""How the registry answers every error: as a problem (`contracts.problems`).

Its own refusals carry their code (`RegistryError.code`: not found, conflict, the
witness's verdicts); the web framework's errors (schema, malformed JSON, unknown route,
wrong method) map as on every service of the bus; anything else is an internal error.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from contracts.problems import (
    Translations,
    framework_translations,
    install,
    problem,
)
from registry.application import RegistryError

TRANSLATIONS: Translations = {
    **framework_translations(RequestValidationError, HTTPException),
    RegistryError: lambda e: problem(e.code, str(e), rule=e.rule),
}


def install_error_handlers(app: FastAPI) -> None:
    """Every error of the registry's `app` answered as a problem."""
    install(app, TRANSLATIONS, JSONResponse)
