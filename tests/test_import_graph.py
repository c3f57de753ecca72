"""The shape of the house, read from the source with ``ast``: no import cycles, layers that only look down,
edgecnn imports at the top of modules (outside the CLI's lazy command table).

Every module's imports are read, function-level ones included, so a cycle hidden behind a lazy import
is still a cycle. A dependency ``from edgecnn.a import b`` counts as ``edgecnn.a.b`` when that is a module.
"""

import ast
from pathlib import Path

import pytest

import edgecnn

PACKAGE = Path(edgecnn.__file__).parent

# Each package may import only packages listed after it (errors, atomic etc. are the ground floor).
LAYERS = ["edgecnn.cli", "edgecnn.serve", "edgecnn.pipeline", "edgecnn.training", "edgecnn.parity",
          "edgecnn.explain", "edgecnn.imagesets",
          "edgecnn.runtime", "edgecnn.tflite"]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(path: Path):
    """(imported edgecnn module, at top level?) for every import statement in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = set(map(id, tree.body))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("edgecnn"):
            assert node.level == 0, f"{path}: relative import"
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                yield (full if full in MODULES else node.module), id(node) in top
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("edgecnn"):
                    yield alias.name, id(node) in top


GRAPH = {name: {dep for dep, _ in imports_of(path) if dep != name} for name, path in MODULES.items()}


def layer_of(module: str) -> int | None:
    for index, prefix in enumerate(LAYERS):
        if module == prefix or module.startswith(prefix + "."):
            return index
    return None


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for dep in graph.get(node, ()):
            if dep not in graph:
                continue
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_the_graph_is_read():
    assert "edgecnn.tflite.metadata" in GRAPH["edgecnn.runtime.classifier"]


def test_no_import_cycles():
    assert find_cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_cycle():
    # Not vacuous: the old registry <-> architectures pair is reported.
    assert find_cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if layer_of(m) is not None))
def test_packages_import_only_layers_below(module):
    mine = layer_of(module)
    upward = sorted(dep for dep in GRAPH[module] if (layer := layer_of(dep)) is not None and layer < mine)
    assert upward == [], f"{module} reaches up into {upward}"


def test_edgecnn_imports_sit_at_the_top_outside_the_cli():
    # The CLI's command modules are the deliberate lazy boundary (`edgecnn --help` must stay fast);
    # edgecnn.entry imports the CLI only after it has put the Ctrl-C handler in place (edgecnn/interrupts.py).
    inside = sorted(f"{name}: {dep}" for name, path in MODULES.items()
                    if not name.startswith("edgecnn.cli") and name != "edgecnn.entry"
                    for dep, at_top in imports_of(path) if not at_top)
    assert inside == []
