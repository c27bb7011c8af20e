"""Who may call the notifier's API: the agencies it serves, and the registry operator.

Callers authenticate with the same short-lived agency tokens as every API of the bus
(audience: this notifier). The operator (the national coordinator) is not in the
directory, so its keys come from configuration; `Parties` puts both side by side for the
token verifier.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts.directory import AgencyStatus, Directory, PublicKeyRecord


@dataclass(frozen=True)
class _Operator:
    status: AgencyStatus
    keys: list[PublicKeyRecord]


class Parties:
    """The directory's agencies plus the registry operator (not in the directory)."""

    def __init__(
        self,
        directory: Callable[[], Directory],
        operator_id: str | None,
        operator_keys: Sequence[PublicKeyRecord],
    ) -> None:
        self._directory = directory
        self._operator_id = operator_id
        self._operator = _Operator(AgencyStatus.ACTIVE, list(operator_keys))

    def agency(self, agency_id: str) -> Any:  # an AgencyRecord, or the operator's stand-in
        if agency_id == self._operator_id:
            return self._operator
        return self._directory().agency(agency_id)

    def signing_key(self, agency_id: str, key_id: str, at_time: datetime) -> PublicKeyRecord | None:
        if agency_id == self._operator_id:
            return next(
                (
                    k
                    for k in self._operator.keys
                    if k.key_id == key_id and k.use == "signing" and k.valid_at(at_time)
                ),
                None,
            )
        return self._directory().signing_key(agency_id, key_id, at_time)


@dataclass(frozen=True)
class Caller:
    agency_id: str
    operator: bool

    def may_see(self, agency_id: str) -> bool:
        return self.operator or self.agency_id == agency_id
