"""The ports the topology's processes, brokers and databases are given lie below the
kernel's ephemeral range, where no outgoing connection can take one between the choice
and the server's bind."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from nrm.broker import deploy_module
from nrm.ports import LISTEN_PORTS_FROM, ephemeral_low, free_port


def test_ports_are_free_and_below_the_ephemeral_range() -> None:
    high = ephemeral_low()
    ports = {free_port() for _ in range(50)}
    assert len(ports) > 40  # spread, not one port over and over
    for port in ports:
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
    ports = {deploy_module(script).free_port() for _ in range(20)}
    assert len(ports) > 15
    assert all(LISTEN_PORTS_FROM <= port < ephemeral_low() for port in ports)
