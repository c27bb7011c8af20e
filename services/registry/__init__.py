"""The registry (one per country, run by the national coordinator): agencies, roles, keys,
endpoints and the data-sharing agreement, event-sourced; serves the signed directory."""

from registry.api import create_app
from registry.application import (
    AgencyNotFound,
    Registry,
    RegistryConfig,
    RegistryConflict,
    RegistryError,
)

__all__ = [
    "AgencyNotFound",
    "Registry",
    "RegistryConfig",
    "RegistryConflict",
    "RegistryError",
    "create_app",
]
