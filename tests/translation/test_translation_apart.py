"""The engine apart from the application: no engine module imports minitf.translation (or the
cli above it), `import minitf` does not load it, and the application has no import cycle."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import minitf

PACKAGE = Path(minitf.__file__).parent
APPLICATION = ("minitf.translation", "minitf.cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every module that `path` imports (relative imports resolved), and `from X import name` as X.name too."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def is_application(module: str) -> bool:
    return any(module == app or module.startswith(app + ".") for app in APPLICATION)


def test_the_resolver_sees_relative_imports_of_the_application():
    assert "minitf.translation.config" in imported(PACKAGE / "translation" / "trainer.py")
    assert "minitf.nn" in imported(PACKAGE / "translation" / "checkpoint" / "schema.py")
    assert any(is_application(m) for m in imported(PACKAGE / "cli.py"))


def test_no_engine_module_imports_the_application():
    engine = [p for p in PACKAGE.rglob("*.py") if not is_application(module_name(p))]
    assert len(engine) > 50  # the whole engine was scanned
    offenders = {module_name(p): sorted(m for m in imported(p) if is_application(m)) for p in engine}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_import_minitf_does_not_load_the_application():
    code = "import sys, minitf; print(sorted(m for m in sys.modules if m.startswith(('minitf.translation', 'minitf.cli'))))"
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_application_has_no_import_cycle():
    """(A package's __init__ only hands names on: the edges run between its modules.)"""
    modules = {module_name(p): p for p in (PACKAGE / "translation").rglob("*.py") if p.name != "__init__.py"}
    graph = {name: sorted(m for m in imported(path) if m in modules and m != name) for name, path in modules.items()}
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in graph[name]:
            assert state.get(target) != "open", "import cycle: " + " -> ".join(path + [name, target])
            if target not in state:
                visit(target, path + [name])
        state[name] = "done"

    assert len(graph) > 10 and graph["minitf.translation.trainer"]
    for name in graph:
        if name not in state:
            visit(name, [])


def test_no_module_of_the_application_is_over_400_lines():
    sizes = {module_name(p): len(p.read_text(encoding="utf-8").splitlines())
             for p in [*(PACKAGE / "translation").rglob("*.py"), PACKAGE / "cli.py"]}
    assert {name: n for name, n in sizes.items() if n > 400} == {}
