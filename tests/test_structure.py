"""The house rules of minitf/'s structure, read from the source: small files, no import cycles.

Imports are read with `ast` (nothing is imported); an import under `if TYPE_CHECKING:` is for type
checkers only and does not count. A lazy import inside a function counts: it still ties the two files.
"""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "minitf"
MAX_LINES = 400


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (a package is its __init__.py)."""
    files = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def _runtime_nodes(tree: ast.AST):
    """Every node except those under `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that module `name` imports (an imported name that is a submodule counts
    as that submodule; a name from a package's __init__ as the package)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_file_of_package_code_is_over_400_lines():
    long = {str(p.relative_to(PACKAGE.parent)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split these files (over {MAX_LINES} lines): {long}"


def test_no_import_cycles():
    # A package's __init__ importing its own submodules is how a package is built, not a cycle.
    graph = {name: {t for t in targets if not (module_files()[name].name == "__init__.py" and t.startswith(name + "."))}
             for name, targets in import_graph().items()}
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_reader_resolves_relative_imports_and_skips_type_checking(tmp_path):
    source = ("from typing import TYPE_CHECKING\nfrom . import sibling\nfrom ..top import thing\n"
              "if TYPE_CHECKING:\n    from .hidden import X\ndef f():\n    from .lazy import y\n")
    path = tmp_path / "mod.py"
    path.write_text(source)
    modules = dict.fromkeys(["p", "p.q", "p.q.mod", "p.q.sibling", "p.q.hidden", "p.q.lazy", "p.top"])
    assert imports_of("p.q.mod", path, modules) == {"p.q.sibling", "p.top", "p.q.lazy"}


# ---- README's picture of the layers ------------------------------------------------------------

README = PACKAGE.parent / "README.md"
LAYERS_MARK = "<!-- layers:"


def readme_layers(text: str) -> list[list[str]]:
    """The rows of README's layer picture, top first: the leading names of each line of the code
    block after the marker (a row's description starts at its first word that names no module)."""
    block = text[text.index(LAYERS_MARK):].split("```text\n", 1)[1].split("```", 1)[0]
    top_level = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"} | {
        p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    rows = []
    for line in block.splitlines():
        names = []
        for word in line.split():
            if word not in top_level:
                break
            names.append(word)
        if names:
            rows.append(names)
    return rows


def test_readme_draws_every_top_level_module_once():
    rows = readme_layers(README.read_text(encoding="utf-8"))
    drawn = [name for row in rows for name in row]
    top_level = sorted({p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"} | {
        p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()})
    assert sorted(drawn) == top_level


def test_every_import_points_down_readmes_layers():
    row_of = {name: i for i, row in enumerate(readme_layers(README.read_text(encoding="utf-8"))) for name in row}
    upward = sorted(f"{a} -> {b}" for a, targets in import_graph().items() for b in targets
                    if a.count(".") and b.count(".") and (ta := a.split(".")[1]) != (tb := b.split(".")[1])
                    and row_of[ta] >= row_of[tb])  # rows are numbered from the top
    assert upward == [], "imports that do not point down README's layer picture"


def test_the_layer_reader_stops_at_the_description():
    text = f"{LAYERS_MARK} -->\n```text\ncli   the command\nnn  optim   modules, optim\n```\n"
    assert readme_layers(text) == [["cli"], ["nn", "optim"]]
