"""The officers' book on a real SQLite file, with a clock the tests move: argon2id
hashes, lockout per account and per address, disabled accounts, session lifetimes."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from referral_router.console.officers import (
    OfficerBook,
    OfficerError,
    SignInPolicy,
    SignInRefused,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PASSWORD = "a long pass phrase"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def book(tmp_path: Path, clock: Clock) -> OfficerBook:
    # argon2id at a low cost keeps these tests fast; the default cost is tested below
    fast = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    b = OfficerBook(tmp_path / "console.db", hasher=fast, clock=clock)
    b.add("sh-0001", "Officer One", PASSWORD)
    b.add("sh-0002", "Officer Two", PASSWORD + " two")
    return b


def _refused(book: OfficerBook, officer: str, password: str, client: str = "10.0.0.1") -> int:
    with pytest.raises(SignInRefused) as info:
        book.sign_in(officer, password, client)
    return info.value.status


def test_passwords_are_kept_as_argon2id_hashes_only(tmp_path: Path) -> None:
    book = OfficerBook(tmp_path / "c.db")
    book.add("bp-0042", "Border officer", PASSWORD)
    book.close()
    stored = sqlite3.connect(tmp_path / "c.db").execute("SELECT password FROM officers").fetchone()
    assert stored[0].startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert PASSWORD not in (tmp_path / "c.db").read_bytes().decode("latin-1")
    assert (tmp_path / "c.db").stat().st_mode & 0o077 == 0


def test_the_right_password_signs_in_a_wrong_one_does_not(book: OfficerBook) -> None:
    assert book.sign_in("sh-0001", PASSWORD, "10.0.0.1").id == "sh-0001"
    assert _refused(book, "sh-0001", "a wrong pass phrase") == 401
    assert _refused(book, "sh-0001", PASSWORD + "x" * 2000) == 401  # not even hashed
    with pytest.raises(SignInRefused) as unknown:
        book.sign_in("nobody", PASSWORD, "10.0.0.1")
    with pytest.raises(SignInRefused) as wrong:
        book.sign_in("sh-0001", "nope", "10.0.0.1")
    assert unknown.value.message == wrong.value.message  # ids are not revealed


def test_an_account_locks_after_five_failures_and_unlocks_later(
    book: OfficerBook, clock: Clock
) -> None:
    assert [_refused(book, "sh-0001", f"guess {i}") for i in range(5)] == [401] * 4 + [429]
    # locked: the right password is refused too, with how long to wait
    with pytest.raises(SignInRefused) as locked:
        book.sign_in("sh-0001", PASSWORD, "10.0.0.2")
    assert locked.value.status == 429 and locked.value.retry_after == 15 * 60
    assert "15 minutes" in locked.value.message
    assert book.sign_in("sh-0002", PASSWORD + " two", "10.0.0.2")  # others are not affected
    clock.now += timedelta(minutes=15, seconds=1)
    assert book.sign_in("sh-0001", PASSWORD, "10.0.0.2").failures == 0


def test_an_administrator_unlocks_an_account(book: OfficerBook) -> None:
    for i in range(5):
        _refused(book, "sh-0001", f"guess {i}")
    book.unlock("sh-0001")
    assert book.sign_in("sh-0001", PASSWORD, "10.0.0.1").id == "sh-0001"


def test_an_address_that_keeps_failing_is_refused_whatever_the_account(
    book: OfficerBook, clock: Clock
) -> None:
    for i in range(20):  # spread over accounts, so no single account locks
        _refused(book, f"guessed-{i}", "password", client="203.0.113.9")
    assert _refused(book, "sh-0001", PASSWORD, client="203.0.113.9") == 429
    assert book.sign_in("sh-0001", PASSWORD, "198.51.100.1")  # another address is fine
    clock.now += timedelta(minutes=16)
    assert book.sign_in("sh-0001", PASSWORD, "203.0.113.9")


def test_parallel_guesses_are_all_counted(book: OfficerBook) -> None:
    statuses: list[int] = []

    def guess(i: int) -> None:
        statuses.append(_refused(book, "sh-0001", f"parallel guess {i}"))

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 429 in statuses
    assert _refused(book, "sh-0001", PASSWORD) == 429


def test_a_disabled_officer_cannot_sign_in_and_loses_sessions(book: OfficerBook) -> None:
    session = book.open_session(book.sign_in("sh-0001", PASSWORD, "10.0.0.1"))
    assert book.session(session) is not None
    book.disable("sh-0001")
    assert book.session(session) is None
    assert _refused(book, "sh-0001", PASSWORD) == 401
    book.enable("sh-0001")
    assert book.sign_in("sh-0001", PASSWORD, "10.0.0.1")
    assert book.session(session) is None  # a closed session does not come back


def test_sessions_expire_when_idle_and_after_a_working_day(book: OfficerBook, clock: Clock) -> None:
    policy = SignInPolicy()
    officer = book.sign_in("sh-0001", PASSWORD, "10.0.0.1")
    idle = book.open_session(officer)
    clock.now += policy.idle_timeout + timedelta(seconds=1)
    assert book.session(idle) is None
    busy = book.open_session(officer)
    for _ in range(int(policy.absolute_timeout / timedelta(minutes=20))):
        clock.now += timedelta(minutes=20)
        assert book.session(busy) is not None
    clock.now += timedelta(minutes=20)
    assert book.session(busy) is None


def test_session_ids_are_stored_as_digests(book: OfficerBook, tmp_path: Path) -> None:
    session = book.open_session(book.sign_in("sh-0001", PASSWORD, "10.0.0.1"))
    rows = sqlite3.connect(tmp_path / "console.db").execute("SELECT * FROM sessions").fetchall()
    assert rows and all(session not in str(r) for r in rows)
    assert book.session(session + "x") is None


def test_a_new_password_ends_sessions_and_lifts_a_lock(book: OfficerBook) -> None:
    session = book.open_session(book.sign_in("sh-0001", PASSWORD, "10.0.0.1"))
    for i in range(5):
        _refused(book, "sh-0001", f"guess {i}")
    book.set_password("sh-0001", "another long phrase")
    assert book.session(session) is None
    assert book.sign_in("sh-0001", "another long phrase", "10.0.0.1")


@pytest.mark.parametrize(
    ("officer", "password", "problem"),
    [
        ("sh 0003", PASSWORD, "badge number"),
        ("", PASSWORD, "badge number"),
        ("x" * 65, PASSWORD, "badge number"),
        ("sh-0003", "short", "12 to 1024"),
        ("sh-0003", "x" * 1025, "12 to 1024"),
        ("sh-0003", "my id is sh-0003!", "must not contain"),
        ("sh-0001", PASSWORD, "already exists"),
    ],
)
def test_accounts_are_checked_when_added(
    book: OfficerBook, officer: str, password: str, problem: str
) -> None:
    with pytest.raises(OfficerError, match=problem):
        book.add(officer, "Someone", password)


def test_changes_to_unknown_officers_are_refused(book: OfficerBook) -> None:
    for change in (book.disable, book.enable, book.unlock):
        with pytest.raises(OfficerError, match="no officer"):
            change("sh-9999")
