"""The architecture's contract: layers point one way and no package imports another in a circle.

Every import of a project module counts, at module level or inside a function (a function-level import is a
dependency all the same; only ``if TYPE_CHECKING:`` blocks are left out). Units are the entries of
:data:`LAYERS` (a package or a module); a unit may import units of its own layer or of a lower one, and the
units' import graph has no cycle, within a layer either. The checker is tested on a graph with a cycle added on
purpose, so a broken checker cannot pass silently.

Run it alone: ``python -m pytest -q tests/architecture/test_layers.py``; ``python tests/architecture/test_layers.py``
prints the layers with their line counts and the unit graph.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # tests/architecture/ -> the repository
# Folder -> the package it installs as (pyproject.toml's package-dir): the four siblings are reasonpipe.<folder>.
ROOTS = {"reasonpipe": "reasonpipe", "searchers": "reasonpipe.searchers", "verifiers": "reasonpipe.verifiers",
         "jobs": "reasonpipe.jobs", "kernels": "reasonpipe.kernels"}

# Bottom first. Each rule lives in the lowest layer that needs it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base: errors, files, configs, reports, hashing, kernels", (
        "reasonpipe.errors", "reasonpipe.environ", "reasonpipe.seeds", "reasonpipe.stats", "reasonpipe.jsonl", "reasonpipe.config", "reasonpipe.console",
        "reasonpipe.report", "reasonpipe.manifest", "reasonpipe.stage", "reasonpipe.checkpoints", "reasonpipe.localray",
        "reasonpipe.processes", "reasonpipe.plugins", "reasonpipe.storage",
        "reasonpipe.kernels", "reasonpipe.fhash")),
    ("trace grammars", ("reasonpipe.traces",)),
    ("tasks: problems, rules, scores", ("reasonpipe.tasks",)),
    ("tokenizer and text formats", ("reasonpipe.tokenizer", "reasonpipe.textformat")),
    ("search and verification", (
        "reasonpipe.searchers", "reasonpipe.verifiers", "reasonpipe.tracegen", "reasonpipe.verify", "reasonpipe.programsearch")),
    ("models, sampling, inference strategies", (
        "reasonpipe.models", "reasonpipe.budgets", "reasonpipe.sampling", "reasonpipe.ray_sampling",
        "reasonpipe.vllm_server", "reasonpipe.strategies")),
    ("training and evaluation", (
        "reasonpipe.diagnostics", "reasonpipe.trl_compat", "reasonpipe.distributed", "reasonpipe.sft", "reasonpipe.rewards", "reasonpipe.rl", "reasonpipe.evaluation",
        "reasonpipe.trainer_args", "reasonpipe.export", "reasonpipe.latent", "reasonpipe.latent_data", "reasonpipe.latent_train", "reasonpipe.latent_probe")),
    ("jobs", ("reasonpipe.jobs",)),
    ("command line", ("reasonpipe.cli", "reasonpipe.__main__", "reasonpipe")),
]


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the project's packages."""
    out = {}
    for root, package in ROOTS.items():
        for path in sorted((REPO / root).rglob("*.py")):
            parts = path.relative_to(REPO / root).with_suffix("").parts
            name = ".".join([package, *(parts[:-1] if parts[-1] == "__init__" else parts)])
            out[name] = path
    return out


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports, anywhere in the file except ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and _type_checking(node)
            for n in ast.walk(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target:
                found.add(target)
                break
    return found


def unit_of(module: str) -> str | None:
    """The LAYERS entry a module belongs to: the longest entry that is the module or a package above it."""
    best = None
    for _, units in LAYERS:
        for unit in units:
            if (module == unit or module.startswith(unit + ".")) and (best is None or len(unit) > len(best)):
                best = unit
    return best


def layer_index() -> dict[str, int]:
    return {unit: i for i, (_, units) in enumerate(LAYERS) for unit in units}


def unit_graph(modules: dict[str, Path]) -> tuple[dict[str, set[str]], dict[tuple[str, str], list[str]]]:
    """Unit -> units it imports, and for each such edge the module-level imports behind it (for messages)."""
    graph: dict[str, set[str]] = defaultdict(set)
    why: dict[tuple[str, str], list[str]] = defaultdict(list)
    for name, path in modules.items():
        src = unit_of(name)
        for target in imports_of(name, path, modules):
            dst = unit_of(target)
            if src and dst and src != dst:
                graph[src].add(dst)
                why[(src, dst)].append(f"{name} -> {target}")
    return graph, why


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Imports that point to a higher layer, and cycles among units (each as one line)."""
    rank = layer_index()
    out = [f"{src} (layer {rank[src]}) imports {dst} (layer {rank[dst]}): a higher layer"
           for src in sorted(graph) for dst in sorted(graph[src]) if rank[dst] > rank[src]]
    out += [f"import cycle: {' -> '.join(cycle[:-1])} {cycle[-1]}" for cycle in cycles(graph)]
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a closed path) per strongly connected component with more than one unit."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(_closed_path(graph, sorted(component)) + [f"(all of {', '.join(sorted(component))})"])

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _closed_path(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A path from the component's first unit back to itself, inside the component."""
    members, start = set(component), component[0]
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph.get(v, ())):
                if w == start:
                    return paths[v] + [start]
                if w in members and w not in paths:
                    paths[w] = paths[v] + [w]
                    nxt.append(w)
        frontier = nxt
    return component


# -- the tests -------------------------------------------------------------------------------------------------

def test_every_module_has_a_layer():
    modules = module_files()
    assert len(modules) > 50
    assert [m for m in modules if unit_of(m) is None] == []
    units = [u for _, us in LAYERS for u in us]
    assert len(units) == len(set(units))


def test_layers_point_one_way_and_nothing_imports_in_a_circle():
    graph, why = unit_graph(module_files())
    found = violations(graph)
    details = []
    for line in found:
        if "imports" in line:
            src, dst = line.split(" (")[0], line.split(" imports ")[1].split(" (")[0]
            details += [f"    {w}" for w in why[(src, dst)][:3]]
    assert found == [], "\n".join(found + details)


def test_the_checker_finds_a_cycle_and_an_upward_import():
    """The same checker on the real graph plus one edge added on purpose (tasks -> sft)."""
    graph, _ = unit_graph(module_files())
    graph = {k: set(v) for k, v in graph.items()}
    graph.setdefault("reasonpipe.tasks", set()).add("reasonpipe.sft")
    found = violations(graph)
    assert any(line.startswith("reasonpipe.tasks (layer 2) imports reasonpipe.sft") for line in found), found
    assert any(line.startswith("import cycle:") and "reasonpipe.tasks" in line for line in found), found


def test_function_level_imports_count(tmp_path):
    modules = {"pkg": tmp_path / "pkg.py", "pkg.low": tmp_path / "low.py"}
    (tmp_path / "pkg.py").write_text("def f():\n    from pkg.low import x\n    return x\n")
    (tmp_path / "low.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg\n")
    assert imports_of("pkg", modules["pkg"], modules) == {"pkg.low"}
    assert imports_of("pkg.low", modules["pkg.low"], modules) == set()


def main() -> None:
    """Print each layer with its units and line counts, then the unit graph."""
    modules = module_files()
    lines: dict[str, int] = defaultdict(int)
    for name, path in modules.items():
        lines[unit_of(name) or "?"] += sum(1 for _ in path.open(encoding="utf-8"))
    for i, (title, units) in enumerate(LAYERS):
        print(f"{i} {title}: " + ", ".join(f"{u} ({lines[u]})" for u in units))
    graph, _ = unit_graph(modules)
    for src in sorted(graph):
        print(f"  {src} -> {', '.join(sorted(graph[src]))}")
    for line in violations(graph):
        print("VIOLATION", line)


if __name__ == "__main__":
    sys.exit(main())
