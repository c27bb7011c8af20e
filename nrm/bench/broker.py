"""A Kafka broker for the benchmark: the one given with --kafka, or our own started with
deploy/kafka.py (loaded by path: deploy/ holds scripts, not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _deploy_kafka() -> ModuleType:
    name = "nrm_deploy_kafka"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, DEPLOY / "kafka.py")
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {DEPLOY / 'kafka.py'}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def start_broker(data_dir: Path) -> Any:
    """Start a single-node broker in `data_dir`; the handle has `.bootstrap` and `.stop()`."""
    return _deploy_kafka().start_broker(data_dir)
