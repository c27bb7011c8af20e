"""The last directory serial a node accepted, kept across restarts.

A node never believes a directory older than one it has seen; without this memory a
restarted node would take whatever signed directory it is served first, including an old
one in which a revoked agency, or a compromised key, is still in good standing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


class SerialMemory:
    """One small JSON file, replaced atomically and fsynced before the serial is used."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> tuple[int, str] | None:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        return int(data["serial"]), str(data["directory_hash"])

    def remember(self, serial: int, directory_hash: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump({"serial": serial, "directory_hash": directory_hash}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
