"""The plan shows the design: imports point one way through the layers, and modules import no circle.

shells (kb.cli, api) -> evaluation -> search / ingest -> index -> embed / lang -> settings, errors, models.
Modules of sibling packages (search and ingest, embed and lang) do not import each other. Lazy imports
inside functions count: a dependency is a dependency wherever it is written.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.utils import ROOT

LAYERS = {  # package prefix -> layer; higher layers may import lower ones only
    "kb.settings": 0, "kb.errors": 0, "kb.models": 0,
    "kb.lang": 1, "kb.embed": 1,
    "kb.index": 2,
    "kb.ingest": 3, "kb.search": 3,
    "kb.evaluation": 4, "kb.integrations": 4,
    "kb.cli": 5, "api": 5,
}
SIBLINGS = [("kb.lang", "kb.embed"), ("kb.ingest", "kb.search"), ("kb.evaluation", "kb.integrations")]


def _modules() -> dict[str, Path]:
    out = {}
    for base in ("kb", "api"):
        for f in (ROOT / base).rglob("*.py"):
            parts = list(f.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = f
    return out


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Our modules a module imports (``from pkg import mod`` resolved to the module), TYPE_CHECKING blocks skipped."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)}
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] in ("kb", "api"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] in ("kb", "api"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                out.add(sub if sub in known else node.module)
    return {m for m in out if m != name}


def _layer(module: str) -> tuple[str, int] | None:
    for prefix, layer in sorted(LAYERS.items(), key=lambda kv: -len(kv[0])):
        if module == prefix or module.startswith(prefix + "."):
            return prefix, layer
    return None


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: _imports(path, name, set(mods)) for name, path in mods.items()}


def test_every_module_belongs_to_a_layer() -> None:
    assert [m for m in _modules() if m not in ("kb", "kb.resources") and _layer(m) is None] == []


def test_imports_point_down_the_layers() -> None:
    wrong = []
    for mod, deps in _graph().items():
        here = _layer(mod)
        for dep in deps:
            there = _layer(dep)
            if here is None or there is None or here[0] == there[0]:
                continue
            if there[1] > here[1] or (here[1] == there[1] and tuple(sorted((here[0], there[0]))) in
                                      {tuple(sorted(p)) for p in SIBLINGS}) or (here[1] == there[1] == 5):
                wrong.append(f"{mod} imports {dep}")
    assert wrong == []


def test_no_import_cycles() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if dep.startswith(node + "."):
                continue  # a package's __init__ re-exporting its own modules is not a cycle
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep] if dep in stack else [node, dep])
            elif dep in graph and not state.get(dep):
                visit(dep, [*stack, dep])
        state[node] = 2

    for n in sorted(graph):
        if not state.get(n):
            visit(n, [n])
    assert cycles == []


def test_only_the_shells_read_the_environment() -> None:
    """One Settings object passed down: library code never calls get_settings() or reads os.environ."""
    offenders = []
    for mod, path in _modules().items():
        text = path.read_text(encoding="utf-8")
        if mod in ("kb.settings", "api.app") or mod.startswith(("kb.cli", "kb.embed.backends")):
            continue
        if "get_settings(" in text or "os.environ[" in text or "os.environ.get(" in text or "getenv(" in text:
            offenders.append(mod)
    assert offenders == []
