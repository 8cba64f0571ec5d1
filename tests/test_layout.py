"""The shape of core/: no import cycle inside it, never streamlit, and pages/ui use only public names.

Imports are read from the source (AST, every import including the late ones inside functions),
not from a running interpreter: a late import that closes a circle is still a circle to a reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "core"

# Cycles still allowed, as sets of modules. They live in files other branches are editing; the lead
# removes each entry after moving those files (accounts/actor.py below audit and auth, a "link
# settled" hook that billing registers with payments, a gateway factory above the router).
ALLOWED_CYCLES: list[frozenset[str]] = [
]


def _modules(root: Path) -> dict[str, Path]:
    mods = {}
    for path in root.rglob("*.py"):
        name = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = path
    return mods


def _imported(path: Path, module: str) -> set[str]:
    """Every module name an import statement in `path` names (absolute, relative resolved)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph(root: Path = CORE) -> dict[str, set[str]]:
    """module -> the modules of `root`'s package it imports (a `from a import b` of a module b
    counts as importing b; of a name in a, as importing a)."""
    mods = _modules(root)
    graph: dict[str, set[str]] = {}
    for module, path in mods.items():
        edges = set()
        for name in _imported(path, module):
            while name and name not in mods:
                name = name.rpartition(".")[0]
            if name and name != module:
                edges.add(name)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def test_the_cycle_finder_finds_a_cycle_and_its_members() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [frozenset({"a", "b", "c"})]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_late_and_relative_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "core"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "one.py").write_text("def f():\n    from core.sub import two\n")
    (pkg / "sub" / "two.py").write_text("from ..one import f\n")
    graph = import_graph(pkg)
    assert graph["core.one"] == {"core.sub", "core.sub.two"}
    assert "core.one" in graph["core.sub.two"]
    assert cycles(graph) == [frozenset({"core.one", "core.sub.two"})]


def test_core_has_no_import_cycle() -> None:
    found = [c for c in cycles(import_graph()) if c not in ALLOWED_CYCLES]
    assert not found, "import cycles in core/: " + "; ".join(" <-> ".join(sorted(c)) for c in found)


def test_core_never_imports_streamlit() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in CORE.rglob("*.py")
        if any(name == "streamlit" or name.startswith("streamlit.") for name in _imported(path, "core.x"))
    ]
    assert not offenders, offenders


def test_pages_and_ui_use_only_public_names_of_core() -> None:
    """A page or ui helper never reaches for a leading-underscore helper of a core module."""
    core_modules = set(_modules(CORE))
    offenders = []
    for path in [ROOT / "app.py", *(ROOT / "pages").glob("*.py"), *(ROOT / "ui").glob("*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("core"):
                for alias in node.names:
                    if alias.name.startswith("_"):
                        offenders.append(f"{path.name}: from {node.module} import {alias.name}")
                    full = f"{node.module}.{alias.name}"
                    if full in core_modules:
                        aliases[alias.asname or alias.name] = full
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("core"):
                        aliases[alias.asname or alias.name] = alias.name
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
            ):
                offenders.append(f"{path.name}: {aliases[node.value.id]}.{node.attr}")
    assert not offenders, offenders


def test_the_allowed_cycles_are_still_cycles() -> None:
    """An entry that no longer closes a circle is stale: remove it, so a new circle cannot hide."""
    found = cycles(import_graph())
    stale = [c for c in ALLOWED_CYCLES if c not in found]
    assert not stale, stale


def test_payments_never_import_billing_and_billing_registers_its_link_hooks() -> None:
    """A dunning link settles a subscription charge through hooks billing registers, not an import."""
    graph = import_graph()
    for module in ("core.payments.links", "core.payments.link_checkout", "core.payments.link_approval"):
        assert not any(name.startswith("core.billing") for name in graph[module]), module
    from core import billing
    from core.payments import link_approval

    assert link_approval.LinkHooks(
        claim=billing.claim_charge_for_link,
        release=billing.release_charge_for_link,
        settle=billing.settle_charge_by_link,
    ) in link_approval._link_hooks()
