"""Start a throwaway PostgreSQL cluster on 127.0.0.1 for tests (standard library only).

``start_postgres(data_dir)`` runs initdb in a fresh directory, starts the server on a free
port (TCP on 127.0.0.1 only, its unix socket inside the cluster dir) and returns a handle
with the connection parameters; ``handle.stop()`` shuts it down and deletes the cluster.

PostgreSQL refuses to run as root, so as root initdb and postgres run as the ``postgres``
user (created by the Debian package; a system user is created if missing), and the cluster
lives in a directory that user can reach.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import runpy
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVICE_USER = "postgres"
SUPERUSER = "nrm"
DBNAME = "nrm"


class PostgresError(RuntimeError):
    """The cluster could not be created, started or stopped."""


def find_bindir() -> Path:
    """Server binaries: $PG_BINDIR, the newest /usr/lib/postgresql/<v>/bin, or PATH."""
    env = os.environ.get("PG_BINDIR")
    candidates = [Path(env)] if env else []
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates += versions
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    for d in candidates:
        if all((d / b).exists() for b in ("initdb", "pg_ctl", "postgres", "psql")):
            return d
    raise PostgresError("PostgreSQL server binaries not found: run deploy/ensure-postgres.sh")


#: The port chooser, loaded by its path (this script runs before the project is installed).
PORTS = Path(__file__).resolve().parents[1] / "nrm" / "ports.py"
#: A free port below the kernel's ephemeral range, which no client's outgoing connection
#: can take between the choice and the server's bind, seconds later.
free_port = runpy.run_path(str(PORTS))["free_port"]


def _service_user() -> str | None:
    """The user to run the server as: None when not root, else ``postgres`` (created)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             SERVICE_USER],
            check=True,
        )  # fmt: skip
    return SERVICE_USER


def _run(cmd: list[str], user: str | None) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL tool, as ``user`` when given (root cannot run the server)."""
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def _reachable_by(user: str, path: Path) -> bool:
    return _run(["test", "-w", str(path), "-a", "-x", str(path)], user).returncode == 0


@dataclass
class PostgresHandle:
    """Connection parameters of a running throwaway cluster, and its shutdown."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    dbname: str = "nrm"
    cluster_dir: Path = field(default=Path(), repr=False)
    bindir: Path = field(default=Path(), repr=False)
    run_as: str | None = field(default=None, repr=False)
    remove_on_stop: Path | None = field(default=None, repr=False)

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.dbname}"

    def env(self) -> dict[str, str]:
        """The eventsourcing library's POSTGRES_* settings for this cluster."""
        return {
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
            "POSTGRES_DBNAME": self.dbname,
        }

    def create_database(self, name: str) -> dict[str, str]:
        """A database of its own for one service, owned by a role of its own with a fresh
        password (the service can open no other's data); returns its POSTGRES_* settings.
        `name` is a plain identifier ([a-z0-9_]), used for both."""
        if not name.replace("_", "").isalnum() or not name.islower() or not name.isascii():
            raise PostgresError(f"{name!r}: a database name here is [a-z0-9_]")
        password = secrets.token_urlsafe(18)
        sql = (
            f"CREATE ROLE {name} LOGIN PASSWORD '{password}';"
            f"CREATE DATABASE {name} OWNER {name};"
            f"REVOKE ALL ON DATABASE {name} FROM PUBLIC;"
        )
        for statement in sql.split(";")[:-1]:
            result = _run(
                [str(self.bindir / "psql"), "-h", str(self.cluster_dir), "-p", str(self.port),
                 "-U", self.user, "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", statement],
                self.run_as,
            )  # fmt: skip
            if result.returncode != 0:
                raise PostgresError(f"{statement.split(' PASSWORD')[0]}: {result.stderr}")
        return {**self.env(), "POSTGRES_USER": name, "POSTGRES_PASSWORD": password,
                "POSTGRES_DBNAME": name}  # fmt: skip

    def stop(self) -> None:
        """Fast shutdown (disconnects clients), then delete the throwaway cluster."""
        if (self.cluster_dir / "postmaster.pid").exists():
            cmd = [str(self.bindir / "pg_ctl"), "-D", str(self.cluster_dir), "-m", "fast"]
            result = _run([*cmd, "-w", "-t", "30", "stop"], self.run_as)
            if result.returncode != 0 and (self.cluster_dir / "postmaster.pid").exists():
                _run([*cmd, "-m", "immediate", "-w", "stop"], self.run_as)
        if self.remove_on_stop:
            shutil.rmtree(self.remove_on_stop, ignore_errors=True)


def start_postgres(
    data_dir: str | os.PathLike[str], port: int | None = None, *, durable: bool = False
) -> PostgresHandle:
    """initdb a new cluster under ``data_dir`` and start it; returns when it accepts logins.

    ``durable=False`` (tests) turns fsync off: a throwaway cluster need not survive a
    power cut, and tests run several times faster.
    """
    bindir = find_bindir()
    user = _service_user()
    base = Path(data_dir).resolve()
    base.mkdir(parents=True, exist_ok=True)
    remove: Path | None = None
    if user and not _reachable_by(user, base):
        # e.g. pytest's tmp dirs are 0700 root: use a dir the service user can reach.
        base = Path(tempfile.mkdtemp(prefix="nrm-pg-"))
        remove = base
    cluster = base / f"pg-{secrets.token_hex(4)}"
    cluster.mkdir(mode=0o700)
    remove = remove or cluster
    if user:
        shutil.chown(cluster, user, user)
        if remove:
            shutil.chown(base, user, user)
    password = secrets.token_urlsafe(18)
    pwfile = cluster.parent / f".pw-{cluster.name}"
    pwfile.write_text(password + "\n")
    if user:
        shutil.chown(pwfile, user)
    try:
        result = _run(
            [str(bindir / "initdb"), "-D", str(cluster), "-U", SUPERUSER,
             f"--pwfile={pwfile}", "--auth-host=scram-sha-256", "--auth-local=trust",
             "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions"],
            user,
        )  # fmt: skip
    finally:
        pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        raise PostgresError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
    port = port or free_port()
    settings = {
        "listen_addresses": "'127.0.0.1'",
        "port": str(port),
        "unix_socket_directories": f"'{cluster}'",
        "max_connections": "100",
        "shared_buffers": "64MB",
        "fsync": "on" if durable else "off",
        "synchronous_commit": "on" if durable else "off",
        "full_page_writes": "on" if durable else "off",
        "logging_collector": "off",
    }
    with (cluster / "postgresql.conf").open("a") as conf:
        conf.write("\n# deploy/postgres.py\n")
        conf.writelines(f"{k} = {v}\n" for k, v in settings.items())
    handle = PostgresHandle(
        "127.0.0.1", port, SUPERUSER, password, DBNAME, cluster, bindir, user, remove
    )
    log = cluster / "server.log"
    result = _run(
        [str(bindir / "pg_ctl"), "-D", str(cluster), "-l", str(log), "-w", "-t", "60", "start"],
        user,
    )
    if result.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        handle.stop()
        raise PostgresError(f"pg_ctl start failed:\n{result.stdout}\n{result.stderr}\n{tail}")
    created = _run(
        [str(bindir / "psql"), "-h", str(cluster), "-p", str(port), "-U", SUPERUSER,
         "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", f"CREATE DATABASE {DBNAME}"],
        user,
    )  # fmt: skip
    if created.returncode != 0:
        handle.stop()
        raise PostgresError(f"CREATE DATABASE failed:\n{created.stderr}")
    return handle


def main() -> int:
    """Smoke test: start a cluster, print its DSN, wait for Enter, stop it."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        handle = start_postgres(tmp)
        print(f"ready in {time.monotonic() - t0:.1f}s: {handle.dsn}", flush=True)
        with contextlib.suppress(EOFError, KeyboardInterrupt):
            input("press Enter to stop ")
        handle.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
