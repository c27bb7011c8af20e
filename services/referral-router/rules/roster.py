"""Who is on the bus, as this node knows it: the registry's verified directory (R6).

A thin adapter: the node asks "is this agency registered and active, in which roles, and
what may it read?" and gets an answer or a precise `UnknownAgency` naming rule R6. It also
answers "is the directory fresh enough to act on?": a node must neither send nor apply
events on a directory the registry has not confirmed within its maximum age, since a
suspension, revocation or key compromise it has not heard of may be in force.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Protocol

from contracts.authority import ORIGIN_CONTACT_ROLES
from contracts.directory import AgencyRecord, AgencyStatus, Directory
from contracts.need_to_know import CaseContext
from contracts.vocabulary import DataCategory, Role


class UnknownAgency(LookupError):
    """R6: information is never sent to, or accepted from, an unknown or inactive party."""

    rule = "R6"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DirectorySource(Protocol):
    """Where the node's directory comes from (`contracts.directory_client.DirectoryClient`)."""

    def current(self) -> Directory: ...

    def cached(self) -> Directory:
        """The last good directory, without network I/O."""
        ...

    def check_fresh(self, refresh: bool = True) -> Directory:
        """The directory, or raise if the registry has not confirmed it recently enough
        (`refresh=False`: judge the one held, no network I/O)."""
        ...

    def age(self) -> timedelta | None: ...

    def refresh_due(self) -> bool:
        """Whether `current` or `check_fresh` would do network I/O now."""
        ...


class Pinned:
    """A directory given once and never refreshed (tests, tools): always fresh."""

    def __init__(self, directory: Callable[[], Directory]) -> None:
        self._directory = directory

    def current(self) -> Directory:
        return self._directory()

    def cached(self) -> Directory:
        return self._directory()

    def check_fresh(self, refresh: bool = True) -> Directory:
        return self._directory()

    def age(self) -> timedelta | None:
        return timedelta(0)

    def refresh_due(self) -> bool:
        return False


class Roster:
    """Answers from the newest verified directory the node holds."""

    def __init__(self, source: DirectorySource) -> None:
        self.source = source

    @property
    def directory(self) -> Directory:
        """The last good directory, never waiting on the registry (the node's loops and
        request handlers read it); `fresh` is where the node refreshes it."""
        return self.source.cached()

    def fresh(self) -> Directory:
        """The directory, refreshed once due, if fresh enough to act on; raises
        `DirectoryTooOld` otherwise. Blocking when a refresh is due (`refresh_due`):
        then call it from a worker thread."""
        return self.source.check_fresh()

    def held_fresh(self) -> Directory:
        """The directory held, if fresh enough to act on; raises `DirectoryTooOld`
        otherwise. Never asks the registry (safe on an event loop): refreshing is
        `fresh`'s job, on a worker thread."""
        return self.source.check_fresh(refresh=False)

    def refresh_due(self) -> bool:
        """Whether `fresh` would ask the registry now (no I/O itself)."""
        return self.source.refresh_due()

    def active(self, agency_id: str) -> AgencyRecord:
        record = self.directory.agency(agency_id)
        if record is None:
            raise UnknownAgency(f"agency {agency_id!r} is not in the registry's directory")
        if record.status is not AgencyStatus.ACTIVE:
            raise UnknownAgency(f"agency {agency_id!r} is {record.status}")
        return record

    def roles_of(self, agency_id: str, directory: Directory | None = None) -> frozenset[Role]:
        """Every role the agency holds; none if the directory does not list it."""
        record = (directory or self.directory).agency(agency_id)
        return frozenset(record.roles) if record is not None else frozenset()

    def roles(
        self, agency_ids: Iterable[str], directory: Directory | None = None
    ) -> dict[str, frozenset[Role]]:
        d = directory or self.directory
        return {a: self.roles_of(a, d) for a in agency_ids}

    def origin_contacts(self) -> frozenset[str]:
        """Active agencies that may address the country of origin (R4): every asylum
        claim must be addressed to each of them."""
        return frozenset(
            a.id
            for a in self.directory.active_agencies()
            if not ORIGIN_CONTACT_ROLES.isdisjoint(a.roles)
        )

    def entitled(self, agency_id: str, ctx: CaseContext) -> frozenset[DataCategory]:
        return self.directory.entitled(agency_id, ctx)
