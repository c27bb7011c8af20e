"""The disclosure record (GDPR art. 15(1)(c)): each node's part, and the whole record the
competent authority produces for a person.

`GET /v1/cases/{case}/disclosures`: what this node disclosed in the case (every delivery,
its categories and basis, every forwarding), what it received and refused, from its log
alone (`rules.disclosure`). For the node's own agency, a competent authority or an
oversight body (a data protection authority among them): clear parts only.

`GET /v1/cases/{case}/disclosure-record`: at a competent authority's node, for its own
systems: every active node of the country asked for its part, the answers merged
(`contracts.disclosure`), each delivery confirmed by its recipient's log. A node that
does not answer is named, and the record says it is incomplete.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from contracts.agency_token import AuthError
from contracts.disclosure import disclosure_record
from contracts.envelope import CASE_PSEUDONYM_PATTERN
from contracts.vocabulary import Role
from referral_router.api.auth import Caller, Node, any_agency
from referral_router.api.errors import ERROR_RESPONSES
from referral_router.rules.disclosure import node_disclosures
from referral_router.sending.node import AgencyNode

CasePseudonym = Annotated[str, Path(pattern=CASE_PSEUDONYM_PATTERN)]
#: (agency, case) -> that agency's node's part of the record; raises when it cannot say.
PeerParts = Callable[[str, str], Mapping[str, Any]]
#: Who may read a node's part: besides the node's own agency.
READERS = frozenset({Role.COMPETENT_AUTHORITY, Role.OVERSIGHT})

disclosures = APIRouter(prefix="/v1", tags=["disclosures"], responses=ERROR_RESPONSES)


def part_reader(request: Request, agency: Annotated[str, Depends(any_agency)]) -> str:
    """The node's own agency, a competent authority or an oversight body."""
    node: AgencyNode = request.app.state.node
    if agency != node.agency_id and READERS.isdisjoint(node.roster.roles_of(agency)):
        raise AuthError(
            403, f"{agency} is neither {node.agency_id} nor a competent authority or oversight body"
        )
    return agency


def own_part(node: AgencyNode, case: str) -> dict[str, Any]:
    """This node's part of the case's disclosure record, from its store."""
    refused = []
    after = 0
    while letters := node.store.dead_letters(after, 500):
        refused += [
            {"event_id": d.event_id, "rule": d.rule, "from": d.sender}
            for _, d in letters
            if d.case == case
        ]
        after = letters[-1][0]
    file = node.store.case_file(case)
    if file is None:
        return node_disclosures(node.agency_id, case, [], [], refused)
    history = node.store.history(case)
    return node_disclosures(node.agency_id, case, history, file.forwardings, refused)


@disclosures.get("/cases/{case}/disclosures")
def node_part(
    case: CasePseudonym, node: Node, _: Annotated[str, Depends(part_reader)]
) -> dict[str, Any]:
    """What this node disclosed in the case, received and refused: clear parts only."""
    return own_part(node, case)


@disclosures.get("/cases/{case}/disclosure-record")
def whole_record(case: CasePseudonym, node: Node, _: Caller, request: Request) -> dict[str, Any]:
    """The case's disclosure record, from every node of the country (a competent
    authority's node only)."""
    if Role.COMPETENT_AUTHORITY not in node.roster.roles_of(node.agency_id):
        raise AuthError(403, "only a competent authority's node produces a disclosure record")
    parts: PeerParts | None = request.app.state.peer_parts
    directory = node.roster.directory
    answers: dict[str, Mapping[str, Any] | str] = {node.agency_id: own_part(node, case)}
    for agency in directory.active_agencies():
        if agency.id == node.agency_id or agency.country != directory.country:
            continue
        if parts is None:
            answers[agency.id] = "not asked: this node reaches no other node"
            continue
        try:
            answers[agency.id] = parts(agency.id, case)
        except Exception as exc:  # any failure of another node is named, never a 500
            answers[agency.id] = f"no answer: {type(exc).__name__}: {exc}"[:300]
    return disclosure_record(case, answers, node.agency_id, datetime.now(UTC).isoformat())
