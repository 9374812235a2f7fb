"""The package's shape: folders that read as the pipeline, no import cycles, no
top-level module that serves a single other one, and a CLI that holds no library logic."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "codabench_kit"
PIPELINE = ("data", "cleaning", "training", "evaluation", "report", "packaging", "validation",
            "components", "build", "cli")


def module_files() -> dict[str, Path]:
    """Every module of the package and of the built-in plugins, by dotted name."""
    found = {}
    for base, prefix in ((PACKAGE, ("codabench_kit",)), (ROOT / "plugins", ("codabench_kit", "plugins"))):
        for path in base.rglob("*.py"):
            parts = prefix + path.relative_to(base).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports, anywhere in its body (lazy imports too)."""
    modules = module_files()

    def resolve(name):
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                    and node.module.startswith("codabench_kit"):
                for alias in node.names:  # `from pkg import module` imports the module
                    edges.add(resolve(f"{node.module}.{alias.name}"))
            elif isinstance(node, ast.Import):
                edges.update(resolve(a.name) for a in node.names
                             if a.name.startswith("codabench_kit"))
        graph[name] = {e for e in edges if e and e != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_there_are_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_folders_read_as_the_pipeline():
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert set(PIPELINE) <= folders
    top = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    assert top == {"api", "backend", "errors", "progress"}


def test_no_top_level_module_serves_a_single_other_module():
    graph = import_graph()
    for name in ("codabench_kit.backend", "codabench_kit.errors", "codabench_kit.progress"):
        users = {m for m, deps in graph.items() if name in deps}
        assert len(users) > 1, f"{name} serves only {users}"
