"""Run Apache Kafka (KRaft) on 127.0.0.1 without Docker, locked down: TLS everywhere.

The broker's classpath comes from Maven Central (deploy/fetch-kafka.sh); this module
formats a data dir, writes server.properties tuned for tests, starts the JVM and waits until
the broker says "Kafka Server started" and accepts TCP connections.

Every listener (clients, inter-broker, controller) speaks TLS 1.3 and requires a client
certificate from the local CA (`nrm pki`); the subject maps to one principal per agency;
KRaft's StandardAuthorizer allows only what an ACL allows (`nrm kafka provision` writes
them from the signed directory); the operator (and the brokers themselves) are the only
super users; clients never create topics.

Importable (standard library only)::

    tls = BrokerTls.from_pki(pki_dir)      # ca.pem + broker.pem made by `nrm pki`
    handle = start_broker(data_dir, tls)    # free port chosen
    handle.bootstrap                        # "127.0.0.1:<port>"
    handle.restart(pause_seconds=10)        # same data dir, same port: fault tests
    handle.stop()                           # SIGTERM, then SIGKILL
    cluster = start_cluster(data_dir, tls)  # three voters: replication 3, min ISR 2

or runnable: ``python deploy/kafka.py start|stop|restart|status [--data-dir D] [--pki P]
[--brokers 1|3] [--port N]`` (defaults deploy/.cache/broker-data and deploy/.cache/pki;
``restart --pause 10`` is the fault drill).
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import json
import os
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
DEFAULT_DATA_DIR = CACHE / "broker-data"
DEFAULT_PKI_DIR = CACHE / "pki"
PREFERRED_VERSIONS = ("4.1.1", "3.9.1")
READY_LINE = "Kafka Server started"
STATE_FILE = "broker.json"
LOG_FILE = "broker.log"
HEAP_OPTS = ("-Xms128m", "-Xmx512m")
JIT_OPTS = tuple(os.environ.get("NRM_KAFKA_JIT", "-XX:TieredStopAtLevel=1").split())


class BrokerError(RuntimeError):
    """The broker could not be prepared, started or stopped."""


#: The port chooser, loaded by its path (this script runs before the project is installed).
PORTS = Path(__file__).resolve().parents[1] / "nrm" / "ports.py"
#: A free port below the kernel's ephemeral range, which no client's outgoing connection
#: can take between the choice and the server's bind, seconds later.
free_port = runpy.run_path(str(PORTS))["free_port"]


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


@dataclass(frozen=True)
class BrokerTls:
    """The PEM files a broker reads: the CA every party trusts and its own key store
    (private key + certificate chain), as `nrm pki` writes them."""

    ca_file: Path
    keystore_file: Path

    @classmethod
    def from_pki(cls, folder: str | os.PathLike[str]) -> BrokerTls:
        pki = Path(folder).resolve()
        tls = cls(pki / "ca.pem", pki / "broker.pem")
        missing = [p.name for p in (tls.ca_file, tls.keystore_file) if not p.exists()]
        if missing:
            raise BrokerError(
                f"{pki} lacks {', '.join(missing)}: run `nrm pki init --dir {pki}` and "
                f"`nrm pki issue --dir {pki} broker`"
            )
        return tls


#: Broker principals from certificate subjects (see nrm/pki.py): an agency's node is
#: ``agency.<COUNTRY>.<id>``, the operator's provisioning is ``operator``, the brokers
#: themselves ``broker``. A subject no rule matches is refused at the handshake.
PRINCIPAL_RULES = (
    "RULE:^CN=([a-z0-9][a-z0-9-]*),OU=([A-Z][A-Z]),O=NRM agency$/agency.$2.$1/",
    "RULE:^CN=operator,O=NRM operator$/operator/",
    "RULE:^CN=broker,O=NRM broker$/broker/",
)
#: KRaft authorizes nothing before the metadata log is loaded except super users
#: (KIP-801), so the brokers' own principal is one; among clients only the operator.
SUPER_USERS = ("User:operator", "User:broker")


@dataclass(frozen=True)
class Voter:
    """One node of the quorum: its id, client port and controller port."""

    node_id: int
    port: int
    controller_port: int


def server_properties(data_dir: Path, me: Voter, voters: Sequence[Voter], tls: BrokerTls) -> str:
    """KRaft settings with TLS on every listener, client certificates required, the
    StandardAuthorizer denying whatever no ACL allows; small and fast for tests (see
    notes/kafka-broker.md). With three voters: replication 3, min.insync.replicas 2."""
    replicas = str(min(3, len(voters)))
    min_isr = "2" if len(voters) >= 3 else "1"
    props = {
        "process.roles": "broker,controller",
        "node.id": str(me.node_id),
        "controller.quorum.voters": ",".join(
            f"{v.node_id}@127.0.0.1:{v.controller_port}" for v in voters
        ),
        "listeners": f"CLIENTS://127.0.0.1:{me.port},CONTROLLER://127.0.0.1:{me.controller_port}",
        "advertised.listeners": f"CLIENTS://127.0.0.1:{me.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "CLIENTS",
        "listener.security.protocol.map": "CONTROLLER:SSL,CLIENTS:SSL",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(tls.keystore_file),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(tls.ca_file),
        "ssl.client.auth": "required",
        "ssl.protocol": "TLSv1.3",
        "ssl.enabled.protocols": "TLSv1.3",
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.principal.mapping.rules": ",".join(PRINCIPAL_RULES),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": ";".join(SUPER_USERS),
        "log.dirs": str(data_dir / "logs"),
        "num.partitions": "1",
        "default.replication.factor": replicas,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": replicas,
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": min_isr,
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": replicas,
        "share.coordinator.state.topic.min.isr": min_isr,
        "group.initial.rebalance.delay.ms": "0",
        "group.min.session.timeout.ms": "1000",
        "log.cleaner.dedupe.buffer.size": str(4 * 1024 * 1024),
        "log.cleaner.threads": "1",
        "num.network.threads": "2",
        "num.io.threads": "2",
        "background.threads": "2",
        "num.recovery.threads.per.data.dir": "1",
        # Topics are the operator's to create (nrm kafka provision), never a client's.
        "auto.create.topics.enable": "false",
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
    """One broker (a combined broker and controller) bound to one data dir and its ports;
    can be stopped and started again."""

    data_dir: Path
    port: int
    controller_port: int
    version: str
    libs: Path
    tls: BrokerTls
    node_id: int = 1
    voters: tuple[Voter, ...] = ()
    detach: bool = False
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    started_in: float = 0.0
    _log_offset: int = field(default=0, repr=False)

    @property
    def voter(self) -> Voter:
        return Voter(self.node_id, self.port, self.controller_port)

    @property
    def quorum(self) -> tuple[Voter, ...]:
        return self.voters or (self.voter,)

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
        self.launch()
        self.wait_ready(timeout)
        return self

    def launch(self) -> None:
        """Start the JVM without waiting (a cluster's voters must all be up to elect)."""
        if self.is_running():
            return
        self._t0 = time.monotonic()
        log = self.log_path.open("ab")
        self._log_offset = log.tell()
        cmd = [
            java_binary(),
            *HEAP_OPTS,
            "-XX:+UseSerialGC",
            *JIT_OPTS,
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

    def wait_ready(self, timeout: float = 90.0) -> None:
        try:
            self._wait_ready(self._log_offset, timeout)
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - getattr(self, "_t0", time.monotonic())

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

    def kill(self) -> None:
        """SIGKILL, like a power cut: no controlled shutdown (fault drills)."""
        proc = self.process
        _LIVE.discard(self)
        if proc is not None and proc.poll() is None:
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
            "node_id": self.node_id,
            "port": self.port,
            "controller_port": self.controller_port,
            "bootstrap": self.bootstrap,
            "version": self.version,
            "tls": {"ca_file": str(self.tls.ca_file), "keystore": str(self.tls.keystore_file)},
        }
        (self.data_dir / STATE_FILE).write_text(json.dumps(state, indent=2))


@dataclass(eq=False)
class ClusterHandle:
    """Several KRaft voters (each a broker and a controller) on 127.0.0.1."""

    brokers: list[BrokerHandle]

    @property
    def bootstrap(self) -> str:
        return ",".join(b.bootstrap for b in self.brokers)

    def is_running(self) -> bool:
        return all(b.is_running() for b in self.brokers)

    def stop(self, timeout: float = 15.0) -> None:
        """All at once: one by one, the last voters would wait for a quorum that left."""
        threads = [threading.Thread(target=b.stop, args=(timeout,)) for b in self.brokers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


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


def _format(handle: BrokerHandle, cluster_id: str) -> None:
    """Write configs and format the log dir once; a formatted dir is reused as is."""
    data = handle.data_dir
    data.mkdir(parents=True, exist_ok=True)
    (data / "server.properties").write_text(
        server_properties(data, handle.voter, handle.quorum, handle.tls)
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
        cluster_id,
        "-c",
        str(data / "server.properties"),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BrokerError(f"kafka-storage format failed:\n{result.stdout}\n{result.stderr}")


def _saved(data_dir: Path) -> dict[str, Any] | None:
    with contextlib.suppress(OSError, ValueError):
        state = json.loads((data_dir / STATE_FILE).read_text())
        if isinstance(state, dict) and "port" in state and "controller_port" in state:
            return state
    return None


def _voter_for(data_dir: Path, node_id: int, port: int | None, taken: set[int]) -> Voter:
    """Ports saved in the data dir (clients remember the bootstrap), else free ones."""
    saved = _saved(data_dir)
    if port is None and saved:
        port = int(saved["port"])
    controller_port = int(saved["controller_port"]) if saved else free_port()
    port = port or free_port()
    while port in taken:
        port = free_port()
    taken.add(port)
    while controller_port in taken:
        controller_port = free_port()
    taken.add(controller_port)
    return Voter(node_id, port, controller_port)


def start_broker(
    data_dir: str | os.PathLike[str],
    tls: BrokerTls,
    port: int | None = None,
    *,
    timeout: float = 90.0,
    detach: bool = False,
) -> BrokerHandle:
    """Format (once) and start a secured single broker on 127.0.0.1; returns when it
    serves requests. A data dir used before keeps its ports unless ``port`` is given,
    so clients that remembered the bootstrap address reconnect after a restart."""
    data = Path(data_dir).resolve()
    version, libs = find_libs()
    me = _voter_for(data, 1, port, set())
    handle = BrokerHandle(data, me.port, me.controller_port, version, libs, tls, detach=detach)
    _format(handle, new_cluster_id())
    return handle.start(timeout)


def start_cluster(
    data_dir: str | os.PathLike[str],
    tls: BrokerTls,
    size: int = 3,
    *,
    timeout: float = 120.0,
    detach: bool = False,
) -> ClusterHandle:
    """Format (once) and start ``size`` voters under ``<data_dir>/node-<id>``; returns
    when every one serves. Topics default to replication 3 and min.insync.replicas 2."""
    data = Path(data_dir).resolve()
    version, libs = find_libs()
    taken: set[int] = set()
    voters = tuple(_voter_for(data / f"node-{i}", i, None, taken) for i in range(1, size + 1))
    saved_id = (data / "cluster.id").read_text().strip() if (data / "cluster.id").exists() else ""
    cluster_id = saved_id or new_cluster_id()
    data.mkdir(parents=True, exist_ok=True)
    (data / "cluster.id").write_text(cluster_id)
    brokers = [
        BrokerHandle(
            data / f"node-{v.node_id}",
            v.port,
            v.controller_port,
            version,
            libs,
            tls,
            node_id=v.node_id,
            voters=voters,
            detach=detach,
        )
        for v in voters
    ]
    for broker in brokers:
        _format(broker, cluster_id)
    for broker in brokers:
        broker.launch()
    try:
        for broker in brokers:
            broker.wait_ready(timeout)
    except BaseException:
        for broker in brokers:
            broker.stop(10)
        raise
    return ClusterHandle(brokers)


# --- command line ----------------------------------------------------------------------


def _node_dirs(data_dir: Path) -> list[Path]:
    """The data dirs of a broker (``data_dir``) or a cluster (``data_dir/node-*``)."""
    if _saved(data_dir):
        return [data_dir]
    return sorted(p for p in data_dir.glob("node-*") if _saved(p))


def _cli_start(data_dir: Path, port: int | None, pki: Path, brokers: int) -> int:
    running = [s for d in _node_dirs(data_dir) if (s := _saved(d)) and _alive(s)]
    if running:
        print("already running: bootstrap=" + ",".join(str(s["bootstrap"]) for s in running))
        return 0
    tls = BrokerTls.from_pki(pki)
    print(f"starting Kafka ({brokers} broker(s), data dir {data_dir}) ...", flush=True)
    if brokers == 1:
        handle: BrokerHandle | ClusterHandle = start_broker(data_dir, tls, port, detach=True)
    else:
        handle = start_cluster(data_dir, tls, brokers, detach=True)
    print(f"Kafka ready (TLS, client certificates required): bootstrap={handle.bootstrap}")
    return 0


def _alive(state: dict[str, Any]) -> bool:
    pid = state.get("pid")
    return isinstance(pid, int) and _pid_alive(pid)


def _cli_stop(data_dir: Path) -> int:
    """Every broker of the data dir at once (a cluster's last voters must not wait for a
    quorum that already left)."""
    nodes = [(n, s) for n in _node_dirs(data_dir) if (s := _saved(n)) and _alive(s)]
    for _, state in nodes:
        print(f"stopping broker pid {state['pid']} ...", flush=True)
    threads = [
        threading.Thread(target=_signal_and_wait, args=(int(s["pid"]), 15.0)) for _, s in nodes
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for node, state in nodes:
        state["pid"] = None
        (node / STATE_FILE).write_text(json.dumps(state, indent=2))
    print("stopped" if nodes else "not running")
    return 0


def _cli_restart(data_dir: Path, pause: float, pki: Path) -> int:
    """Fault drill: stop, stay down ``pause`` seconds, start on the same ports and data."""
    brokers = len(_node_dirs(data_dir)) or 1
    _cli_stop(data_dir)
    print(f"down for {pause:.0f}s ...", flush=True)
    time.sleep(pause)
    return _cli_start(data_dir, None, pki, brokers)


def _cli_status(data_dir: Path) -> int:
    states = [s for d in _node_dirs(data_dir) if (s := _saved(d))]
    up = [s for s in states if _alive(s) and _tcp_open(int(s["port"]))]
    if states and len(up) == len(states):
        bootstrap = ",".join(str(s["bootstrap"]) for s in up)
        print(f"running: bootstrap={bootstrap} brokers={len(up)} version={up[0]['version']}")
        return 0
    print(f"not running ({len(up)} of {len(states)} up)" if states else "not running")
    return 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start", "stop", "restart", "status"])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--pki", type=Path, default=DEFAULT_PKI_DIR, help="nrm pki folder")
    parser.add_argument("--brokers", type=int, default=1, choices=[1, 3], help="start: 1 or 3")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--pause", type=float, default=10.0, help="restart: seconds down")
    args = parser.parse_args(argv)
    data_dir = args.data_dir.resolve()
    try:
        if args.command == "start":
            return _cli_start(data_dir, args.port, args.pki, args.brokers)
        if args.command == "stop":
            return _cli_stop(data_dir)
        if args.command == "restart":
            return _cli_restart(data_dir, args.pause, args.pki)
        return _cli_status(data_dir)
    except BrokerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
