"""Test modules share code through helper modules (conftest.py, tests/op_cases/, minitf.testing),
never by importing each other (a helper module's name does not start with test_): a test module imported by another runs its own tests' set-up
twice and ties the two files together when one of them moves."""
import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def imported_modules(tree: ast.AST) -> set[str]:
    """Every module named by an import statement anywhere in `tree`, relative ones with their dots."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


def is_test_module(name: str) -> bool:
    """`tests.x`, `test_x`, `.test_x`, `pkg.test_x`: a module of the test suite other than a helper."""
    parts = name.lstrip(".").split(".")
    return parts[0] == "tests" or any(part.startswith("test_") for part in parts)


def cross_imports() -> dict[str, set[str]]:
    """test file (relative to tests/) -> the test modules it imports."""
    found = {}
    for path in sorted(TESTS.rglob("*.py")):
        names = {n for n in imported_modules(ast.parse(path.read_text(encoding="utf-8"))) if is_test_module(n)}
        if names:
            found[str(path.relative_to(TESTS))] = names
    return found


def test_no_test_module_imports_another():
    offenders = {path: names for path, names in cross_imports().items() if names}
    assert not offenders, ("import shared test code from conftest.py, a helper module (tiny_runs.py, fake_gpu.py, ...), "
                           "tests/op_cases/ or minitf.testing, "
                           f"not from a test module: {offenders}")


def test_the_scan_sees_every_form_of_import():
    source = ("import tests.test_a\nfrom test_b import x\nfrom .test_c import y\nimport os\n"
              "from conftest import requires_cuda\nfrom op_cases.functional import CASES\n"
              "def f():\n    from test_d import z\n")
    names = {n for n in imported_modules(ast.parse(source)) if is_test_module(n)}
    assert names == {"tests.test_a", "test_b", ".test_c", "test_d"}
