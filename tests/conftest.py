"""Shared fixtures. Real services (Kafka, PostgreSQL) come from the plugins below."""

pytest_plugins: list[str] = [
    p
    for p in ("tests.plugins.kafka_broker", "tests.plugins.postgres_server")
    if __import__("importlib.util").util.find_spec(p) is not None
]
