"""A supervisor in a process of its own, for the test that kills it outright:
`python supervised.py FOLDER` starts two children and writes their pids to FOLDER/pids."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from nrm.embedded import free_port
from nrm.supervisor import ProcessSpec, Supervisor

HERE = Path(__file__).resolve().parent


async def main(folder: Path) -> None:
    supervisor = Supervisor(folder / "state.json")
    specs = []
    for name in ("first", "second"):
        port = free_port()
        argv = (sys.executable, str(HERE / "child.py"), name, str(port), str(folder / "journal"))
        specs.append(
            ProcessSpec(name, "test", argv, {}, f"http://127.0.0.1:{port}", folder / f"{name}.log")
        )
    await supervisor.start(specs)
    pids = {c.spec.name: c.pid for c in supervisor.children.values()}
    (folder / "pids").write_text(json.dumps(pids))
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
