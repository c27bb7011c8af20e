"""Run a single-node Apache Kafka (KRaft) broker on 127.0.0.1 without Docker.

The broker's classpath comes from Maven Central (deploy/fetch-kafka.sh); this module
formats a data dir, writes server.properties tuned for tests, starts the JVM and waits until
the broker says "Kafka Server started" and accepts TCP connections.

Importable (standard library only)::

    handle = start_broker(data_dir)        # free port chosen
    handle.bootstrap                        # "127.0.0.1:<port>"
    handle.restart(pause_seconds=10)        # same data dir, same port: fault tests
    handle.stop()                           # SIGTERM, then SIGKILL

or runnable: ``python deploy/kafka.py start|stop|restart|status [--data-dir D] [--port P]``
(default data dir deploy/.cache/broker-data; ``restart --pause 10`` is the fault drill).
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
DEFAULT_DATA_DIR = CACHE / "broker-data"
PREFERRED_VERSIONS = ("4.1.1", "3.9.1")
READY_LINE = "Kafka Server started"
STATE_FILE = "broker.json"
LOG_FILE = "broker.log"
HEAP_OPTS = ("-Xms128m", "-Xmx512m")


class BrokerError(RuntimeError):
    """The broker could not be prepared, started or stopped."""


def free_port() -> int:
    """A port nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_libs(fetch: bool = True) -> tuple[str, Path]:
    """(version, libs dir) of a fetched broker classpath; runs fetch-kafka.sh if none yet."""
    override = os.environ.get("KAFKA_LIBS")
    if override:
        libs = Path(override)
        marker = libs / ".complete"
        version = marker.read_text().strip() if marker.exists() else PREFERRED_VERSIONS[0]
        return version, libs
    for version in PREFERRED_VERSIONS:
        libs = CACHE / f"kafka-{version}" / "libs"
        if (libs / ".complete").exists():
            return version, libs
    if fetch:
        script = HERE / "fetch-kafka.sh"
        result = subprocess.run(["bash", str(script)], check=False)
        if result.returncode == 0:
            return find_libs(fetch=False)
    raise BrokerError(f"no Kafka classpath under {CACHE}; run deploy/fetch-kafka.sh")


def java_binary() -> str:
    """The java launcher: $JAVA_HOME/bin/java or the first on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise BrokerError("java not found: install Java 17 (apt-get install openjdk-17-jre)")
    return found


def new_cluster_id() -> str:
    """A Kafka Uuid (URL-safe base64, 22 chars) without a JVM round trip to StorageTool."""
    while True:
        raw = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not raw.startswith("-"):
            return raw


def server_properties(data_dir: Path, port: int, controller_port: int) -> str:
    """Single-node KRaft settings; small and fast for tests (see notes/kafka-broker.md)."""
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir / "logs"),
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "group.min.session.timeout.ms": "1000",
        "log.cleaner.dedupe.buffer.size": str(4 * 1024 * 1024),
        "log.cleaner.threads": "1",
        "num.network.threads": "2",
        "num.io.threads": "2",
        "background.threads": "2",
        "num.recovery.threads.per.data.dir": "1",
        "auto.create.topics.enable": "true",
        "delete.topic.enable": "true",
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.state.name = state.change.logger
logger.state.level = WARN
"""

LOG4J1 = """\
log4j.rootLogger=INFO, out
log4j.appender.out=org.apache.log4j.ConsoleAppender
log4j.appender.out.layout=org.apache.log4j.PatternLayout
log4j.appender.out.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.state.change.logger=WARN
"""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still "exists": reap it if it is ours.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def _tcp_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


def _signal_and_wait(pid: int, timeout: float) -> None:
    """SIGTERM (a controlled shutdown), then SIGKILL if the JVM is not gone in time."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                return
            time.sleep(0.05)
    raise BrokerError(f"broker pid {pid} survived SIGKILL")


@dataclass(eq=False)  # identity: handles live in a set of running brokers
class BrokerHandle:
    """A broker bound to one data dir and one port pair; can be stopped and started again."""

    data_dir: Path
    port: int
    controller_port: int
    version: str
    libs: Path
    detach: bool = False
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    started_in: float = 0.0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 90.0) -> BrokerHandle:
        """Start the JVM on the existing formatted data dir and wait until it serves."""
        if self.is_running():
            return self
        t0 = time.monotonic()
        log = self.log_path.open("ab")
        offset = log.tell()
        cmd = [
            java_binary(),
            *HEAP_OPTS,
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true",
            *self._log_flags(),
            "-cp",
            str(self.libs / "*"),
            "kafka.Kafka",
            str(self.data_dir / "server.properties"),
        ]
        self.process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=None if self.detach else _die_with_parent_if_main_thread(),
        )
        log.close()
        self._write_state()
        if not self.detach:
            _LIVE.add(self)
        try:
            self._wait_ready(offset, timeout)
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - t0
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Controlled shutdown with SIGTERM; SIGKILL after ``timeout`` seconds.

        `is_running()` stays true until the JVM has exited: during a controlled shutdown
        the broker still serves requests."""
        proc = self.process
        _LIVE.discard(self)
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self.process = None
        self._write_state()

    def restart(self, pause_seconds: float = 10.0, timeout: float = 90.0) -> None:
        """Stop, stay down ``pause_seconds``, start again: same data, same port."""
        self.stop()
        time.sleep(pause_seconds)
        self.start(timeout)

    def _log_flags(self) -> list[str]:
        if self.version.startswith("3."):
            return [f"-Dlog4j.configuration=file:{self.data_dir / 'log4j.properties'}"]
        return [f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}"]

    def _wait_ready(self, offset: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        seen = False
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise BrokerError(
                    f"broker exited with {self.process.returncode} during startup:\n"
                    + self._log_tail()
                )
            if not seen:
                with self.log_path.open("rb") as f:
                    f.seek(offset)
                    seen = READY_LINE.encode() in f.read()
            if seen and _tcp_open(self.port):
                return
            time.sleep(0.1)
        raise BrokerError(f"broker not ready after {timeout:.0f}s:\n" + self._log_tail())

    def _log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace").splitlines()
            return "\n".join(text[-lines:])
        return "(no log)"

    def _write_state(self) -> None:
        state = {
            "pid": self.pid,
            "port": self.port,
            "controller_port": self.controller_port,
            "bootstrap": self.bootstrap,
            "version": self.version,
        }
        (self.data_dir / STATE_FILE).write_text(json.dumps(state, indent=2))


_LIVE: set[BrokerHandle] = set()


@atexit.register
def _stop_all() -> None:
    """Never leave a test broker behind when the interpreter exits."""
    for handle in list(_LIVE):
        with contextlib.suppress(Exception):
            handle.stop(timeout=10)


def _die_with_parent_if_main_thread():  # type: ignore[no-untyped-def]
    """PR_SET_PDEATHSIG so a killed test run takes its broker along.

    Only from the main thread: Linux sends the signal when the *thread* that forked exits,
    so a broker restarted from a worker thread would die with that thread.
    """
    if threading.current_thread() is not threading.main_thread() or sys.platform != "linux":
        return None
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return None

    def set_pdeathsig() -> None:
        libc.prctl(1, signal.SIGTERM)  # 1 == PR_SET_PDEATHSIG

    return set_pdeathsig


def _format(handle: BrokerHandle) -> None:
    """Write configs and format the log dir once; a formatted dir is reused as is."""
    data = handle.data_dir
    data.mkdir(parents=True, exist_ok=True)
    (data / "server.properties").write_text(
        server_properties(data, handle.port, handle.controller_port)
    )
    (data / "log4j2.properties").write_text(LOG4J2)
    (data / "log4j.properties").write_text(LOG4J1)
    if (data / "logs" / "meta.properties").exists():
        return
    cmd = [
        java_binary(),
        "-Xmx256m",
        "-XX:TieredStopAtLevel=1",
        *handle._log_flags(),
        "-cp",
        str(handle.libs / "*"),
        "kafka.tools.StorageTool",
        "format",
        "-t",
        new_cluster_id(),
        "-c",
        str(data / "server.properties"),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BrokerError(f"kafka-storage format failed:\n{result.stdout}\n{result.stderr}")


def _saved_ports(data_dir: Path) -> tuple[int, int] | None:
    with contextlib.suppress(OSError, ValueError, KeyError):
        state = json.loads((data_dir / STATE_FILE).read_text())
        return int(state["port"]), int(state["controller_port"])
    return None


def start_broker(
    data_dir: str | os.PathLike[str],
    port: int | None = None,
    *,
    timeout: float = 90.0,
    detach: bool = False,
) -> BrokerHandle:
    """Format (once) and start a broker on 127.0.0.1; returns when it serves requests.

    A data dir used before keeps its ports unless ``port`` is given, so clients that
    remembered the bootstrap address reconnect after a restart.
    """
    data = Path(data_dir).resolve()
    saved = _saved_ports(data)
    if port is None and saved:
        port, controller_port = saved
    else:
        controller_port = saved[1] if saved else free_port()
    port = port or free_port()
    while controller_port == port:
        controller_port = free_port()
    version, libs = find_libs()
    handle = BrokerHandle(data, port, controller_port, version, libs, detach=detach)
    _format(handle)
    return handle.start(timeout)


# --- command line ----------------------------------------------------------------------


def _cli_start(data_dir: Path, port: int | None) -> int:
    state = _read_state(data_dir)
    if state and state.get("pid") and _pid_alive(int(state["pid"])):
        print(f"already running: bootstrap={state['bootstrap']} pid={state['pid']}")
        return 0
    print(f"starting Kafka broker (data dir {data_dir}) ...", flush=True)
    handle = start_broker(data_dir, port, detach=True)
    print(
        f"Kafka {handle.version} ready in {handle.started_in:.1f}s: "
        f"bootstrap={handle.bootstrap} pid={handle.pid} log={handle.log_path}"
    )
    return 0


def _cli_stop(data_dir: Path) -> int:
    state = _read_state(data_dir)
    pid = int(state["pid"]) if state and state.get("pid") else None
    if pid is None or not _pid_alive(pid):
        print("not running")
        return 0
    print(f"stopping broker pid {pid} ...", flush=True)
    _signal_and_wait(pid, 30.0)
    state["pid"] = None
    (data_dir / STATE_FILE).write_text(json.dumps(state, indent=2))
    print("stopped")
    return 0


def _cli_restart(data_dir: Path, pause: float) -> int:
    """Fault drill: stop, stay down ``pause`` seconds, start on the same port and data."""
    _cli_stop(data_dir)
    print(f"down for {pause:.0f}s ...", flush=True)
    time.sleep(pause)
    return _cli_start(data_dir, None)


def _cli_status(data_dir: Path) -> int:
    state = _read_state(data_dir)
    pid = int(state["pid"]) if state and state.get("pid") else None
    if pid is not None and _pid_alive(pid) and _tcp_open(int(state["port"])):
        print(f"running: bootstrap={state['bootstrap']} pid={pid} version={state['version']}")
        return 0
    print("not running")
    return 3


def _read_state(data_dir: Path) -> dict[str, object] | None:
    with contextlib.suppress(OSError, ValueError):
        return json.loads((data_dir / STATE_FILE).read_text())  # type: ignore[no-any-return]
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start", "stop", "restart", "status"])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--pause", type=float, default=10.0, help="restart: seconds down")
    args = parser.parse_args(argv)
    data_dir = args.data_dir.resolve()
    try:
        if args.command == "start":
            return _cli_start(data_dir, args.port)
        if args.command == "stop":
            return _cli_stop(data_dir)
        if args.command == "restart":
            return _cli_restart(data_dir, args.pause)
        return _cli_status(data_dir)
    except BrokerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
