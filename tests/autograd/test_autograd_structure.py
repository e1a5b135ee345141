"""The autograd package's shape: small files, and an engine that knows nothing of CPU scheduling."""
import ast
import pathlib

import minitf

AUTOGRAD = pathlib.Path(minitf.__file__).parent / "autograd"


def test_no_autograd_file_is_over_400_lines():
    for path in sorted(AUTOGRAD.glob("*.py")):
        lines = len(path.read_text().splitlines())
        assert lines <= 400, f"{path.name} has {lines} lines: split it by purpose"


def imported_names(path):
    """Every module and name that the file imports (`from .. import parallel` gives "..", "parallel")."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(part for alias in node.names for part in alias.name.split("."))
        elif isinstance(node, ast.ImportFrom):
            names.update((node.module or "").split("."))
            names.update(alias.name for alias in node.names)
    return names


def test_the_engine_and_the_grad_mode_do_not_touch_the_cpu_pool():
    """no_grad sets only the grad mode: product splitting and BLAS threads are not its business."""
    for name in ("grad_mode.py", "tensor.py", "graph.py", "hooks.py"):
        assert not imported_names(AUTOGRAD / name) & {"parallel", "cpu", "threadpoolctl"}, name
