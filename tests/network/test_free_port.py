"""The ports the topology's processes, brokers and databases are given lie below the
kernel's ephemeral range, where no outgoing connection can take one between the choice
and the server's bind, and no two choosers of the machine hand out the same port while
its server may still be starting."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from nrm import ports
from nrm.broker import deploy_module
from nrm.ports import HELD_S, LISTEN_PORTS_FROM, ephemeral_low, free_port, reserve


def test_ports_are_free_and_below_the_ephemeral_range() -> None:
    high = ephemeral_low()
    given = {free_port() for _ in range(50)}
    assert len(given) > 40  # spread, not one port over and over
    for port in given:
        assert LISTEN_PORTS_FROM <= port < high
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # free indeed


def test_a_port_in_use_is_not_given() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", free_port()))
        held.listen()
        taken = held.getsockname()[1]
        assert all(free_port() != taken for _ in range(200))


def test_the_ephemeral_range_is_read_from_the_kernel(tmp_path: Path) -> None:
    (tmp_path / "range").write_text("40000\t60999\n")
    assert ephemeral_low(tmp_path / "range") == 40000
    assert ephemeral_low(tmp_path / "missing") == 32768


@pytest.mark.parametrize("script", ["kafka", "postgres"])
def test_brokers_and_databases_get_ports_below_the_ephemeral_range(script: str) -> None:
    """deploy/'s scripts run uninstalled and load nrm/ports.py by its path."""
    given = {deploy_module(script).free_port() for _ in range(20)}
    assert len(given) > 15
    assert all(LISTEN_PORTS_FROM <= port < ephemeral_low() for port in given)


def test_no_two_choosers_hand_out_the_same_port_while_it_is_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten ports to choose from, twelve choices: never one port twice (the last choices
    fall back to the kernel's), as a second test worker or `nrm up` shares the folder."""
    monkeypatch.setattr(ports, "reservations", lambda: tmp_path)
    monkeypatch.setattr(ports, "ephemeral_low", lambda: LISTEN_PORTS_FROM + 10)
    given = [free_port() for _ in range(12)]
    assert len(set(given)) == len(given), given
    assert {int(p.name) for p in tmp_path.iterdir()} == {
        p for p in given if p < LISTEN_PORTS_FROM + 10
    }


def test_a_reservation_is_held_for_a_while_then_given_again(tmp_path: Path) -> None:
    assert reserve(29999, tmp_path)
    assert not reserve(29999, tmp_path)  # held
    old = time.time() - HELD_S - 1
    os.utime(tmp_path / "29999", (old, old))
    assert reserve(29999, tmp_path)  # its server bound long ago, or never
