"""Session fixture ``postgres_server``: one throwaway PostgreSQL cluster for the test run.

initdb + start takes about a second; the cluster is deleted at the end of the session.
If it cannot start, tests that need it FAIL rather than skip.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.plugins.kafka_broker import deploy_service


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Connection parameters: ``.host .port .user .password .dbname .dsn .env()``."""
    with deploy_service("postgres", "start_postgres", tmp_path_factory.mktemp("postgres")) as h:
        yield h
