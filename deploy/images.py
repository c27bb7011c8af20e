"""Build the bus's container images offline, as an air-gapped ministry network needs them.

Nothing is pulled from a registry: the base is a Debian root file system made here with
debootstrap and imported into podman (``localhost/debian:bookworm``); the project and
every Python dependency come from a wheelhouse built on this machine (``pip wheel``);
Kafka's jars are the ones deploy/fetch-kafka.sh cached. Debian's own packages (Python,
Java, PostgreSQL) come from the Debian mirror apt uses, or its local copy. Three images,
one Dockerfile (deploy/Dockerfile, one target each)::

    localhost/nrm-referral-bus:local   every `nrm` role: registry, node, notifier, gateway
    localhost/nrm-kafka:local          Apache Kafka in KRaft mode (deploy/kafka-run)
    localhost/nrm-postgres:local       PostgreSQL (deploy/postgres-run)

Standard library only. ``python deploy/images.py build`` builds whatever is missing
or built from files that changed since
(``--rebuild`` all of it); ``python deploy/images.py remove`` deletes them. Podman runs
with the configuration these machines need (``containers.conf`` below, through
``CONTAINERS_CONF``; see the README's "Containers").
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = HERE / ".cache"  # Kafka's jars (deploy/fetch-kafka.sh)
WORK = HERE / ".images"  # podman's configuration and the build context (not versioned)
CONTEXT = WORK / "context"
BASE = "localhost/debian:bookworm"
IMAGES = {
    "nrm": "localhost/nrm-referral-bus:local",
    "kafka": "localhost/nrm-kafka:local",
    "postgres": "localhost/nrm-postgres:local",
}
KAFKA_VERSION = "4.1.1"
#: What each image is built from: a change to any of them makes the image stale.
INPUTS = {
    "nrm": ("deploy/Dockerfile", "pyproject.toml", "contracts", "services", "nrm", "clients"),
    "kafka": ("deploy/Dockerfile", "deploy/kafka-run", "deploy/kafka-tool"),
    "postgres": ("deploy/Dockerfile", "deploy/postgres-run"),
}
SOURCE_LABEL = "nrm.source-digest"

#: What podman needs on these machines: no default nofile ulimit (refused), runc (crun
#: refuses cgroups in hybrid mode), cgroupfs (no systemd).
CONTAINERS_CONF = """\
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
"""


class ImageError(RuntimeError):
    """An image could not be built."""


def podman_env() -> dict[str, str]:
    """The environment podman and podman-compose run with: our containers.conf."""
    conf = WORK / "containers.conf"
    if not conf.exists() or conf.read_text() != CONTAINERS_CONF:
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(CONTAINERS_CONF)
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, env=podman_env(), text=True, capture_output=True, **kw)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise ImageError(
            f"{' '.join(cmd[:4])} ...: {result.stderr[-3000:] or result.stdout[-3000:]}"
        )
    return result  # type: ignore[no-any-return]


def exists(image: str) -> bool:
    return (
        subprocess.run(
            ["podman", "image", "exists", image], env=podman_env(), check=False
        ).returncode
        == 0
    )


def source_digest(target: str) -> str:
    """A digest of the files an image is built from (for nrm: its wheel's sources)."""
    digest = hashlib.sha256()
    for top in INPUTS[target]:
        path = ROOT / top
        files = [path] if path.is_file() else sorted(path.rglob("*"))
        for file in files:
            if file.is_file() and "__pycache__" not in file.parts and file.suffix != ".pyc":
                digest.update(str(file.relative_to(ROOT)).encode() + b"\0")
                digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def inspect(image: str, template: str) -> str:
    """One field of an image (a Go template), or "" when there is no such image."""
    result = subprocess.run(
        ["podman", "image", "inspect", "--format", template, image],
        env=podman_env(), text=True, capture_output=True, check=False,
    )  # fmt: skip
    return result.stdout.strip() if result.returncode == 0 else ""


def current(image: str, digest: str) -> bool:
    """The image exists and was built from files whose digest is `digest`."""
    return inspect(image, f'{{{{index .Labels "{SOURCE_LABEL}"}}}}') == digest


def debian_mirror() -> str:
    """The Debian mirror apt on this machine uses (the first URIs of its sources)."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            parts = line.split()
            if parts[:1] == ["deb"] and "security" not in line:
                return parts[1]
    return "http://deb.debian.org/debian"


def base_image() -> None:
    """``localhost/debian:bookworm`` from a debootstrap'd root file system (once)."""
    if exists(BASE):
        return
    if shutil.which("debootstrap") is None:
        raise ImageError("debootstrap not found: apt-get install debootstrap")
    with tempfile.TemporaryDirectory(prefix="nrm-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        _run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs), debian_mirror()])
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        _run(["podman", "import", "-", BASE], stdin=tar.stdout)
        tar.wait()


def wheelhouse(folder: Path) -> None:
    """The project's wheel and every dependency's, built or fetched on this machine."""
    folder.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(folder), str(ROOT)],
        text=True,
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise ImageError(f"pip wheel: {result.stderr[-3000:]}")


def context() -> Path:
    """The build context: the Dockerfile, the run scripts, the wheelhouse, Kafka's jars
    (never the repository itself: no .venv, no data, no secrets)."""
    libs = CACHE / f"kafka-{KAFKA_VERSION}" / "libs"
    if not (libs / ".complete").exists():
        subprocess.run(["bash", str(HERE / "fetch-kafka.sh")], check=True)
    shutil.rmtree(CONTEXT, ignore_errors=True)
    CONTEXT.mkdir(parents=True)
    for name in ("Dockerfile", "kafka-run", "kafka-tool", "postgres-run"):
        shutil.copy2(HERE / name, CONTEXT / name)
    shutil.copytree(libs, CONTEXT / "kafka-libs", ignore=shutil.ignore_patterns(".complete"))
    wheelhouse(CONTEXT / "wheelhouse")
    return CONTEXT


def build(rebuild: bool = False) -> dict[str, str]:
    """Every image that is missing or older than the files it is built from (all of them
    with `rebuild`); returns the names."""
    base_image()
    digests = {t: source_digest(t) for t in IMAGES}
    wanted = {t: i for t, i in IMAGES.items() if rebuild or not current(i, digests[t])}
    if wanted:
        ctx = context()
        for target, image in wanted.items():
            print(f"building {image} ...", flush=True)
            before = inspect(image, "{{.Id}}")
            _run(["podman", "build", "--network=host", "--layers", "--target", target,
                  "--build-arg", f"NRM_SOURCE_DIGEST={digests[target]}",
                  "-t", image, "-f", str(ctx / "Dockerfile"), str(ctx)])  # fmt: skip
            if before and before != inspect(image, "{{.Id}}"):
                # the stale image, now untagged (kept if a layer of another still uses it)
                subprocess.run(["podman", "rmi", before], env=podman_env(),
                               capture_output=True, check=False)  # fmt: skip
    return dict(IMAGES)


def remove() -> None:
    for image in (*IMAGES.values(), BASE):
        if exists(image):
            _run(["podman", "rmi", "--force", image])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["build", "remove"])
    parser.add_argument("--rebuild", action="store_true", help="build: every image again")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            for image in build(args.rebuild).values():
                print(f"ready: {image}")
        else:
            remove()
    except ImageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
