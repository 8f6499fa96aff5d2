"""The layout of core/ as a test: packages by concept, imports that run one way, no circles.

The import graph is read from the source with ast (nothing is executed), so the test sees
lazy imports inside functions too.
"""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "core"
BASE = {"errors", "seeds", "result", "device", "settings"}
# package -> the core packages it may import (besides itself and the base modules)
ALLOWED = {
    "cell": set(),
    "data": set(),
    "nets": {"cell", "data"},
    "store": {"cell"},
    "search": {"cell", "data", "nets", "store"},
    "training": {"cell", "data", "nets", "store"},
    "insight": {"cell", "data", "nets", "store", "search", "training"},
    "runner": {"cell", "data", "nets", "store", "search", "training"},
    "cli": {"cell", "data", "nets", "store", "search", "training", "insight", "runner"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(CORE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, node: ast.ImportFrom, is_pkg: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_pkg else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _graph(files: dict[str, Path], roots: tuple[str, ...]) -> dict[str, set[str]]:
    """module -> the modules under `roots` it imports (a `from pkg import name` counts as
    pkg.name when that is a module, else as pkg)."""
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(module, node, path.name == "__init__.py")
                targets = [f"{target}.{a.name}" if f"{target}.{a.name}" in files else target for a in node.names]
            else:
                continue
            deps |= {t for t in targets if t.split(".")[0] in roots}
        graph[module] = deps - {module}
    return graph


def import_graph() -> dict[str, set[str]]:
    """core module -> the core modules (and streamlit) it imports."""
    return _graph({_module_name(p): p for p in CORE.rglob("*.py")}, ("core", "streamlit"))


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path [a, b, ..., a], or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return stack[stack.index(dep) :] + [dep]
            if dep in graph and not state.get(dep):
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if not state.get(node):
            found = visit(node)
            if found:
                return found
    return None


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_core_has_no_import_cycle():
    graph = import_graph()
    cycle = find_cycle(graph)
    print(f"core/: {len(graph)} modules, {sum(map(len, graph.values()))} imports, cycle: {cycle or 'none'}")
    assert cycle is None, " -> ".join(cycle)


def test_find_cycle_sees_a_circle():
    """The detector itself: a planted circle is found, a chain is not."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_packages_import_only_downwards():
    wrong = []
    for module, deps in import_graph().items():
        pkg = _package(module)
        if pkg == "__main__":
            allowed = {"cli"}
        elif pkg in BASE or not pkg:
            allowed = BASE
        else:
            allowed = ALLOWED[pkg] | BASE | {pkg}
        for dep in deps:
            if dep.startswith("core.") and _package(dep) not in allowed:
                wrong.append(f"{module} -> {dep}")
    assert not wrong, "imports against the layering:\n" + "\n".join(sorted(wrong))


def test_core_never_imports_streamlit():
    offenders = [m for m, deps in import_graph().items() if any(d.startswith("streamlit") for d in deps)]
    assert not offenders


def test_core_is_packages_with_a_few_base_files():
    top = sorted(p.stem for p in CORE.glob("*.py") if p.stem not in ("__init__", "__main__"))
    assert set(top) == BASE and len(top) <= 5
    packages = sorted(p.name for p in CORE.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert set(packages) == set(ALLOWED)
    for pkg in CORE.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(pkg.read_text()))
        assert doc and len(doc) > 60, f"{pkg} needs a docstring saying what it holds"
        if pkg.parent != CORE:
            assert "May import" in doc, f"{pkg}'s docstring must say which packages it may import"


def _private_reaches(path: Path) -> list[str]:
    """Where a module uses another's private (underscore) name: `from m import _x`, `m._x`, `obj._x`
    (anything but self/cls); dunders are not private."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            found += [
                f"from {node.module} import {a.name}"
                for a in node.names
                if a.name.startswith("_") and not a.name.startswith("__")
            ]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = node.value.id if isinstance(node.value, ast.Name) else ""
            if owner not in ("self", "cls"):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_store_modules_use_no_private_name_of_another():
    """runs, jobs and controls share core.store.connection and core.store.lifecycle through their
    public names; none reaches into another's underscore helpers."""
    wrong = {p.name: hits for p in sorted((CORE / "store").glob("*.py")) if (hits := _private_reaches(p))}
    assert not wrong, wrong


def test_private_reach_detector_sees_both_kinds(tmp_path):
    planted = tmp_path / "m.py"
    planted.write_text("from core.store.runs import _edge_json\ndef f(store):\n    return store._connect(), self._ok\n")
    assert _private_reaches(planted) == ["from core.store.runs import _edge_json", "line 3: store._connect"]


def test_the_app_opens_stores_only_through_its_cache():
    """ui/resources.store_at keeps one store object per file for the server process; no page or
    widget builds its own Store or JobStore (each would re-run the schema check on opening)."""
    root = CORE.parent
    wrong = []
    for path in sorted([root / "app.py", *(root / "ui").rglob("*.py"), *(root / "views").rglob("*.py")]):
        if path == root / "ui" / "resources.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("Store", "JobStore"):
                wrong.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not wrong, wrong


# ---- the app side: ui/ (helpers and page bodies) under views/ (one thin file per page) ----
ROOT = CORE.parent
PAGE_PACKAGES = {"search", "explorer", "compare", "train"}
VIEW_LINES = 30


def app_graph() -> dict[str, set[str]]:
    """ui, views and app modules -> the ui/views modules they import (read with ast, as above)."""
    paths = [*(ROOT / "ui").rglob("*.py"), *(ROOT / "views").glob("*.py"), ROOT / "app.py"]
    files = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p for p in paths}
    return _graph(files, ("ui", "views", "app"))


def test_ui_and_views_have_no_import_cycle():
    graph = app_graph()
    assert len(graph) > 30, sorted(graph)  # the reader found the app's modules
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_ui_never_imports_views_or_the_app():
    wrong = [
        f"{m} -> {d}"
        for m, deps in app_graph().items()
        if m.startswith("ui")
        for d in deps
        if d.split(".")[0] in ("views", "app")
    ]
    assert not wrong, "\n".join(wrong)


def test_a_page_package_never_imports_another_page():
    wrong = []
    for module, deps in app_graph().items():
        parts = module.split(".")
        if parts[0] == "ui" and len(parts) > 2 and parts[1] in PAGE_PACKAGES:
            wrong += [
                f"{module} -> {d}" for d in deps if d.split(".")[1:2] and d.split(".")[1] in PAGE_PACKAGES - {parts[1]}
            ]
    assert not wrong, "\n".join(wrong)


def test_views_are_thin():
    """A view names its page and calls into ui: no function, class, branch or loop of its own,
    imports of streamlit and ui only, and at most VIEW_LINES lines."""
    views = sorted((ROOT / "views").glob("*.py"))
    assert views
    for path in views:
        text = path.read_text()
        assert len(text.splitlines()) <= VIEW_LINES, f"{path.name}: {len(text.splitlines())} lines"
        tree = ast.parse(text)
        logic = [
            type(n).__name__
            for n in ast.walk(tree)
            if isinstance(
                n,
                (
                    ast.FunctionDef,
                    ast.AsyncFunctionDef,
                    ast.ClassDef,
                    ast.Lambda,
                    ast.If,
                    ast.For,
                    ast.While,
                    ast.With,
                    ast.Try,
                ),
            )
        ]
        assert not logic, f"{path.name} holds {logic}: move it into ui/"
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert name.split(".")[0] in ("streamlit", "ui"), f"{path.name} imports {name}"
        assert any(isinstance(n, ast.Expr) and isinstance(n.value, ast.Call) for n in tree.body), path.name


def test_app_checks_see_a_planted_breach():
    """The ui checks themselves: the reader sees ui.bundles import ui.selection, and a planted
    import back (the circle this layout broke) is found."""
    graph = app_graph()
    assert "ui.selection" in graph and "ui.bundles" in graph
    assert "ui.selection" in graph["ui.bundles"] and "ui.bundles" not in graph["ui.selection"]
    assert find_cycle({**graph, "ui.selection": graph["ui.selection"] | {"ui.bundles"}}) is not None


def test_no_test_imports_conftest():
    """Shared test code is imported from tests/helpers.py; pytest loads conftest on its own."""
    tests = sorted(Path(__file__).parent.glob("*.py"))
    assert tests
    wrong = [
        p.name
        for p in tests
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        and "conftest" in ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module])
    ]
    assert not wrong, wrong
