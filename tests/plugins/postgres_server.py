"""Session fixture ``postgres_server``: one throwaway PostgreSQL cluster for the test run.

initdb + start takes about a second; the cluster is deleted at the end of the session.
If it cannot start, tests that need it FAIL rather than skip.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.plugins.kafka_broker import load_deploy_module


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Connection parameters: ``.host .port .user .password .dbname .dsn .env()``."""
    deploy_postgres = load_deploy_module("postgres")
    data_dir = tmp_path_factory.mktemp("postgres")
    try:
        handle = deploy_postgres.start_postgres(data_dir)
    except Exception as e:  # any cause must fail the test loudly
        pytest.fail(f"PostgreSQL could not start: {e}", pytrace=False)
    try:
        yield handle
    finally:
        handle.stop()
