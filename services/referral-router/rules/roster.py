"""Who is on the bus, as this node knows it: the registry's verified directory (R6).

A thin adapter: the node asks "is this agency registered and active, in which role, and
what may it read?" and gets an answer or a precise `UnknownAgency` naming rule R6.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from contracts.directory import AgencyRecord, AgencyStatus, Directory
from contracts.need_to_know import CaseContext
from contracts.vocabulary import DataCategory, Role


class UnknownAgency(LookupError):
    """R6: information is never sent to, or accepted from, an unknown or inactive party."""

    rule = "R6"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Roster:
    """Answers from the newest verified directory the node holds."""

    def __init__(self, directory: Callable[[], Directory]) -> None:
        self._directory = directory

    @property
    def directory(self) -> Directory:
        return self._directory()

    def active(self, agency_id: str) -> AgencyRecord:
        record = self.directory.agency(agency_id)
        if record is None:
            raise UnknownAgency(f"agency {agency_id!r} is not in the registry's directory")
        if record.status is not AgencyStatus.ACTIVE:
            raise UnknownAgency(f"agency {agency_id!r} is {record.status}")
        return record

    def role(self, agency_id: str) -> Role:
        """The agency's primary (first-listed) role; rules reason about one role."""
        record = self.directory.agency(agency_id)
        return record.roles[0] if record is not None else Role.FIRST_RESPONDER

    def roles(self, agency_ids: Iterable[str]) -> dict[str, Role]:
        return {a: self.role(a) for a in agency_ids}

    def entitled(self, agency_id: str, ctx: CaseContext) -> frozenset[DataCategory]:
        return self.directory.entitled(agency_id, ctx)

    def signing_key_valid(self, agency_id: str, key_id: str, at: datetime) -> bool:
        return self.directory.signing_key(agency_id, key_id, at) is not None
