"""The rules of the person's remedies and the later stages of a case: reviews of
identification decisions, residence permits, proceedings and what the person is told of
them, complaints, compensation, closure and links to an earlier case. Pure, on clear
envelope data; `rules.lifecycle.check_send` applies them with the rest.

Each cites the seed it follows (docs/domain.md, "Sources"): an answer that stops a clock
(R8) must reach the agency whose clock it is, so every node's escalations stay true.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contracts.events import ClosureReason, IdentificationStage, InformationTopic
from contracts.policy import CountryPolicy
from contracts.vocabulary import Role
from referral_router.rules.case_state import CaseState, Proposal, answer_reaches, known, require


def review_answer(state: CaseState, p: Proposal, review_id: str, stage: str) -> None:
    review = known(state.reviews, review_id, "review request")
    require(not review.answered, "LIFECYCLE", f"review {review_id} was already decided")
    require(
        review.stage == stage,
        "LIFECYCLE",
        f"review {review_id} is of a {review.stage} decision: its answer decides that stage",
    )
    answer_reaches(review.requested_by, p, f"the decision on review {review_id}")


def review_requested(
    state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy
) -> None:
    """A review of the latest identification decision: Liu (seed 000), 3.4, on who is
    accountable for conclusive decisions; the OSCE/ODIHR handbook (seed 001): the
    person's "power over decisions that affect their lives". One review of a decision at
    a time; its answer is the next decision, and that one may be reviewed in turn."""
    rid, about = str(op["review_id"]), str(op["decision_event_id"])
    require(rid not in state.reviews, "LIFECYCLE", f"review {rid} already exists")
    latest = state.decisions[-1] if state.decisions else None
    require(
        latest is not None and latest.event_id == about,
        "LIFECYCLE",
        f"{about} is not this case's latest identification decision: only that one is reviewed",
    )
    assert latest is not None
    require(
        all(r.decision_event_id != about for r in state.open_reviews),
        "LIFECYCLE",
        f"a review of {about} is already open",
    )
    answer_reaches(latest.sender, p, "the request (it decided)")


def residence(state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy) -> None:
    if p.event_type == "residence.granted":
        require(
            state.residence != "active",
            "LIFECYCLE",
            "a residence permit is in force: renew it (residence.renewed) or end it first",
        )
        return
    require(state.residence == "active", "LIFECYCLE", "no residence permit is in force")


def proceedings(
    state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy
) -> None:
    pid = str(op["proceedings_id"])
    if p.event_type == "proceedings.opened":
        require(pid not in state.proceedings, "LIFECYCLE", f"proceedings {pid} already recorded")
        return
    found = known(state.proceedings, pid, "proceedings")
    require(found.concluded_by is None, "LIFECYCLE", f"proceedings {pid} already concluded")


def rights_explained(
    state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy
) -> None:
    """Telling the person of a trial's outcome names the proceedings and reaches the
    agency that recorded the outcome, whose information clock it stops (R8)."""
    pid = op.get("proceedings_id")
    outcome = op.get("topic") == InformationTopic.PROCEEDINGS_OUTCOME
    require(
        pid is not None or not outcome,
        "LIFECYCLE",
        "the outcome of proceedings names them (proceedings_id)",
    )
    if pid is None:
        return
    found = known(state.proceedings, str(pid), "proceedings")
    if outcome:
        by = found.concluded_by
        require(by is not None, "LIFECYCLE", f"proceedings {pid} are not concluded")
        assert by is not None
        answer_reaches(by, p, f"the person to be told of {pid}'s outcome")


def complaint_lodged(
    state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy
) -> None:
    cid, about = str(op["complaint_id"]), op.get("about_agency")
    require(cid not in state.complaints, "LIFECYCLE", f"complaint {cid} already recorded")
    if about is not None:
        require(
            about in (p.sender, *p.recipients),
            "LIFECYCLE",
            f"the complaint is about {about}: it must receive it to answer it",
        )
    else:
        require(
            any(Role.COMPETENT_AUTHORITY in r for r in (p.sender_roles, *p.recipients.values())),
            "LIFECYCLE",
            "a complaint about the mechanism as a whole goes to the competent authority",
        )


def complaint_answered(
    state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy
) -> None:
    cid = str(op["complaint_id"])
    c = known(state.complaints, cid, "complaint")
    require(not c.answered, "LIFECYCLE", f"complaint {cid} was already answered")
    require(
        p.sender == c.about or Role.COMPETENT_AUTHORITY in p.sender_roles,
        "LIFECYCLE",
        f"complaint {cid} is answered by {c.about or 'the competent authority'} "
        "(or the competent authority)",
    )
    answer_reaches(c.recorded_by, p, f"the answer to complaint {cid}")


def compensation(
    state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy
) -> None:
    forum, status = str(op["forum"]), state.compensation.get(str(op["forum"]))
    match p.event_type:
        case "compensation.claimed":
            require(
                status != "claimed",
                "LIFECYCLE",
                f"a claim in the {forum} forum is still undecided",
            )
        case "compensation.decided":
            require(status == "claimed", "LIFECYCLE", f"no undecided claim in the {forum} forum")
        case "compensation.paid":
            require(
                status == "decided", "LIFECYCLE", f"no decided claim in the {forum} forum to pay"
            )


def closed(state: CaseState, p: Proposal, op: Mapping[str, Any], policy: CountryPolicy) -> None:
    """ "Not a victim" closes a case only on a conclusive decision, and not while a review
    of it is open: a review must never be overtaken by the file being shut (R8)."""
    if op.get("reason_code") != ClosureReason.NOT_A_VICTIM:
        return
    require(
        any(d.stage == IdentificationStage.CONCLUSIVE for d in state.decisions),
        "LIFECYCLE",
        "a case closes as not-a-victim only after a conclusive decision",
    )
    require(
        not state.open_reviews,
        "LIFECYCLE",
        "a review of the decision is open: the case cannot close as not-a-victim before it",
    )


def check_link(state: CaseState, p: Proposal, earlier: CaseState | None) -> None:
    """Re-trafficking: the new case names an earlier closed case of the same person that
    this node holds; the earlier case stays closed (and erased, if it was)."""
    name = str(p.operational["earlier_case"])
    require(name != state.pseudonym, "LIFECYCLE", "a case is not linked to itself")
    require(name not in state.linked_to, "LIFECYCLE", f"already linked to {name}")
    require(
        earlier is not None and earlier.exists,
        "LIFECYCLE",
        f"this node holds nothing of {name}: only a case it holds can be linked",
    )
    assert earlier is not None
    require(
        earlier.closed or earlier.erased,
        "LIFECYCLE",
        f"{name} is not closed: an open case is worked on, not linked",
    )
