"""A NumPy stand-in for CuPy whose "kernels" are NumPy emulations of minitf's CUDA code.

The `fake_gpu` fixture (registered in conftest.py for every test) puts it in place of CuPy: host
arrays pose as device arrays (FakeCupyArray), and each kernel launch is checked against the argument
list its C signature declares (count, pointer dtypes, scalar types, launch shape), recorded in
LAUNCHES, and computed by `_emulate` the way the CUDA code computes it.
"""
from __future__ import annotations

import contextlib
import ctypes
import re
import sys
import types

import numpy as np
import pytest

from minitf import backend, rng as minitf_rng  # (rng names NumPy generators below)
from minitf.kernels import adam as kernels_adam, ops, source

# module -> its kernel templates, as parsed from cuda/<module>.cu
TEMPLATES = {m: source.kernel_names(m) for m in source.modules()}


# ---- a NumPy stand-in for CuPy, with the kernels emulated in NumPy ----------------------------------

class FakeCupyArray(np.ndarray):
    """A host array that passes for a CuPy array (`.data.ptr` is its address)."""

    @property
    def data(self):  # noqa: D401 (CuPy: a MemoryPointer)
        return types.SimpleNamespace(ptr=self.__array_interface__["data"][0])

    @property
    def device(self):
        return types.SimpleNamespace(id=0)

    def get(self):  # CuPy: copy to the host
        return np.array(self).view(np.ndarray)


def _fake(fn):
    def wrapped(*args, **kwargs):
        out = fn(*args, **kwargs)
        return out.view(FakeCupyArray) if isinstance(out, np.ndarray) else out
    return wrapped


class FakeRandomState:
    def __init__(self, seed):
        self._rng = np.random.default_rng(seed)

    def seed(self, seed):
        self._rng = np.random.default_rng(seed)

    def random_sample(self, shape, dtype=np.float64):
        return self._rng.random(shape, dtype=dtype).view(FakeCupyArray)


class _FakeDevice(contextlib.nullcontext):
    def __init__(self, index=0):
        super().__init__()
        self.id = index


def _fake_cupy() -> types.ModuleType:
    cp = types.ModuleType("cupy")
    for name in ("empty", "empty_like", "zeros", "zeros_like", "ones_like", "ascontiguousarray", "full"):
        setattr(cp, name, _fake(getattr(np, name)))

    def asarray(a, dtype=None):  # a host array is copied, as to a device
        if isinstance(a, FakeCupyArray):
            return np.asarray(a, dtype=dtype).view(FakeCupyArray)
        return np.array(a, dtype=dtype).view(FakeCupyArray)
    cp.asarray = asarray
    cp.ndarray = FakeCupyArray
    cp.int64, cp.float32, cp.float64 = np.int64, np.float32, np.float64
    cp.asnumpy = lambda a: np.array(a).view(np.ndarray)
    cp.testing = types.SimpleNamespace(assert_array_equal=np.testing.assert_array_equal)
    cp.cuda = types.SimpleNamespace(Device=_FakeDevice, runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))

    def fallback(name):  # anything else: NumPy's, returning fake device arrays
        obj = getattr(np, name)
        return _fake(obj) if callable(obj) and not isinstance(obj, type) else obj
    cp.__getattr__ = fallback
    cp.random = types.SimpleNamespace(RandomState=FakeRandomState)
    return cp


def _signatures() -> dict[str, list[tuple[str, bool]]]:
    """kernel name -> [(C type of the parameter, is pointer)], parsed from the CUDA source."""
    sigs = {}
    for src in (source.read(f"{m}.cu") for m in source.modules()):
        for name, params in re.findall(r"__global__ void (\w+)\((.*?)\)\s*\{", src, flags=re.S):
            parsed = []
            for p in params.split(","):
                words = p.replace("*", " * ").replace("__restrict__", "").replace("const", "").split()
                is_ptr = "*" in words
                parsed.append((" ".join(w for w in words[:-1] if w != "*"), is_ptr))
            sigs[name] = parsed
    return sigs


SIGNATURES = _signatures()
LAUNCHES: list[str] = []


def _rows_of(a, cols):
    return np.asarray(a).reshape(-1, int(cols))


def _emulate(kernel, grid, block, T, args):
    """Run `kernel` the way the CUDA code computes it, in NumPy, writing into the output arrays."""
    one, zero = T.type(1), T.type(0)
    if kernel == "softmax_fwd":
        x, y, cols = args
        X = _rows_of(x, cols)
        assert grid == (X.shape[0],)
        e = np.exp(X - X.max(axis=1, keepdims=True))
        _rows_of(y, cols)[...] = e / e.sum(axis=1, keepdims=True)
    elif kernel == "softmax_bwd":
        y, g, gx, cols = args
        Y, G = _rows_of(y, cols), _rows_of(g, cols)
        _rows_of(gx, cols)[...] = Y * (G - (G * Y).sum(axis=1, keepdims=True))
    elif kernel in ("log_softmax_fwd", "cross_entropy_fwd"):
        x, cols = args[0], args[4 if kernel == "cross_entropy_fwd" else 2]
        X = _rows_of(x, cols)
        assert grid == (X.shape[0],)
        m = X.max(axis=1)
        m = np.where(np.isfinite(m), m, zero)
        with np.errstate(divide="ignore"):
            lse = m + np.log(np.exp(X - m[:, None]).sum(axis=1))
        if kernel == "log_softmax_fwd":
            _rows_of(args[1], cols)[...] = X - lse[:, None]
        else:
            _, t, loss, lse_out, cols, ignore, s, oms = args
            t = np.asarray(t).reshape(-1)
            lse_out.reshape(-1)[...] = lse
            safe = np.clip(t, 0, X.shape[1] - 1)
            out = lse - oms * X[np.arange(len(t)), safe]
            if s != zero:
                out = out - s * (X.sum(axis=1) / T.type(cols))
            out = np.where((t < 0) | (t >= cols), T.type(np.nan), out)
            loss.reshape(-1)[...] = np.where(t == ignore, zero, out)
    elif kernel == "log_softmax_bwd":
        y, g, gx, cols = args
        Y, G = _rows_of(y, cols), _rows_of(g, cols)
        _rows_of(gx, cols)[...] = G - np.exp(Y) * G.sum(axis=1, keepdims=True)
    elif kernel == "cross_entropy_bwd":
        x, t, lse, scale, stride, gx, n, cols, ignore, oms, soc = args
        X = _rows_of(x, cols)
        assert n == X.size
        t = np.asarray(t).reshape(-1)
        r = np.arange(X.shape[0])
        out = np.exp(X - np.asarray(lse).reshape(-1)[:, None])
        if soc != zero:
            out = out - soc
        hit = np.arange(X.shape[1])[None, :] == t[:, None]
        out = np.where(hit, out - oms, out) * np.asarray(scale).reshape(-1)[r * stride][:, None]
        _rows_of(gx, cols)[...] = np.where((t == ignore)[:, None], zero, out)
    elif kernel == "layer_norm_fwd":
        x, w, b, y, mean, rstd, cols, eps, has_w, has_b = args
        X = _rows_of(x, cols)
        assert grid == (X.shape[0],)
        mu = X.sum(axis=1) / T.type(cols)
        var = ((X - mu[:, None]) ** 2).sum(axis=1) / T.type(cols)
        r = one / np.sqrt(var + eps)
        out = (X - mu[:, None]) * r[:, None]
        if has_w:
            out = out * np.asarray(w)
        if has_b:
            out = out + np.asarray(b)
        _rows_of(y, cols)[...] = out
        mean.reshape(-1)[...] = mu
        rstd.reshape(-1)[...] = r
    elif kernel == "layer_norm_bwd":
        x, g, w, mean, rstd, gx, cols, has_w = args
        X, G = _rows_of(x, cols), _rows_of(g, cols)
        mu, r = np.asarray(mean)[:, None], np.asarray(rstd)[:, None]
        gh = G * np.asarray(w) if has_w else G
        xh = (X - mu) * r
        m1 = gh.sum(axis=1, keepdims=True) / T.type(cols)
        m2 = (gh * xh).sum(axis=1, keepdims=True) / T.type(cols)
        _rows_of(gx, cols)[...] = r * (gh - m1 - xh * m2)
    elif kernel == "layer_norm_bwd_params":
        x, g, mean, rstd, part_w, part_b, rows, cols, want_w, want_b = args
        assert block == (32, 8) and grid[0] == (cols + 31) // 32
        X, G = _rows_of(x, cols), _rows_of(g, cols)
        xh = (X - np.asarray(mean)[:, None]) * np.asarray(rstd)[:, None]
        owner = (np.arange(rows) // 8) % grid[1]  # row r is summed by block y = (r // 8) mod gridDim.y
        for by in range(grid[1]):
            sel = owner == by
            if want_w:
                part_w[by] = (G[sel] * xh[sel]).sum(axis=0)
            if want_b:
                part_b[by] = G[sel].sum(axis=0)
    elif kernel in ("gelu_fwd", "gelu_bwd"):
        x = np.asarray(args[0])
        tanh_mode = args[-1]
        c = T.type(np.sqrt(2 / np.pi))
        if tanh_mode:
            th = np.tanh(c * (x + T.type(0.044715) * (x * x * x)))
            y = T.type(0.5) * x * (one + th)
            d = T.type(0.5) * (one + th) + T.type(0.5) * x * (one - th * th) * (
                c * (one + T.type(3 * 0.044715) * x * x))
        else:
            erf = np.vectorize(__import__("math").erf, otypes=[np.float64])
            cdf = (T.type(0.5) * (one + erf(x * T.type(1 / np.sqrt(2))))).astype(T)
            y = x * cdf
            d = cdf + x * (np.exp(T.type(-0.5) * x * x) * T.type(1 / np.sqrt(2 * np.pi)))
        if kernel == "gelu_fwd":
            args[1][...] = y
        else:
            args[2][...] = np.asarray(args[1]) * d
    elif kernel == "dropout_fwd":
        x, u, y, mask, n, p, scale = args
        mk = np.where(np.asarray(u) >= p, scale, zero)
        mask[...] = mk
        y[...] = np.asarray(x) * mk
    elif kernel in ("adam_step", "adam_step_multi"):
        b1, omb1, b2, omb2, eps, step_size, inv_bias2, wd, decay, mode = args[-10:]

        def update(p, g, m, v):
            if mode == 2:
                p *= decay
            elif mode == 1:
                g = g + wd * p
            m[...] = m * b1 + g * omb1
            v[...] = v * b2 + (g * g) * omb2
            p -= (m / (np.sqrt(v) * inv_bias2 + eps)) * step_size

        if kernel == "adam_step":
            p, g, m, v, n = args[:5]
            update(p, np.asarray(g), m, v)
        else:
            table, n_tensors, chunk = (np.asarray(args[0]), int(args[1]), int(args[2]))
            sizes = table[4 * n_tensors:5 * n_tensors]
            chunks = table[5 * n_tensors:].reshape(-1, 2)
            assert grid == (len(chunks),)
            ctype = ctypes.c_float if T == np.float32 else ctypes.c_double
            for k, start in chunks:
                size = int(sizes[k])
                arrays = [np.ctypeslib.as_array((ctype * size).from_address(int(table[4 * k + j])))
                          for j in range(4)]
                end = min(int(start) + chunk, size)
                update(*(a[int(start):end] for a in arrays))
    else:
        raise AssertionError(f"no emulation of {kernel}")


def _fake_get_kernel(module, kernel, dtype):
    assert kernel in TEMPLATES[module], (module, kernel)
    T = np.dtype(dtype)
    sig = SIGNATURES[kernel]

    def launch(grid, block, args):
        assert isinstance(grid, tuple) and isinstance(block, tuple) and isinstance(args, tuple)
        assert all(isinstance(d, int) and d >= 1 for d in grid + block), (grid, block)
        threads = int(np.prod(block))
        assert threads <= 1024 and threads % 32 == 0, block
        assert len(args) == len(sig), (kernel, len(args), sig)
        for i, (a, (ctype, is_ptr)) in enumerate(zip(args, sig)):
            where = f"{kernel} argument {i} ({ctype}{'*' if is_ptr else ''})"
            if is_ptr:
                assert isinstance(a, FakeCupyArray) and a.flags.c_contiguous, where
                assert a.dtype == {"T": T, "long long": np.dtype(np.int64)}[ctype], (where, a.dtype)
            else:
                want = {"T": T.type, "long long": np.int64, "int": np.int32}[ctype]
                assert type(a) is want, (where, type(a))
        LAUNCHES.append(kernel)
        _emulate(kernel, grid, block, T, args)

    return launch


@pytest.fixture
def fake_gpu(monkeypatch):
    """Run minitf.kernels on host arrays posing as CuPy arrays, kernels emulated in NumPy."""
    cp = _fake_cupy()
    monkeypatch.setitem(sys.modules, "cupy", cp)
    monkeypatch.setitem(sys.modules, "cupyx", types.SimpleNamespace(scatter_add=np.add.at))
    monkeypatch.setattr(backend, "_cupy", cp)
    monkeypatch.setattr(minitf_rng, "_generators", {})
    monkeypatch.setattr(ops, "get_kernel", _fake_get_kernel)
    monkeypatch.setattr(kernels_adam, "get_kernel", _fake_get_kernel)
    LAUNCHES.clear()

    def to_dev(a):
        return np.asarray(a, order="C").view(FakeCupyArray)

    return to_dev
