"""Backends and devices: device names, CuPy being optional, device checks, seeding, GPU parity."""
import ast
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import minitf as mt
from minitf import backend
from minitf.backend import CPU, Device

PACKAGE = pathlib.Path(mt.__file__).parent


def _gpu_available():
    try:
        backend.cupy()
        return True
    except backend.DeviceError:
        return False


needs_gpu = pytest.mark.skipif(not _gpu_available(), reason="needs CuPy and a CUDA GPU")


# ---- device names -----------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("cpu", CPU), ("CPU", CPU), (" cpu ", CPU),
    ("cuda", Device("cuda", 0)), ("cuda:0", Device("cuda", 0)), ("cuda:1", Device("cuda", 1)),
    ("CUDA:12", Device("cuda", 12)), (Device("cuda", 3), Device("cuda", 3)),
])
def test_parse_device(name, expected):
    assert backend.parse_device(name) == expected


@pytest.mark.parametrize("bad", ["gpu", "cuda:", "cuda:x", "cuda:-1", "cuda1", "", "tpu:0"])
def test_parse_device_rejects_bad_names(bad):
    with pytest.raises(mt.DeviceError, match=repr(bad).replace("(", r"\(")):
        backend.parse_device(bad)


@pytest.mark.parametrize("bad", [0, None, 1.5])
def test_parse_device_rejects_non_strings(bad):
    with pytest.raises(mt.DeviceError, match=repr(bad)):
        backend.parse_device(bad)


def test_device_names():
    assert str(CPU) == "cpu" and str(Device("cuda", 2)) == "cuda:2"
    assert mt.tensor([1.0]).device == CPU


def test_bad_device_names_raise_from_tensor_and_to():
    with pytest.raises(mt.DeviceError, match="'gpu'"):
        mt.tensor([1.0], device="gpu")
    with pytest.raises(mt.DeviceError, match="'gpu'"):
        mt.tensor([1.0]).to("gpu")


# ---- CuPy is optional -------------------------------------------------------------------

@pytest.fixture
def without_cupy(monkeypatch):
    """Make `import cupy` fail, as on a machine without it."""
    monkeypatch.setitem(sys.modules, "cupy", None)
    monkeypatch.setattr(backend, "_cupy", None)


@pytest.mark.parametrize("make", [
    lambda: mt.tensor([1.0, 2.0]).to("cuda"),
    lambda: mt.tensor([1.0, 2.0], device="cuda:0"),
    lambda: mt.zeros(2, 3, device="cuda"),
    lambda: mt.randn(2, device="cuda"),
])
def test_cuda_without_cupy_says_how_to_install_it(without_cupy, make):
    with pytest.raises(mt.DeviceError, match=r'pip install "\.\[cuda\]"'):
        make()


def test_cpu_works_without_cupy(without_cupy):
    x = mt.tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])
    assert x.to("cpu") is x


def _top_level_imports(tree):
    """Imported module names in statements that run at import time (not inside functions)."""
    names, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append(node.module or "")
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(node))
    return names


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_cupy_at_import_time(path):
    imports = _top_level_imports(ast.parse(path.read_text(encoding="utf-8")))
    assert not [n for n in imports if n.split(".")[0] in ("cupy", "cupyx")], imports


def test_every_module_imports_without_cupy():
    script = textwrap.dedent("""
        import importlib, pkgutil, sys
        sys.modules["cupy"] = None
        sys.modules["cupyx"] = None
        import minitf
        failed = []
        for info in pkgutil.walk_packages(minitf.__path__, "minitf."):
            try:
                importlib.import_module(info.name)
            except Exception as exc:
                failed.append(f"{info.name}: {exc!r}")
        print("\\n".join(failed))
        sys.exit(1 if failed else 0)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=PACKAGE.parent, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


# ---- array modules and device checks ----------------------------------------------------

def test_get_array_module_is_numpy_for_numpy_inputs():
    assert backend.get_array_module(np.ones(2)) is np
    assert backend.get_array_module(np.ones(2), 3.0, np.float32(1)) is np
    assert backend.get_array_module() is np
    assert not backend.is_cupy_array(np.ones(2))
    assert backend.device_of(np.ones(2)) == CPU


class _Elsewhere(np.ndarray):
    """A NumPy array that the patched `device_of` below places on cuda:1."""


@pytest.fixture
def fake_gpu_array(monkeypatch):
    real = backend.device_of
    monkeypatch.setattr(backend, "device_of",
                        lambda a: Device("cuda", 1) if isinstance(a, _Elsewhere) else real(a))
    return np.ones(3).view(_Elsewhere)


def test_check_same_device_names_both_devices(fake_gpu_array):
    backend.check_same_device("add", np.ones(3), np.zeros(2))  # all on the CPU: fine
    with pytest.raises(mt.DeviceError, match=r"add: .*\(cpu, cuda:1\).*\.to\("):
        backend.check_same_device("add", np.ones(3), fake_gpu_array)


@pytest.mark.parametrize("op", [
    lambda a, b: a + b,
    lambda a, b: a @ b,
    lambda a, b: mt.concat([a, b]),
    lambda a, b: mt.stack([a, b]),
    lambda a, b: a.masked_fill(b > 0, 0.0),
])
def test_ops_refuse_inputs_on_different_devices(fake_gpu_array, op):
    a = mt.tensor(np.ones(3))
    b = mt.Tensor.from_op(fake_gpu_array)
    with pytest.raises(mt.DeviceError, match=r"cpu, cuda:1"):
        op(a, b)


def test_to_device_on_the_cpu_does_not_copy():
    a = np.arange(3.0)
    assert backend.to_device(a, "cpu") is a
    x = mt.tensor(a)
    assert x.to("cpu") is x


def test_zeros_ones_randn_shapes(device):
    assert mt.zeros(2, 3, device=device).numpy().tolist() == [[0.0] * 3] * 2
    ones = mt.ones((2,), dtype=np.float64, device=device, requires_grad=True)
    assert ones.dtype == np.float64 and ones.requires_grad and ones.numpy().tolist() == [1.0, 1.0]
    assert mt.randn(5, device=device).dtype == np.float32


# ---- on a GPU ---------------------------------------------------------------------------

def _graph(x, w, mask):
    """A small graph touching most op families."""
    h = (x @ w).tanh() + x[:, :1].exp() * 0.5
    h = h.masked_fill(mask, 0.0)
    pieces = h.split(1, axis=1)
    out = mt.concat([pieces[-1], h.sigmoid()], axis=1).max(axis=0) + h.mean(axis=0).sum()
    return mt.where(out > 0, out, out * 0.1).sum()


def _run_graph(device):
    rng = np.random.default_rng(0)
    x = mt.tensor(rng.standard_normal((4, 3)), requires_grad=True, device=device)
    w = mt.tensor(rng.standard_normal((3, 2)), requires_grad=True, device=device)
    mask = mt.tensor(rng.random((4, 2)) < 0.3, device=device)
    loss = _graph(x, w, mask)
    loss.backward()
    return loss.item(), x.grad, w.grad, x, w


@needs_gpu
def test_numpy_and_cupy_agree():
    cp = backend.cupy()
    loss_cpu, gx_cpu, gw_cpu, _, _ = _run_graph("cpu")
    loss_gpu, gx_gpu, gw_gpu, x, w = _run_graph("cuda")
    assert isinstance(gx_gpu, cp.ndarray) and x.device == Device("cuda", 0)
    assert gx_gpu.dtype == x.dtype and gw_gpu.shape == w.shape
    np.testing.assert_allclose(loss_gpu, loss_cpu, rtol=1e-10)
    np.testing.assert_allclose(cp.asnumpy(gx_gpu), gx_cpu, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(cp.asnumpy(gw_gpu), gw_cpu, rtol=1e-9, atol=1e-12)


@needs_gpu
def test_moving_between_devices_carries_the_gradient_back():
    x = mt.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x.to("cuda")
    assert y.device == Device("cuda", 0) and backend.is_cupy_array(y.data)
    (y * y).sum().backward()
    assert isinstance(x.grad, np.ndarray)
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])
    with pytest.raises(mt.DeviceError, match="cpu, cuda:0"):
        x + y
    count = backend.cupy().cuda.runtime.getDeviceCount()
    with pytest.raises(mt.DeviceError, match="does not exist"):
        x.to(f"cuda:{count}")
