"""minitf.kernels: the fused CUDA kernels.

Without a GPU this checks what can be checked:
  * every CUDA source compiles with nvcc for float and double (skipped without nvcc);
  * the Python wrappers, run against a NumPy stand-in for CuPy whose "kernels" are
    NumPy emulations of the CUDA code, launch each kernel with the argument list its
    C signature declares (count, pointer dtypes, scalar types, launch shape) and give
    the results of minitf's NumPy ops -- so the wrappers' plumbing and the kernels'
    formulas (chunk and partial-sum layouts included) are verified;
  * importing minitf.kernels imports no CuPy; available() is False for NumPy arrays.
With CuPy and a GPU, TestOnGPU runs the real kernels against the NumPy path (float32 and
float64) and gradchecks them in float64.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import minitf
import minitf.functional as F
from minitf import backend, kernels
from minitf import rng as minitf_rng  # (rng names NumPy generators below)
from minitf.autograd import Tensor
from minitf.gradcheck import gradcheck
from minitf.kernels import source
from minitf.optim.adam import Adam, AdamW

from conftest import requires_cuda
from fake_gpu import LAUNCHES, SIGNATURES, TEMPLATES, FakeCupyArray

FLOATS = (np.float32, np.float64)


def _tol(dtype):
    return dict(rtol=2e-5, atol=2e-6) if np.dtype(dtype) == np.float32 else dict(rtol=1e-10, atol=1e-12)


# ---- import hygiene ---------------------------------------------------------------------------

def test_importing_kernels_does_not_import_cupy():
    code = textwrap.dedent("""
        import sys
        import minitf.kernels, minitf.kernels.ops, minitf.kernels.adam, minitf.kernels._compile, minitf.kernels.source
        import numpy as np
        assert minitf.kernels.available(np.zeros(3, np.float32)) is False
        print("cupy" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("value", [np.zeros((2, 3), np.float32), np.zeros(3), [1.0], 1.0, None,
                                   np.zeros(3, np.float16)])
def test_available_is_false_off_cupy(value):
    assert kernels.available(value) is False


def test_wrappers_reject_numpy_arrays():
    with pytest.raises(TypeError, match="CuPy"):
        kernels.softmax_forward(np.zeros((2, 3)))


# ---- nvcc compile check ---------------------------------------------------------------------------

def _translation_unit() -> str:
    """All modules, each in its own namespace, with every template instantiated for float and double."""
    parts = []
    for name, templates in TEMPLATES.items():
        instances = ", ".join(f"(void*)&{k}<{t}>" for k in templates for t in ("float", "double"))
        parts.append(f"namespace minitf_{name} {{\n{source.module_source(name)}\n"
                     f"void* instances[] = {{{instances}}};\n}}  // namespace minitf_{name}\n")
    return "\n".join(parts)


def test_sources_are_self_contained():
    """NVRTC (CuPy's compiler) gets no system headers: the sources must not #include anything."""
    for name in source.modules():
        assert "#include" not in source.module_source(name)
        for kernel in TEMPLATES[name]:
            assert re.search(rf"__global__ void {kernel}\(", source.read(f"{name}.cu")), kernel


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH")
def test_kernels_compile_with_nvcc(tmp_path):
    src = tmp_path / "minitf_kernels.cu"
    src.write_text(_translation_unit())
    ptx = tmp_path / "minitf_kernels.ptx"
    result = subprocess.run(["nvcc", "-std=c++14", "-ptx", "-Werror", "all-warnings", str(src), "-o", str(ptx)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    entries = re.findall(r"\.entry\s+(\w+)", ptx.read_text())
    expected = sum(2 * len(t) for t in TEMPLATES.values())
    assert len(entries) == expected, entries
    for templates in TEMPLATES.values():
        for k in templates:  # Itanium mangling: <len><name>I{f,d}E
            for code in "fd":
                assert any(f"{len(k)}{k}I{code}E" in e for e in entries), (k, code)


def _host(a):
    return None if a is None else np.asarray(a).view(np.ndarray)


def test_signatures_parsed():
    assert SIGNATURES["softmax_fwd"] == [("T", True), ("T", True), ("long long", False)]
    assert set(SIGNATURES) == {k for t in TEMPLATES.values() for k in t}


def _run_op(fn, xs, g):
    """Value and input gradients of a minitf op on NumPy float arrays, for cotangent g."""
    ts = [None if x is None else Tensor(x, requires_grad=True) for x in xs]
    out = fn(*ts)
    out.backward(g)
    return out.data, [None if t is None else t.grad for t in ts]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(3, 5), (2, 3, 7), (1, 1), (4, 70)])
def test_emulated_softmax_and_log_softmax(fake_gpu, dtype, shape):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    for fwd, bwd, op in ((kernels.softmax_forward, kernels.softmax_backward, F.softmax),
                         (kernels.log_softmax_forward, kernels.log_softmax_backward, F.log_softmax)):
        ref_y, (ref_gx,) = _run_op(op, [x], g)
        y = fwd(fake_gpu(x))
        gx = bwd(y, fake_gpu(g))
        assert isinstance(y, FakeCupyArray) and y.shape == shape and y.dtype == dtype
        np.testing.assert_allclose(_host(y), ref_y, **_tol(dtype))
        np.testing.assert_allclose(_host(gx), ref_gx, **_tol(dtype))
    assert LAUNCHES == ["softmax_fwd", "softmax_bwd", "log_softmax_fwd", "log_softmax_bwd"]


def test_emulated_log_softmax_of_infinite_rows(fake_gpu):
    x = np.array([[-np.inf, -np.inf], [np.inf, 0.0], [1.0, -np.inf]])
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = F.log_softmax(Tensor(x)).data
        y = kernels.log_softmax_forward(fake_gpu(x))
    np.testing.assert_array_equal(_host(y), ref)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_emulated_cross_entropy(fake_gpu, dtype, smoothing, reduction):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((2, 3, 6)) * 2).astype(dtype)
    t = rng.integers(0, 6, (2, 3))
    t[0, 1] = t[1, 2] = -100
    logits = Tensor(x, requires_grad=True)
    ref = F.cross_entropy(logits, t, label_smoothing=smoothing, reduction=reduction)
    g = rng.standard_normal(ref.shape).astype(dtype)
    ref.backward(g)
    loss, lse = kernels.cross_entropy_forward(fake_gpu(x), fake_gpu(t), -100, smoothing)
    assert loss.shape == lse.shape == (2, 3) and loss.dtype == dtype
    per_row = F.cross_entropy(Tensor(x), t, label_smoothing=smoothing, reduction="none").data
    np.testing.assert_allclose(_host(loss), per_row, **_tol(dtype))
    assert _host(loss)[0, 1] == 0 and _host(loss)[1, 2] == 0
    count = int((t != -100).sum())
    scale = {"none": fake_gpu(g), "sum": fake_gpu(g), "mean": fake_gpu(g / count)}[reduction]
    gx = kernels.cross_entropy_backward(fake_gpu(x), fake_gpu(t), lse, scale, -100, smoothing)
    np.testing.assert_allclose(_host(gx), logits.grad, **_tol(dtype))
    np.testing.assert_array_equal(_host(gx)[0, 1], 0)


def test_emulated_cross_entropy_scalar_scale_and_bad_target(fake_gpu):
    x = np.arange(12.0).reshape(3, 4)
    t = np.array([1, 7, -1])
    loss, lse = kernels.cross_entropy_forward(fake_gpu(x), fake_gpu(t), ignore_index=-1)
    assert np.isnan(_host(loss)[1]) and _host(loss)[2] == 0
    gx = kernels.cross_entropy_backward(fake_gpu(x), fake_gpu(t), lse, 0.5, ignore_index=-1)
    p = np.exp(x[0] - _host(lse)[0])
    np.testing.assert_allclose(_host(gx)[0], 0.5 * (p - np.eye(4)[1]))
    with pytest.raises(ValueError, match="scale_rows"):
        kernels.cross_entropy_backward(fake_gpu(x), fake_gpu(t), lse, fake_gpu(np.ones(2)), ignore_index=-1)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("affine", [(True, True), (True, False), (False, True), (False, False)])
@pytest.mark.parametrize("shape", [(3, 8), (2, 5, 33), (70, 40)])
def test_emulated_layer_norm(fake_gpu, dtype, affine, shape):
    rng = np.random.default_rng(2)
    d = shape[-1]
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    w = rng.standard_normal(d).astype(dtype) if affine[0] else None
    b = rng.standard_normal(d).astype(dtype) if affine[1] else None
    g = rng.standard_normal(shape).astype(dtype)
    ref_y, (ref_gx, ref_gw, ref_gb) = _run_op(lambda x_, w_, b_: F.layer_norm(x_, w_, b_), [x, w, b], g)
    dev = [None if a is None else fake_gpu(a) for a in (x, w, b)]
    y, mean, rstd = kernels.layer_norm_forward(*dev, eps=1e-5)
    assert mean.shape == rstd.shape == shape[:-1]
    np.testing.assert_allclose(_host(y), ref_y, **_tol(dtype))
    gx, gw, gb = kernels.layer_norm_backward(dev[0], fake_gpu(g), dev[1], mean, rstd, has_bias=b is not None)
    np.testing.assert_allclose(_host(gx), ref_gx, **_tol(dtype))
    for got, want in ((gw, ref_gw), (gb, ref_gb)):
        assert (got is None) == (want is None)
        if want is not None:
            np.testing.assert_allclose(_host(got), want, rtol=_tol(dtype)["rtol"] * 10, atol=_tol(dtype)["atol"] * 10)
    gx2, _, _ = kernels.layer_norm_backward(dev[0], fake_gpu(g), dev[1], mean, rstd, need_gx=False)
    assert gx2 is None


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_emulated_gelu(fake_gpu, dtype, approximate):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((4, 9)) * 3).astype(dtype)
    g = rng.standard_normal((4, 9)).astype(dtype)
    ref_y, (ref_gx,) = _run_op(lambda t: F.gelu(t, approximate), [x], g)
    y = kernels.gelu_forward(fake_gpu(x), approximate)
    gx = kernels.gelu_backward(fake_gpu(x), fake_gpu(g), approximate)
    tol = dict(rtol=2e-6, atol=2e-6) if dtype == np.float32 else _tol(dtype)  # NumPy's float32 erf is A&S 7.1.26
    np.testing.assert_allclose(_host(y), ref_y, **tol)
    np.testing.assert_allclose(_host(gx), ref_gx, **tol)
    with pytest.raises(ValueError, match="approximate"):
        kernels.gelu_forward(fake_gpu(x), "fast")


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_emulated_dropout(fake_gpu, dtype, p):
    x = np.random.default_rng(4).standard_normal((50, 40)).astype(dtype)
    minitf_rng.manual_seed(7)
    y, mask = kernels.dropout_forward(fake_gpu(x), p)
    assert y.dtype == mask.dtype == dtype and y.shape == x.shape
    if 0 < p < 1:  # the same draws as minitf's dropout_mask on this backend give the same mask
        minitf_rng.manual_seed(7)
        ref_mask = minitf_rng.dropout_mask(sys.modules["cupy"], x.shape, p, dtype)
        np.testing.assert_array_equal(_host(mask), _host(ref_mask))
        assert set(np.unique(_host(mask))) == {dtype(0), dtype(1 / (1 - p))}
        assert abs((_host(mask) == 0).mean() - p) < 0.05
    else:
        np.testing.assert_array_equal(_host(mask), np.full(x.shape, 1 - p, dtype))
    np.testing.assert_array_equal(_host(y), x * _host(mask))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("opt_cls,wd", [(Adam, 0.0), (Adam, 0.1), (AdamW, 0.01)])
@pytest.mark.parametrize("multi", [False, True])
def test_emulated_adam(fake_gpu, dtype, opt_cls, wd, multi):
    rng = np.random.default_rng(5)
    shapes = [(3, 4), (5,), (2, 3, 2), (0,)]
    init = [rng.standard_normal(s).astype(dtype) for s in shapes]
    params = [Tensor(a.copy(), requires_grad=True) for a in init]
    opt = opt_cls(params, lr=0.05, betas=(0.8, 0.95), eps=1e-6, weight_decay=wd)
    dev_p = [fake_gpu(a.copy()) for a in init]
    dev_m = [fake_gpu(np.zeros_like(a)) for a in init]
    dev_v = [fake_gpu(np.zeros_like(a)) for a in init]
    for step in range(1, 4):
        grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
        for p, g in zip(params, grads):
            p.grad = g
        opt.step()
        if multi:
            kernels.adam_update_multi(dev_p, [fake_gpu(g) for g in grads], dev_m, dev_v, 0.05, 0.8, 0.95, 1e-6,
                                      step, wd, opt_cls is AdamW, chunk_size=5)
        else:
            for p, g, m, v in zip(dev_p, grads, dev_m, dev_v):
                kernels.adam_update(p, fake_gpu(g), m, v, 0.05, 0.8, 0.95, 1e-6, step, wd, opt_cls is AdamW)
        for i, p in enumerate(params):
            np.testing.assert_allclose(_host(dev_p[i]), p.data, **_tol(dtype))
            np.testing.assert_allclose(_host(dev_m[i]), opt.m[i], **_tol(dtype))
            np.testing.assert_allclose(_host(dev_v[i]), opt.v[i], **_tol(dtype))
    assert set(LAUNCHES) == {"adam_step_multi" if multi else "adam_step"}
    if multi:
        assert len(LAUNCHES) == 3  # one launch per step for all parameters


def test_emulated_adam_multi_groups_dtypes(fake_gpu):
    ps = [fake_gpu(np.ones(3, np.float32)), fake_gpu(np.ones(4, np.float64))]
    ms = [fake_gpu(np.zeros_like(p)) for p in ps]
    vs = [fake_gpu(np.zeros_like(p)) for p in ps]
    kernels.adam_update_multi(ps, [fake_gpu(np.ones_like(p)) for p in ps], ms, vs, 0.1, 0.9, 0.999, 1e-8, 1)
    assert LAUNCHES == ["adam_step_multi", "adam_step_multi"]
    for p in ps:  # first step of Adam moves every element by lr (g = 1)
        np.testing.assert_allclose(_host(p), 0.9, rtol=1e-6)
    with pytest.raises(ValueError, match="in place"):
        kernels.adam_update(ps[0], ps[0], fake_gpu(np.zeros(3)), vs[0], 0.1, 0.9, 0.999, 1e-8, 1)


def test_emulated_empty_inputs_launch_nothing(fake_gpu):
    e = fake_gpu(np.zeros((0, 4), np.float32))
    assert kernels.softmax_forward(e).shape == (0, 4)
    assert kernels.gelu_forward(e).shape == (0, 4)
    y, mean, rstd = kernels.layer_norm_forward(e)
    assert y.shape == (0, 4) and mean.shape == (0,)
    assert LAUNCHES == []


def test_emulated_zero_dim_elementwise(fake_gpu):
    x = fake_gpu(np.array(0.5))
    assert float(kernels.gelu_forward(x, "tanh")) == pytest.approx(F.gelu(Tensor(0.5), "tanh").item())
    p, m, v = fake_gpu(np.array(1.0)), fake_gpu(np.array(0.0)), fake_gpu(np.array(0.0))
    kernels.adam_update(p, fake_gpu(np.array(2.0)), m, v, 0.1, 0.9, 0.999, 1e-8, 1)
    assert float(p) == pytest.approx(0.9)
    with pytest.raises(ValueError, match="one axis"):
        kernels.softmax_forward(x)


# ---- the real kernels on a GPU ------------------------------------------------------------------------

def _cp():
    return backend.cupy()


def _kernel_ops():
    """minitf ops built on the kernels (as the dispatch would), for gradchecks on CuPy."""
    def softmax(x):
        y = kernels.softmax_forward(x.data)
        return Tensor.from_op(y, (x,), lambda g: (kernels.softmax_backward(y, g),))

    def log_softmax(x):
        y = kernels.log_softmax_forward(x.data)
        return Tensor.from_op(y, (x,), lambda g: (kernels.log_softmax_backward(y, g),))

    def layer_norm(x, w, b):
        y, mean, rstd = kernels.layer_norm_forward(x.data, w.data, b.data, 1e-5)

        def backward(g):
            return kernels.layer_norm_backward(x.data, g, w.data, mean, rstd, has_bias=True)
        return Tensor.from_op(y, (x, w, b), backward)

    def gelu(approximate):
        def op(x):
            return Tensor.from_op(kernels.gelu_forward(x.data, approximate), (x,),
                                  lambda g: (kernels.gelu_backward(x.data, g, approximate),))
        return op

    def cross_entropy(x, t, s):
        loss, lse = kernels.cross_entropy_forward(x.data, t, -100, s)
        return Tensor.from_op(loss, (x,), lambda g: (kernels.cross_entropy_backward(x.data, t, lse, g, -100, s),))

    return dict(softmax=softmax, log_softmax=log_softmax, layer_norm=layer_norm, gelu=gelu,
                cross_entropy=cross_entropy)


class _KernelChecks:
    """Kernels against minitf's NumPy path; run on a GPU (TestOnGPU) and on the emulation."""

    @pytest.mark.parametrize("dtype", FLOATS)
    @pytest.mark.parametrize("cols", [1, 7, 32, 100, 1000, 5000, 40000])
    def test_rowwise_match_numpy(self, dtype, cols):
        cp = _cp()
        rng = np.random.default_rng(cols)
        x = (rng.standard_normal((6, cols)) * 3).astype(dtype)
        g = rng.standard_normal((6, cols)).astype(dtype)
        tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-11)
        for fwd, bwd, op in ((kernels.softmax_forward, kernels.softmax_backward, F.softmax),
                             (kernels.log_softmax_forward, kernels.log_softmax_backward, F.log_softmax)):
            ref_y, (ref_gx,) = _run_op(op, [x], g)
            y = fwd(cp.asarray(x))
            np.testing.assert_allclose(cp.asnumpy(y), ref_y, **tol)
            np.testing.assert_allclose(cp.asnumpy(bwd(y, cp.asarray(g))), ref_gx, **tol)
        w = rng.standard_normal(cols).astype(dtype)
        b = rng.standard_normal(cols).astype(dtype)
        ref_y, (ref_gx, ref_gw, ref_gb) = _run_op(F.layer_norm, [x, w, b], g)
        y, mean, rstd = kernels.layer_norm_forward(cp.asarray(x), cp.asarray(w), cp.asarray(b))
        gx, gw, gb = kernels.layer_norm_backward(cp.asarray(x), cp.asarray(g), cp.asarray(w), mean, rstd)
        ln_tol = dict(rtol=1e-3, atol=1e-4) if dtype == np.float32 else tol
        for got, want in ((y, ref_y), (gx, ref_gx), (gw, ref_gw), (gb, ref_gb)):
            np.testing.assert_allclose(cp.asnumpy(got), want, **ln_tol)

    @pytest.mark.parametrize("dtype", FLOATS)
    @pytest.mark.parametrize("smoothing", [0.0, 0.2])
    def test_cross_entropy_matches_numpy(self, dtype, smoothing):
        cp = _cp()
        rng = np.random.default_rng(0)
        x = (rng.standard_normal((37, 1001)) * 4).astype(dtype)
        t = rng.integers(0, 1001, 37)
        t[::5] = -100
        logits = Tensor(x, requires_grad=True)
        ref = F.cross_entropy(logits, t, label_smoothing=smoothing)
        ref.backward()
        loss, lse = kernels.cross_entropy_forward(cp.asarray(x), cp.asarray(t), -100, smoothing)
        count = int((t != -100).sum())
        tol = dict(rtol=1e-4, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(float(loss.sum()) / count, ref.item(), **tol)
        gx = kernels.cross_entropy_backward(cp.asarray(x), cp.asarray(t), lse, cp.asarray(1.0 / count, dtype), -100,
                                            smoothing)
        np.testing.assert_allclose(cp.asnumpy(gx), logits.grad, **tol)

    @pytest.mark.parametrize("dtype", FLOATS)
    @pytest.mark.parametrize("approximate", ["none", "tanh"])
    def test_gelu_and_dropout_match_numpy(self, dtype, approximate):
        cp = _cp()
        rng = np.random.default_rng(1)
        x = (rng.standard_normal((300, 257)) * 3).astype(dtype)
        g = rng.standard_normal(x.shape).astype(dtype)
        ref_y, (ref_gx,) = _run_op(lambda t: F.gelu(t, approximate), [x], g)
        tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(cp.asnumpy(kernels.gelu_forward(cp.asarray(x), approximate)), ref_y, **tol)
        np.testing.assert_allclose(cp.asnumpy(kernels.gelu_backward(cp.asarray(x), cp.asarray(g), approximate)),
                                   ref_gx, **tol)
        minitf.manual_seed(3)
        y, mask = kernels.dropout_forward(cp.asarray(x), 0.25)
        minitf.manual_seed(3)
        ref_mask = minitf_rng.dropout_mask(cp, x.shape, 0.25, dtype)
        cp.testing.assert_array_equal(mask, ref_mask)
        cp.testing.assert_array_equal(y, cp.asarray(x) * mask)

    @pytest.mark.parametrize("dtype", FLOATS)
    @pytest.mark.parametrize("opt_cls,wd", [(Adam, 0.0), (Adam, 0.1), (AdamW, 0.01)])
    def test_adam_matches_optimizer(self, dtype, opt_cls, wd):
        cp = _cp()
        rng = np.random.default_rng(2)
        shapes = [(300, 70), (70,), (3, 5, 7), (1,)]
        init = [rng.standard_normal(s).astype(dtype) for s in shapes]
        params = [Tensor(a.copy(), requires_grad=True) for a in init]
        opt = opt_cls(params, lr=0.01, weight_decay=wd)
        def fresh():  # [params, ms, vs] on the GPU
            return [[cp.asarray(a) for a in init], [cp.zeros(a.shape, dtype) for a in init],
                    [cp.zeros(a.shape, dtype) for a in init]]

        single, multi = fresh(), fresh()
        tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
        for step in range(1, 5):
            grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
            for p, g in zip(params, grads):
                p.grad = g
            opt.step()
            for p, g, m, v in zip(single[0], grads, single[1], single[2]):
                kernels.adam_update(p, cp.asarray(g), m, v, 0.01, 0.9, 0.999, 1e-8, step, wd, opt_cls is AdamW)
            kernels.adam_update_multi(multi[0], [cp.asarray(g) for g in grads], multi[1], multi[2], 0.01, 0.9, 0.999,
                                      1e-8, step, wd, opt_cls is AdamW, chunk_size=1000)
            for i, p in enumerate(params):
                np.testing.assert_allclose(cp.asnumpy(single[0][i]), p.data, **tol)
                np.testing.assert_allclose(cp.asnumpy(multi[0][i]), p.data, **tol)
                np.testing.assert_allclose(cp.asnumpy(multi[2][i]), opt.v[i], **tol)

    def test_gradchecks_through_kernels(self):
        cp = _cp()
        k = _kernel_ops()
        rng = np.random.default_rng(4)

        def leaf(*shape):
            return Tensor(cp.asarray(rng.standard_normal(shape)), requires_grad=True)

        gradcheck(k["softmax"], [leaf(3, 6)])
        gradcheck(k["log_softmax"], [leaf(2, 3, 5)])
        gradcheck(k["layer_norm"], [leaf(4, 6), leaf(6), leaf(6)])
        gradcheck(k["gelu"]("none"), [leaf(3, 4)])
        gradcheck(k["gelu"]("tanh"), [leaf(3, 4)])
        t = cp.asarray(np.array([1, -100, 4, 0]))
        for s in (0.0, 0.1):
            gradcheck(lambda x: k["cross_entropy"](x, t, s), [leaf(4, 5)])


@requires_cuda
class TestOnGPU(_KernelChecks):
    """The real kernels, compiled by CuPy, on a CUDA GPU."""

    def test_tf32_switch(self):
        cp = _cp()
        before = kernels.tf32_enabled()
        try:
            on = kernels.set_tf32(True)
            assert on == (int(cp.cuda.Device().compute_capability) >= 80)
            assert kernels.set_tf32(False) is False and not kernels.tf32_enabled()
        finally:
            kernels.set_tf32(before)
            os.environ.pop("CUPY_TF32", None)


@pytest.mark.usefixtures("fake_gpu")
class TestOnEmulatedGPU(_KernelChecks):
    """The same checks on the NumPy emulation: validates the tests and the kernels' math without a GPU."""
