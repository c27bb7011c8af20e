"""Topic names of the referral bus: one scheme, ``nrm.<COUNTRY>.<kind>[.<agency>]``.

Names are scoped by country first so a country's registry (and its Kafka ACLs) can own
the prefix ``nrm.<COUNTRY>.``. Only the clear operational envelope decides the topic;
names never contain personal data (agency ids are public directory entries). Every topic
is partitioned by case pseudonym, so a case's events stay in order.

- ``nrm.XA.inbox.<agency>``    events addressed to one agency node (its inbox).
- ``nrm.XA.dead-letter.<agency>`` what one node could not verify or apply, for its
  own inspection (only that agency, and the operator, may read it).
- ``nrm.XA.directory``         signed directory updates published by the registry.
- ``nrm.XA.checkpoints``       signed log checkpoints of the nodes, for witnesses/oversight.
- ``nrm.XA.federation.<YB>``   events handed to counterpart country YB's bus.
"""

from __future__ import annotations

import re

PREFIX = "nrm"
_COUNTRY = re.compile(r"^[A-Z]{2}$")
# Kafka allows [a-zA-Z0-9._-]; "." separates our name parts, so not inside one.
_PART = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def _country(country: str) -> str:
    if not _COUNTRY.match(country):
        raise ValueError(f"country must be an ISO 3166-1 alpha-2 code, got {country!r}")
    return country


def _part(value: str, what: str) -> str:
    if not _PART.match(value):
        raise ValueError(f"{what} must match {_PART.pattern} to be a topic part, got {value!r}")
    return value


def inbox_topic(country: str, agency_id: str) -> str:
    """The inbox of one agency node: ``nrm.XA.inbox.<agency_id>``."""
    return f"{PREFIX}.{_country(country)}.inbox.{_part(agency_id, 'agency_id')}"


def dead_letter_topic(country: str, agency_id: str) -> str:
    """Where one node parks records it cannot verify or apply:
    ``nrm.XA.dead-letter.<agency_id>``. One per agency, so a dead letter (which holds the
    record as it arrived, grant header included) is readable only by its addressee."""
    return f"{PREFIX}.{_country(country)}.dead-letter.{_part(agency_id, 'agency_id')}"


def consumer_group(agency_id: str) -> str:
    """The consumer group of an agency's node (all its replicas): ``node.<agency_id>``."""
    return f"node.{_part(agency_id, 'agency_id')}"


def directory_topic(country: str) -> str:
    """Signed directory updates from the country's registry: ``nrm.XA.directory``."""
    return f"{PREFIX}.{_country(country)}.directory"


def checkpoints_topic(country: str) -> str:
    """Signed log checkpoints of the country's nodes: ``nrm.XA.checkpoints``."""
    return f"{PREFIX}.{_country(country)}.checkpoints"


def federation_topic(country: str, counterpart: str) -> str:
    """Events bound for a counterpart country's bus: ``nrm.XA.federation.YB``."""
    return f"{PREFIX}.{_country(country)}.federation.{_country(counterpart)}"


def parse_inbox_topic(topic: str) -> tuple[str, str] | None:
    """(country, agency_id) of an inbox topic, or None for any other topic."""
    parts = topic.split(".")
    is_inbox = len(parts) == 4 and parts[0] == PREFIX and parts[2] == "inbox"
    if is_inbox and _COUNTRY.match(parts[1]) and _PART.match(parts[3]):
        return parts[1], parts[3]
    return None
