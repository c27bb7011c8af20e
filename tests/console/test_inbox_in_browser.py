"""An agency's officers in a real browser: sign in, work the inbox, accept a referral,
see what stays withheld, record events through the schema forms, and get the API's own
refusals. The bus is real (embedded) and so is the browser (Debian's Chromium)."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from tests.console.conftest import Demo, shot, sign_in


def _case_view(demo: Demo, agency: str) -> dict:
    with demo.bus.client(agency) as c:
        r = c.get(f"/v1/cases/{demo.case}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_an_officer_signs_in_and_accepts_a_referral(page: Page, demo: Demo) -> None:
    sign_in(page, demo, "safe-house")
    expect(page).to_have_url(re.compile(r"/console/inbox$"))
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    shot(page, "inbox-safe-house")
    row = page.get_by_role("row").filter(has_text="ref-psy-1")
    expect(row).to_contain_text("psychological")
    expect(row).to_contain_text("requested")
    row.get_by_role("link", name=demo.case).click()
    expect(page.get_by_role("heading", name=re.compile("Case"))).to_be_visible()
    shot(page, "case-safe-house")

    page.get_by_role("link", name="Accept ref-psy-1").click()
    expect(page.get_by_role("heading", name="referral.accepted")).to_be_visible()
    expect(page.get_by_label(re.compile("^Referral id"))).to_have_value("ref-psy-1")
    # the answer goes back to the requester by default; the officer is not a form field
    expect(page.get_by_role("checkbox", name=re.compile("^border-police"))).to_be_checked()
    expect(page.locator("[name=answered_by_officer]")).to_have_count(0)
    page.get_by_label(re.compile("^Placement")).fill("weekly sessions, Tuesdays")
    shot(page, "form-referral-accepted")
    page.get_by_role("button", name="Record and send").click()

    expect(page.get_by_role("status")).to_contain_text("Recorded referral.accepted")
    expect(page.get_by_role("status")).to_contain_text("sh-0001")
    psy = page.get_by_role("row").filter(has_text="ref-psy-1")
    expect(psy).to_contain_text("accepted")
    shot(page, "case-after-accept")

    # R7: the event names the signed-in officer, in clear, at the requester's node too
    demo.bus.settle()
    events = _case_view(demo, "border-police")["events"]
    answer = [
        e
        for e in events
        if e["type"] == "referral.accepted" and e["operational"]["referral_id"] == "ref-psy-1"
    ]
    assert [e["operational"]["answered_by_officer"] for e in answer] == ["sh-0001"]


def test_fields_this_agency_may_not_open_show_as_withheld(page: Page, demo: Demo) -> None:
    sign_in(page, demo, "safe-house")
    page.goto(f"{demo.console('safe-house')}/cases/{demo.case}")
    referral = (
        page.locator("article").filter(has_text="referral.requested").filter(has_text="ref-sh-1")
    )
    # the consent covered identity, service and health: the pickup location stays sealed
    withheld = referral.locator("[data-field=pickup_location]")
    expect(withheld).to_have_class("withheld")
    expect(withheld).to_contain_text("withheld: location (not entitled)")
    expect(referral.locator("[data-field=needs]")).to_contain_text("bed tonight")
    # the API, asked by the same agency, withholds the very same fields
    api = _case_view(demo, "safe-house")
    ev = next(e for e in api["events"] if e["operational"].get("referral_id") == "ref-sh-1")
    assert ev["fields"]["pickup_location"] == {"withheld": "location", "reason": "not-entitled"}
    shot(page, "case-withheld-fields")


def test_deadlines_and_escalations_show_on_the_case(page: Page, demo: Demo) -> None:
    sign_in(page, demo, "border-police")
    page.goto(f"{demo.console('border-police')}/cases/{demo.case}")
    deadlines = page.get_by_role("region", name="Deadlines and escalations")
    expect(deadlines.get_by_role("row").filter(has_text="reasonable-grounds")).to_contain_text(
        "met"
    )
    expect(deadlines).to_contain_text("Escalations (R8)")
    expect(deadlines.get_by_role("listitem").filter(has_text="referral-answer")).to_contain_text(
        "nrm-authority"
    )
    shot(page, "case-deadlines-border-police")


def test_a_refusal_names_its_rule_with_the_api_s_own_words(page: Page, demo: Demo) -> None:
    sign_in(page, demo, "child-protection")
    with demo.bus.client("border-police") as c:
        asked = c.post(
            f"/v1/cases/{demo.case}/events",
            json={
                "type": "referral.requested",
                "recipients": ["child-protection"],
                "payload": {
                    "referral_id": "ref-cp-legal",
                    "to_agency": "child-protection",
                    "service": "legal-aid",
                    "consent_override": {
                        "legal_basis": "child-protection",
                        "authorised_by_officer": "bp-0042",
                    },
                },
            },
        )
    assert asked.status_code == 201, asked.text
    demo.bus.settle()
    page.goto(
        f"{demo.console('child-protection')}/cases/{demo.case}/events/new"
        "?type=referral.declined&referral=ref-cp-legal"
    )
    page.get_by_label(re.compile("^Reason code")).select_option("migration-status")
    page.get_by_role("button", name="Record and send").click()
    refusal = page.get_by_role("alert")
    expect(refusal).to_contain_text("Refused by rule R1")
    shot(page, "form-refused-r1")
    shown = page.locator("#refusal-detail").inner_text()
    # the same request through the API: the same rule and the same words
    with demo.bus.client("child-protection") as c:
        api = c.post(
            f"/v1/cases/{demo.case}/events",
            json={
                "type": "referral.declined",
                "recipients": ["border-police"],
                "payload": {
                    "referral_id": "ref-cp-legal",
                    "reason_code": "migration-status",
                    "answered_by_officer": "cp-0001",
                },
            },
        )
    assert api.status_code == 409
    assert (api.json()["rule"], api.json()["detail"]) == ("R1", shown)
    # nothing was recorded: the referral is still open
    refs = {
        r["referral_id"]: r["status"] for r in _case_view(demo, "child-protection")["referrals"]
    }
    assert refs["ref-cp-legal"] == "requested"

    # declining for a reason the rules allow goes through, under the officer's id
    page.get_by_label(re.compile("^Reason code")).select_option("capacity")
    page.get_by_label(re.compile("^Reason$")).fill("no lawyer free this month")
    page.get_by_role("button", name="Record and send").click()
    expect(page.get_by_role("status")).to_contain_text("Recorded referral.declined")


def test_the_next_event_is_recorded_from_the_schema_form(page: Page, demo: Demo) -> None:
    sign_in(page, demo, "nrm-authority")
    page.goto(f"{demo.console('nrm-authority')}/cases/{demo.case}")
    page.get_by_label("Event", exact=True).select_option("reflection.extended")
    page.get_by_role("button", name="Open form").click()
    expect(page.get_by_role("heading", name="reflection.extended")).to_be_visible()
    # the contract's own bounds, reported next to the field (the same pydantic model)
    page.get_by_label(re.compile("^Extra days")).fill("0")
    page.get_by_role("checkbox", name=re.compile("^immigration")).check()
    page.get_by_role("button", name="Record and send").click()
    expect(page.get_by_role("alert")).to_contain_text("greater than or equal to 1")
    expect(page.get_by_label(re.compile("^Extra days"))).to_have_attribute("aria-invalid", "true")
    shot(page, "form-schema-error")
    page.get_by_label(re.compile("^Extra days")).fill("15")
    page.get_by_label(re.compile("^Reason")).fill("needs more time to recover")
    page.get_by_role("button", name="Record and send").click()
    expect(page.get_by_role("status")).to_contain_text("Recorded reflection.extended")
    events = _case_view(demo, "nrm-authority")["events"]
    ext = [e for e in events if e["type"] == "reflection.extended"]
    assert [e["operational"]["decided_by_officer"] for e in ext] == ["na-0001"]


def test_a_first_responder_screens_a_new_case_and_r2_is_enforced(page: Page, demo: Demo) -> None:
    sign_in(page, demo, "border-police")
    page.get_by_role("link", name="New case").click()
    expect(page.get_by_role("heading", name="Screen a new case")).to_be_visible()
    page.get_by_role("checkbox", name="forced-labour").check()
    page.get_by_label(re.compile("^Age status")).select_option("unknown")
    page.get_by_label(re.compile("^Full name")).fill("Console Person")
    page.get_by_label(re.compile("^Nationality")).fill("XB")
    page.get_by_label(re.compile("^Found at")).fill("Harbour gate")
    first = page.get_by_role("group", name="Indicator 1")
    first.get_by_label(re.compile("^Form")).select_option("forced-labour")
    first.get_by_label(re.compile("^Strength")).select_option("strong")
    first.get_by_label(re.compile("^Observation")).fill("passport kept by employer")
    page.get_by_role("checkbox", name=re.compile("^nrm-authority")).check()
    shot(page, "form-screen-case")
    page.get_by_role("button", name="Screen and send").click()
    expect(page.get_by_role("alert")).to_contain_text("Refused by rule R2")
    page.get_by_role("checkbox", name=re.compile("^child-protection")).check()
    page.get_by_role("button", name="Screen and send").click()
    expect(page.get_by_role("status")).to_contain_text("Recorded case.screened")
    expect(page).to_have_url(re.compile(r"/console/cases/case-[a-z0-9]+$"))
    expect(page.get_by_text("presumed child")).to_be_visible()


def test_every_form_post_needs_the_session_s_csrf_token(page: Page, demo: Demo) -> None:
    sign_in(page, demo, "nrm-authority")
    before = len(_case_view(demo, "nrm-authority")["events"])
    r = page.request.post(
        f"{demo.console('nrm-authority')}/cases/{demo.case}/events",
        form={"type": "reflection.extended", "extra_days": "5", "recipients": "immigration"},
    )
    assert r.status == 403
    r = page.request.post(
        f"{demo.console('nrm-authority')}/cases/{demo.case}/events",
        form={
            "type": "reflection.extended",
            "extra_days": "5",
            "recipients": "immigration",
            "csrf": "forged",
        },
    )
    assert r.status == 403
    assert len(_case_view(demo, "nrm-authority")["events"]) == before
    # without the browser's session the console only points to the sign-in page
    anonymous = httpx.post(
        f"{demo.console('nrm-authority')}/cases/{demo.case}/events", data={"type": "x"}
    )
    assert anonymous.status_code == 303 and anonymous.headers["location"].endswith("/sign-in")
