"""Who gets in, and what the browser keeps: wrong passwords refused and locked out,
sessions bound to one node (all nodes share 127.0.0.1, and cookies ignore ports),
sign-out and `nrm officer disable` end sessions, no personal datum in URLs, titles,
cookies or web storage; and the pages pass axe-core, work by keyboard and on a phone."""

from __future__ import annotations

import re
from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, expect

from nrm.cli import main as nrm
from tests.console.conftest import CANARY, Demo, shot, sign_in


def _book(demo: Demo, agency: str) -> Any:
    return demo.bus.bus.nodes[agency].console.book


def _add_officer(demo: Demo, agency: str, officer: str) -> str:
    password = f"long enough {officer} secret".replace(officer, "x")
    if _book(demo, agency).officer(officer) is None:
        _book(demo, agency).add(officer, "Test officer", password)
    return password


def _sign_in_as(page: Page, demo: Demo, agency: str, officer: str, password: str) -> None:
    page.goto(f"{demo.console(agency)}/sign-in")
    page.get_by_label("Officer id").fill(officer)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_a_wrong_password_is_refused_then_the_account_locks(page: Page, demo: Demo) -> None:
    password = _add_officer(demo, "immigration", "im-0099")
    statuses = []
    page.on("response", lambda r: statuses.append(r.status) if r.request.method == "POST" else None)
    _sign_in_as(page, demo, "immigration", "im-0099", "not the password at all")
    expect(page.get_by_role("alert")).to_contain_text("wrong officer id or password")
    expect(page).to_have_url(re.compile("/console/sign-in$"))
    shot(page, "sign-in-wrong-password")
    # an unknown officer id gets the very same answer (ids are not revealed)
    _sign_in_as(page, demo, "immigration", "nobody-here", "not the password at all")
    expect(page.get_by_role("alert")).to_contain_text("wrong officer id or password")
    for _ in range(4):
        _sign_in_as(page, demo, "immigration", "im-0099", "still not the password")
    expect(page.get_by_role("alert")).to_contain_text("locked after 5 failed sign-ins")
    # locked: even the right password is refused until the lock ends or an admin lifts it
    _sign_in_as(page, demo, "immigration", "im-0099", password)
    expect(page.get_by_role("alert")).to_contain_text("this account is locked")
    shot(page, "sign-in-locked")
    assert statuses[:2] == [401, 401] and statuses[-1] == 429
    locked = _book(demo, "immigration").officer("im-0099")
    assert locked.locked_until is not None
    assert nrm(["officer", "unlock", "im-0099", "--db", str(_book(demo, "immigration").path)]) == 0
    _sign_in_as(page, demo, "immigration", "im-0099", password)
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()


def test_the_sign_in_page_shows_nothing_from_its_query_string(page: Page, demo: Demo) -> None:
    response = page.goto(f"{demo.console('immigration')}/sign-in?status=500&error=Call+0800")
    assert response is not None and response.status == 200
    expect(page.get_by_role("alert")).to_have_count(0)
    expect(page.locator("body")).not_to_contain_text("0800")


def test_a_session_cookie_from_one_node_fails_on_another(
    context: BrowserContext, page: Page, demo: Demo
) -> None:
    sign_in(page, demo, "safe-house")
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    [cookie] = [c for c in context.cookies() if c["name"] == "nrm-console-safe-house"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert page.evaluate("document.cookie") == ""  # HttpOnly: no script can read it
    # the browser sends it to every port of 127.0.0.1: child protection's node ignores it
    other = demo.console("child-protection")
    page.goto(f"{other}/inbox")
    expect(page).to_have_url(re.compile("/console/sign-in$"))
    # under the other node's name it is refused too: signed with another node's key
    context.add_cookies(
        [{"name": "nrm-console-child-protection", "value": cookie["value"], "url": other}]
    )
    page.goto(f"{other}/inbox")
    expect(page).to_have_url(re.compile("/console/sign-in$"))
    shot(page, "cookie-from-another-node-refused")
    # and a tampered cookie on its own node fails as well
    session_id, _, tag = cookie["value"].partition(".")
    context.add_cookies(
        [
            {
                "name": cookie["name"],
                "value": f"{session_id[:-2]}AA.{tag}",
                "url": demo.console("safe-house"),
            }
        ]
    )
    page.goto(f"{demo.console('safe-house')}/inbox")
    expect(page).to_have_url(re.compile("/console/sign-in$"))


def test_sign_out_and_disable_end_sessions(context: BrowserContext, page: Page, demo: Demo) -> None:
    sign_in(page, demo, "safe-house")
    [cookie] = [c for c in context.cookies() if c["name"] == "nrm-console-safe-house"]
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile("/console/sign-in$"))
    context.add_cookies([{**cookie, "sameSite": "Strict"}])  # a stolen copy of the cookie
    page.goto(f"{demo.console('safe-house')}/inbox")
    expect(page).to_have_url(re.compile("/console/sign-in$"))

    password = _add_officer(demo, "safe-house", "sh-0098")
    _sign_in_as(page, demo, "safe-house", "sh-0098", password)
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    db = str(_book(demo, "safe-house").path)
    assert nrm(["officer", "disable", "sh-0098", "--db", db]) == 0
    page.reload()
    expect(page).to_have_url(re.compile("/console/sign-in$"))
    _sign_in_as(page, demo, "safe-house", "sh-0098", password)
    expect(page.get_by_role("alert")).to_contain_text("wrong officer id or password")


PAGES = (
    ("safe-house", "/inbox"),
    ("safe-house", "/cases/{case}"),
    ("safe-house", "/cases/{case}/events/new?type=services.delivered"),
    ("border-police", "/cases/new"),
    ("rapporteur", "/oversight"),
    ("rapporteur", "/oversight/decisions"),
    ("rapporteur", "/oversight/exchanges"),
    ("rapporteur", "/oversight/referrals"),
    ("rapporteur", "/oversight/statistics"),
)


def _visit_all(page: Page, demo: Demo) -> list[str]:
    signed_in: set[str] = set()
    seen = []
    for agency, path in PAGES:
        if agency not in signed_in:
            sign_in(page, demo, agency)
            signed_in.add(agency)
        response = page.goto(demo.console(agency) + path.format(case=demo.case))
        assert response is not None and response.status == 200, path
        assert response.headers["cache-control"] == "no-store"
        seen.append(page.title())
    return seen


def test_no_personal_datum_in_urls_titles_cookies_or_storage(
    context: BrowserContext, page: Page, demo: Demo
) -> None:
    titles = _visit_all(page, demo)
    # the case page shows personal fields (this is where they belong) ...
    page.goto(f"{demo.console('safe-house')}/cases/{demo.case}")
    expect(page.locator("main")).to_contain_text(CANARY)
    # ... but nothing personal is in an address, a title, a cookie or web storage
    assert demo.urls_seen and not [u for u in demo.urls_seen if CANARY in u]
    assert titles and not [t for t in [*titles, *demo.titles_seen] if CANARY in t]
    assert all(re.fullmatch(r"[A-Za-z ]+ · NRM console · .+", t) for t in titles), titles
    for c in context.cookies():
        assert CANARY not in c["value"]
        assert re.fullmatch(r"nrm-console-[a-z-]+", c["name"]), c["name"]
    storage = page.evaluate(
        """async () => ({
            local: localStorage.length, session: sessionStorage.length,
            idb: (await indexedDB.databases()).length,
            caches: (await caches.keys()).length })"""
    )
    assert storage == {"local": 0, "session": 0, "idb": 0, "caches": 0}


def test_pages_pass_axe_core_checks(browser: Browser, demo: Demo) -> None:
    """WCAG 2.x A and AA rules (labels, names, contrast, landmarks, headings) on every
    page, including a form re-shown with errors."""
    ctx = browser.new_context()
    page = ctx.new_page()
    axe = Axe()
    page.goto(f"{demo.console('safe-house')}/sign-in")
    results = {"sign-in": axe.run(page, options=_AXE)}
    signed_in: set[str] = set()
    for agency, path in PAGES:
        if agency not in signed_in:
            sign_in(page, demo, agency)
            signed_in.add(agency)
        page.goto(demo.console(agency) + path.format(case=demo.case))
        results[f"{agency}{path}"] = axe.run(page, options=_AXE)
    page.goto(f"{demo.console('border-police')}/cases/new")
    page.get_by_role("button", name="Screen and send").click()  # empty: errors shown
    expect(page.get_by_role("alert")).to_be_visible()
    results["form with errors"] = axe.run(page, options=_AXE)
    # the checker does run in these pages: an input without a label is caught
    page.evaluate("document.querySelector('main').append(document.createElement('input'))")
    control = axe.run(page, options=_AXE).response["violations"]
    ctx.close()
    assert "label" in {v["id"] for v in control}
    problems = {
        where: [(v["id"], v["impact"], len(v["nodes"])) for v in r.response["violations"]]
        for where, r in results.items()
        if r.response["violations"]
    }
    assert len(results) == len(PAGES) + 2
    assert not problems, problems


_AXE = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


def test_an_officer_can_work_by_keyboard_alone(page: Page, demo: Demo) -> None:
    page.goto(f"{demo.console('child-protection')}/sign-in")
    officer, password = demo.officer("child-protection")
    assert page.evaluate("document.activeElement.id") == "officer"  # focused on arrival
    page.keyboard.type(officer)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    page.keyboard.press("Tab")  # the skip link comes first on every page
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    # The browser moves focus to the content in a task of its own after the key. In a
    # rehearsal a Tab sent at once left focus on <main> itself (the move came after the
    # Tab); a person's next key comes long after it.
    page.wait_for_function("document.activeElement.id === 'main'")
    page.keyboard.press("Tab")  # the first link of the page's own content, visibly focused
    focused = page.evaluate(
        "[document.activeElement.tagName, getComputedStyle(document.activeElement).outlineStyle]"
    )
    assert focused == ["A", "solid"], focused


def test_pages_fit_a_phone(browser: Browser, demo: Demo) -> None:
    phone = browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    page = phone.new_page()
    sign_in(page, demo, "safe-house")
    for name, path in (
        ("inbox", "/inbox"),
        ("case", f"/cases/{demo.case}"),
        ("form", f"/cases/{demo.case}/events/new?type=services.delivered"),
    ):
        page.goto(demo.console("safe-house") + path)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} scrolls sideways by {overflow}px on a phone"
        shot(page, f"phone-{name}")
    phone.close()
