"""The process topology with `--postgres`: each process's event store is a PostgreSQL
database of its own, owned by a role of its own whose password only that process is
given; one role cannot even connect to another's database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from contracts.vocabulary import Role
from nrm.embedded import AgencySpec
from tests.bus.running import RunningProcesses
from tests.faults.conftest import KAFKA_ENV, screen
from tests.faults.drills import arrivals, until
from tests.plugins.kafka_broker import deploy_service

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

AGENCIES = (
    AgencySpec("border-police", "Border Police", (Role.FIRST_RESPONDER,)),
    AgencySpec("nrm-authority", "Identification Authority", (Role.COMPETENT_AUTHORITY,)),
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Any]:
    """A cluster of this test's own: the topology creates its databases and roles."""
    with deploy_service("postgres", "start_postgres", tmp_path / "postgres") as handle:
        yield handle


def test_each_process_its_own_database_and_role(
    tmp_path: Path, server: Any, fresh_kafka_broker: Any
) -> None:
    country = RunningProcesses(
        tmp_path / "data",
        fresh_kafka_broker,
        agencies=AGENCIES,
        postgres=server,
        node_env=KAFKA_ENV,
    )
    try:
        with country.client("border-police") as c:
            sent = [str(screen(c, "nrm-authority")["event_id"]) for _ in range(5)]
        until(lambda: arrivals(country, "nrm-authority", sent) == (5, 0, 0), 60, "arrivals")
        specs = {c.spec.name: c.spec for c in country.bus.supervisor.children.values()}
    finally:
        country.stop()
    wanted = {"registry": "xa_registry", "node/border-police": "xa_border_police",
              "node/nrm-authority": "xa_nrm_authority"}  # fmt: skip
    env = {name: specs[name].env for name in wanted}
    for name, db in wanted.items():
        assert env[name]["POSTGRES_DBNAME"] == db == env[name]["POSTGRES_USER"]
    passwords = [env[name]["POSTGRES_PASSWORD"] for name in wanted]
    assert len(set(passwords)) == 3  # each its own
    for name in wanted:  # nobody's password in another's environment
        others = set(passwords) - {env[name]["POSTGRES_PASSWORD"]}
        assert not others & set(env[name].values()), name
    assert not list((tmp_path / "data").rglob("store.db"))  # no SQLite event store
    assert not (tmp_path / "data" / "XA" / "registry" / "registry.db").exists()

    def connect(role: str, db: str) -> psycopg.Connection[Any]:
        password = next(e["POSTGRES_PASSWORD"] for e in env.values() if e["POSTGRES_USER"] == role)
        return psycopg.connect(
            host=server.host, port=server.port, user=role, password=password, dbname=db
        )

    with connect("xa_nrm_authority", "xa_nrm_authority") as conn:
        (table,) = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
            "AND table_name LIKE '%events' AND table_name NOT LIKE '%snapshot%'"
        ).fetchone() or ("",)
        stored = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()
        assert stored is not None and stored[0] >= 5  # the received events are there
    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        connect("xa_border_police", "xa_nrm_authority").close()
