"""`nrm officer`: an administrator's commands on a node's officers' book."""

from __future__ import annotations

from pathlib import Path

import pytest

from nrm.cli import main as nrm
from referral_router.console.officers import OfficerBook


def test_add_list_disable_enable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "console.db"
    monkeypatch.setenv("NRM_OFFICER_PASSWORD", "a long pass phrase")
    assert nrm(["officer", "add", "sh-0007", "--name", "Night shift", "--db", str(db)]) == 0
    assert nrm(["officer", "list", "--db", str(db)]) == 0
    listed = capsys.readouterr().out
    assert "sh-0007" in listed and "active" in listed and "never" in listed
    assert "a long pass phrase" not in listed
    assert OfficerBook(db).sign_in("sh-0007", "a long pass phrase", "cli").id == "sh-0007"

    assert nrm(["officer", "disable", "sh-0007", "--db", str(db)]) == 0
    assert nrm(["officer", "list", "--db", str(db)]) == 0
    assert "disabled" in capsys.readouterr().out
    assert nrm(["officer", "enable", "sh-0007", "--db", str(db)]) == 0
    monkeypatch.setenv("NRM_OFFICER_PASSWORD", "another long phrase")
    assert nrm(["officer", "password", "sh-0007", "--db", str(db)]) == 0
    assert OfficerBook(db).sign_in("sh-0007", "another long phrase", "cli")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "sh 7", "--name", "x"], "badge number"),
        (["add", "sh-0001", "--name", "x"], "already exists"),
        (["disable", "sh-9999"], "no officer sh-9999"),
    ],
)
def test_mistakes_are_one_line_errors(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    db = tmp_path / "console.db"
    OfficerBook(db).add("sh-0001", "First", "a long pass phrase")
    monkeypatch.setenv("NRM_OFFICER_PASSWORD", "a long pass phrase")
    assert nrm(["officer", *args, "--db", str(db)]) == 2
    assert message in capsys.readouterr().err


def test_short_passwords_and_missing_books_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NRM_OFFICER_PASSWORD", "short")
    assert nrm(["officer", "add", "sh-1", "--name", "x", "--db", str(tmp_path / "c.db")]) == 2
    assert "12 to 1024 characters" in capsys.readouterr().err
    assert nrm(["officer", "list", "--db", str(tmp_path / "none.db")]) == 2
    assert "no officers' book" in capsys.readouterr().err


def test_the_embedded_bus_layout_is_found_by_agency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NRM_OFFICER_PASSWORD", "a long pass phrase")
    args = ["--agency", "safe-house", "--data", str(tmp_path), "--country", "XB"]
    assert nrm(["officer", "add", "sh-0002", "--name", "Day shift", *args]) == 0
    assert (tmp_path / "XB" / "nodes" / "safe-house" / "console.db").exists()
