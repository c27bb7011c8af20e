"""A stand-in for a piece of the bus, for the supervisor's tests: serves `/readyz` on the
port it is given, notes when it started and stopped (and its environment) in a journal,
and stops on SIGTERM unless told to ignore it.

    python child.py NAME PORT JOURNAL [--ignore-sigterm] [--exit-at-once CODE]
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def note(journal: str, **entry: object) -> None:
    with open(journal, "a") as f:
        f.write(json.dumps({"t": time.monotonic(), "pid": os.getpid(), **entry}) + "\n")


def main() -> int:
    name, port, journal = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if "--exit-at-once" in sys.argv:
        print(f"{name}: boom, cannot start", flush=True)
        return int(sys.argv[sys.argv.index("--exit-at-once") + 1])

    class Ready(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/readyz" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Ready)
    stopped = threading.Event()
    if "--ignore-sigterm" in sys.argv:
        signal.signal(signal.SIGTERM, lambda *_: note(journal, name=name, event="ignored"))
    else:
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    note(journal, name=name, event="started", env=sorted(os.environ))
    while not stopped.wait(0.05):
        pass
    note(journal, name=name, event="stopped")
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
