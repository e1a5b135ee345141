"""minitf.kernels.source: the CUDA sources ship as package data (cuda/*.cu) and every
launch names a kernel that they define. Runs without CuPy."""
from __future__ import annotations

import ast
import configparser
import fnmatch
import inspect
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from minitf.functional import activations
from minitf.kernels import _compile, adam, constants, ops, source

LAUNCHERS = (ops, adam)  # the modules that call get_kernel
ROOT = Path(__file__).resolve().parents[2]


def _literal(node: ast.AST) -> str:
    assert isinstance(node, ast.Constant) and isinstance(node.value, str), ast.dump(node)
    return node.value


def launches() -> set[tuple[str, str]]:
    """(module, kernel) of every get_kernel(module, kernel, dtype) call in the launchers' source.

    The module is a string literal; the kernel is one too, or a parameter of the enclosing
    helper (as in ops._rowwise_unary), whose callers in the same file then pass literals.
    """
    found = set()
    for mod in LAUNCHERS:
        tree = ast.parse(inspect.getsource(mod))
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
        for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
            for call in (n for n in ast.walk(fn) if isinstance(n, ast.Call)):
                if not (isinstance(call.func, ast.Name) and call.func.id == "get_kernel"):
                    continue
                module, kernel = _literal(call.args[0]), call.args[1]
                if isinstance(kernel, ast.Name):  # a helper's parameter: take its callers' literals
                    index = [a.arg for a in fn.args.args].index(kernel.id)
                    callers = [c for c in calls if c.func.id == fn.name]
                    assert callers, fn.name
                    found |= {(module, _literal(c.args[index])) for c in callers}
                else:
                    found.add((module, _literal(kernel)))
    return found


def test_every_launched_kernel_is_defined_and_every_kernel_is_launched():
    launched = launches()
    assert len(launched) >= 10  # the pattern does find the calls
    for module, kernel in launched:
        assert kernel in source.kernel_names(module), (module, kernel)
    defined = {(m, k) for m in source.modules() for k in source.kernel_names(m)}
    assert defined == launched


def test_sources_are_found_through_importlib_resources():
    folder = resources.files("minitf.kernels") / "cuda"
    names = {f.name for f in folder.iterdir()}
    assert source.COMMON in names
    assert {f"{m}.cu" for m in source.modules()} == {n for n in names if n.endswith(".cu")}
    assert source.modules()
    for name in names:
        assert source.read(name) == (folder / name).read_text(encoding="utf-8")


def test_setup_cfg_ships_every_source_file_as_package_data():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    patterns = [p.strip() for p in cfg["options.package_data"]["minitf.kernels"].split(",")]
    for f in (resources.files("minitf.kernels") / "cuda").iterdir():
        assert any(fnmatch.fnmatch(f"cuda/{f.name}", p) for p in patterns), f.name


def _strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*", "", text)


@pytest.mark.parametrize("module", source.modules())
def test_each_module_is_one_complete_translation_unit(module):
    text = source.module_source(module)
    code = _strip_comments(text)
    assert code.count("{") == code.count("}") and code.count("(") == code.count(")")
    depth = 0
    for c in code:  # and never closes more than it opened
        depth += {"{": 1, "}": -1}.get(c, 0)
        assert depth >= 0
    assert not re.search(r"@\w+@", text)  # no placeholder of the old .replace chains
    defined = set(re.findall(r"^#define (MINITF_\w+)", text, flags=re.M))
    assert set(re.findall(r"\bMINITF_\w+", code)) <= defined  # every constant used is defined
    assert "#include" not in text  # NVRTC has no system headers


@pytest.mark.parametrize("module", source.modules())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_module_and_dtype_gives_a_program_and_its_instances(module, dtype):
    t = _compile.ctype(dtype)
    text = source.module_source(module)
    names = source.kernel_names(module)
    assert names and len(set(names)) == len(names)
    assert _compile.name_expressions(module, t) == [f"{k}<{t}>" for k in names]
    for k in names:
        assert len(re.findall(rf"^template <typename T>\n__global__ void {k}\(", text, flags=re.M)) == 1


def test_an_unknown_module_is_a_key_error():
    with pytest.raises(KeyError, match="no CUDA module 'nope'"):
        source.kernel_names("nope")
    with pytest.raises(KeyError, match="no CUDA module"):
        source.module_source("nope")


def test_constants_have_one_home_for_numpy_and_cuda():
    """The NumPy gelu uses the very objects that become the CUDA #defines."""
    assert activations.INV_SQRT_2 is constants.INV_SQRT_2
    assert activations.INV_SQRT_2PI is constants.INV_SQRT_2PI
    assert activations.SQRT_2_OVER_PI is constants.SQRT_2_OVER_PI
    assert activations.GELU_C is constants.GELU_C
    header = source.defines()
    for name, value in constants.CUDA_DEFINES.items():
        (spelled,) = re.findall(rf"^#define MINITF_{name} (\S+)$", header, flags=re.M)
        assert float(spelled) == value  # the C literal round-trips to the same double
