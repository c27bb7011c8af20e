"""Event transport between agency nodes with Kafka's semantics (see ``base``).

``open_transport("sqlite:///var/nrm/bus.db")`` embedded, ``open_transport("kafka://…")``
distributed; both satisfy ``Transport`` and pass the same conformance suite.

Modules: ``base`` (the contract: records, messages, ``Transport``, ``Consumer``),
``factory`` (``open_transport``), ``in_process`` and ``sqlite_log`` (embedded), ``kafka``,
``groups`` (the embedded consumer groups), ``partitioning`` and ``topics`` (names).
Import from the module: the package re-exports nothing, so using the embedded transport
never loads the Kafka client.
"""
