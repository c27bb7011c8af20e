"""The house rules of the code's layout, checked from the imports themselves.

- The router's sub-packages import only from their own sub-package and lower layers
  (the table in `referral_router.__init__`).
- No service imports another service; `contracts` imports no service.
- No import cycle anywhere in `contracts/`, `services/` or the client library (imports
  inside functions and under TYPE_CHECKING count: they hide a cycle, they do not remove
  it).
- The client library (`nrm_client`) needs only httpx and the contracts, so an agency
  installs no service to call its node.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "contracts": ROOT / "contracts",
    "registry": ROOT / "services" / "registry",
    "referral_router": ROOT / "services" / "referral-router",
    "notifier": ROOT / "services" / "notifier",
    "nrm_client": ROOT / "clients" / "python" / "nrm_client",
}
SERVICES = ("registry", "referral_router", "notifier")
ROUTER_LAYERS = {
    "rules": 0,
    "transport": 0,
    "telemetry": 0,
    "store": 1,
    "sealing": 1,
    "sending": 2,
    "receiving": 2,
    "audit": 2,
    "federation": 3,
    "api": 3,
    "console": 3,
    "runtime": 4,
}


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for name, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = [name, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(module: str, path: Path) -> Iterator[str]:
    """Every project module `module` imports, resolved to a module we know."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            names = [base, *(f"{base}.{a.name}" for a in node.names)]
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != module:
                yield name


GRAPH = {m: set(_imports(m, p)) for m, p in MODULES.items()}


def _router_part(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "referral_router" and len(parts) > 1 else None


def test_every_router_sub_package_has_a_layer() -> None:
    parts = {_router_part(m) for m in MODULES} - {None}
    assert parts <= set(ROUTER_LAYERS), f"add to the layer table: {parts - set(ROUTER_LAYERS)}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _router_part(m)))
def test_router_imports_follow_the_layers(module: str) -> None:
    mine = _router_part(module)
    assert mine is not None
    wrong = [
        target
        for target in GRAPH[module]
        if (theirs := _router_part(target)) is not None
        and theirs != mine
        and ROUTER_LAYERS[theirs] >= ROUTER_LAYERS[mine]
    ]
    assert not wrong, f"{module} (layer {ROUTER_LAYERS[mine]}) imports upwards or sideways: {wrong}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_service_imports_another(module: str) -> None:
    top = module.split(".")[0]
    foreign = sorted(
        t for t in GRAPH[module] if (other := t.split(".")[0]) != top and other in SERVICES
    )
    assert not foreign, f"{module} imports another service: {foreign}"


def test_no_import_cycles() -> None:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(GRAPH[m]):
            if state.get(t) == 1:
                cycles.append([*stack[stack.index(t) :], t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_client_library_needs_only_httpx_and_the_contracts() -> None:
    allowed = {"nrm_client", "contracts", "httpx", "__future__", *sys.stdlib_module_names}
    found: dict[str, set[str]] = {}
    for path in PACKAGES["nrm_client"].rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                tops = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level:
                tops = {(node.module or "").split(".")[0]}
            else:
                continue
            for top in tops - allowed:
                found.setdefault(top, set()).add(path.name)
    assert not found, f"nrm_client imports beyond httpx and contracts: {found}"
