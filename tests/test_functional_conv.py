"""Convolution, pooling and batch/group norm against NumPy float64 loops and finite differences.

Each op has a hypothesis strategy drawing one `Case` (see test_functional.py): small odd
sizes with stride, padding, dilation, groups and ceil_mode combinations. The references
below are written with plain loops over output positions, independent of the strided
views and scatter loops of minitf.functional.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minitf.functional as F
from minitf import Tensor, backend, gradcheck
from minitf.cpu import blocking
from minitf.functional import conv
from minitf.testing import arrays

from conftest import requires_cuda
from test_functional import Case, float_arrays

# ---- NumPy float64 references (loops) ---------------------------------------------------------


def out_len(size, k, s, d, pad_total, ceil=False):
    span = size + pad_total - d * (k - 1) - 1
    return (-(-span // s) if ceil else span // s) + 1


def same_pads(kernel, dilation):
    total = [d * (k - 1) for k, d in zip(kernel, dilation)]
    return (total[0] // 2, total[0] - total[0] // 2, total[1] // 2, total[1] - total[1] // 2)


def ref_conv2d(x, w, b=None, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    xpad = np.pad(x, ((0, 0), (0, 0), pads[:2], pads[2:]))
    o, cg, kh, kw = w.shape
    oh = out_len(xpad.shape[2], kh, stride[0], dilation[0], 0)
    ow = out_len(xpad.shape[3], kw, stride[1], dilation[1], 0)
    out = np.zeros((x.shape[0], o, oh, ow))
    for c in range(o):
        group = c // (o // groups)
        for i in range(oh):
            for j in range(ow):
                r, q = i * stride[0], j * stride[1]
                patch = xpad[:, group * cg:(group + 1) * cg, r:r + dilation[0] * (kh - 1) + 1:dilation[0],
                             q:q + dilation[1] * (kw - 1) + 1:dilation[1]]
                out[:, c, i, j] = (patch * w[c]).sum(axis=(1, 2, 3))
    return out if b is None else out + b[:, None, None]


def ref_conv_transpose2d(x, w, b=None, stride=(1, 1), padding=(0, 0), output_padding=(0, 0), groups=1,
                         dilation=(1, 1)):
    """Each input element scatters x * w[c] onto the output, which is then cropped by the padding."""
    n, c, h, wd = x.shape
    og, kh, kw = w.shape[1:]
    size = [(s - 1) * st_ - 2 * p + d * (k - 1) + e + 1 for s, st_, p, d, k, e
            in zip((h, wd), stride, padding, dilation, (kh, kw), output_padding)]
    full = np.zeros((n, og * groups, size[0] + 2 * padding[0], size[1] + 2 * padding[1]))
    for ci in range(c):
        group = ci // (c // groups)
        for i in range(h):
            for j in range(wd):
                for a in range(kh):
                    for e in range(kw):
                        full[:, group * og:(group + 1) * og, i * stride[0] + a * dilation[0],
                             j * stride[1] + e * dilation[1]] += x[:, ci, i, j, None] * w[ci, :, a, e]
    out = full[:, :, padding[0]:padding[0] + size[0], padding[1]:padding[1] + size[1]]
    return out if b is None else out + b[:, None, None]


def pool_out(size, k, s, d, p, ceil):
    n = out_len(size, k, s, d, 2 * p, ceil)
    return n - 1 if ceil and (n - 1) * s >= size + p else n


def ref_max_pool2d(x, kernel, stride, padding=(0, 0), dilation=(1, 1), ceil_mode=False):
    h, w = x.shape[-2:]
    oh, ow = (pool_out(s, k, st_, d, p, ceil_mode) for s, k, st_, d, p in zip((h, w), kernel, stride, dilation, padding))
    out = np.empty(x.shape[:-2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            rows = [r for r in range(i * stride[0] - padding[0], i * stride[0] - padding[0] + dilation[0] * kernel[0], dilation[0]) if 0 <= r < h]
            cols = [q for q in range(j * stride[1] - padding[1], j * stride[1] - padding[1] + dilation[1] * kernel[1], dilation[1]) if 0 <= q < w]
            # a dilated window may fall on padding only: -inf there, as PyTorch gives
            out[..., i, j] = x[..., rows, :][..., cols].max(axis=(-2, -1)) if rows and cols else -np.inf
    return out


def ref_max_pool2d_grad(x, g, kernel, stride):
    """Gradient of max pooling without padding: each window's g goes to its first maximum."""
    gx = np.zeros_like(x)
    for idx in np.ndindex(*g.shape):
        *lead, i, j = idx
        window = x[(*lead, slice(i * stride[0], i * stride[0] + kernel[0]), slice(j * stride[1], j * stride[1] + kernel[1]))]
        a, e = np.unravel_index(np.argmax(window), window.shape)  # first occurrence, row-major
        gx[(*lead, i * stride[0] + a, j * stride[1] + e)] += g[idx]
    return gx


def ref_avg_pool2d(x, kernel, stride, padding=(0, 0), ceil_mode=False, count_include_pad=True, divisor_override=None):
    """PyTorch's formula: the divisor counts the window inside the padded input (or the input)."""
    h, w = x.shape[-2:]
    oh, ow = (pool_out(s, k, st_, 1, p, ceil_mode) for s, k, st_, p in zip((h, w), kernel, stride, padding))
    out = np.empty(x.shape[:-2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            r0, q0 = i * stride[0] - padding[0], j * stride[1] - padding[1]
            r1, q1 = min(r0 + kernel[0], h + padding[0]), min(q0 + kernel[1], w + padding[1])
            pool_size = (r1 - r0) * (q1 - q0)
            r0, q0, r1, q1 = max(r0, 0), max(q0, 0), min(r1, h), min(q1, w)
            divisor = divisor_override or (pool_size if count_include_pad else (r1 - r0) * (q1 - q0))
            out[..., i, j] = x[..., r0:r1, q0:q1].sum(axis=(-2, -1)) / divisor
    return out


def ref_adaptive_avg_pool2d(x, size):
    h, w = x.shape[-2:]
    out = np.empty(x.shape[:-2] + tuple(size))
    for i in range(size[0]):
        for j in range(size[1]):
            rows = slice(math.floor(i * h / size[0]), math.ceil((i + 1) * h / size[0]))
            cols = slice(math.floor(j * w / size[1]), math.ceil((j + 1) * w / size[1]))
            out[..., i, j] = x[..., rows, cols].mean(axis=(-2, -1))
    return out


def ref_batch_norm(x, mean, var, weight=None, bias=None, eps=1e-5):
    shape = (x.shape[1],) + (1,) * (x.ndim - 2)
    out = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    if weight is not None:
        out = out * weight.reshape(shape)
    return out if bias is None else out + bias.reshape(shape)


def channel_stats(x):
    """Per-channel mean and biased variance of x (N, C, ...), by moving the channels first."""
    rows = np.moveaxis(x, 1, 0).reshape(x.shape[1], -1)
    return rows.mean(axis=1), rows.var(axis=1)


def ref_group_norm(x, groups, weight=None, bias=None, eps=1e-5):
    out = np.empty_like(x)
    per = x.shape[1] // groups
    for n in range(x.shape[0]):
        for gi in range(groups):
            block = x[n, gi * per:(gi + 1) * per]
            out[n, gi * per:(gi + 1) * per] = (block - block.mean()) / np.sqrt(block.var() + eps)
    shape = (x.shape[1],) + (1,) * (x.ndim - 2)
    if weight is not None:
        out = out * weight.reshape(shape)
    return out if bias is None else out + bias.reshape(shape)


# ---- the cases ------------------------------------------------------------------------------------

def pairs(low, high):
    return st.tuples(st.integers(low, high), st.integers(low, high))


def distinct(draw, shape):
    """Float64 values 0.1 apart in a random order: no ties, so finite differences are exact."""
    order = draw(st.permutations(range(math.prod(shape))))
    return (np.array(order, dtype=np.float64) * 0.1 - 1.0).reshape(shape)


def optional_bias(draw, size):
    return draw(arrays((size,))) if draw(st.booleans()) else None


def with_bias(call, reference, inputs, bias):
    """A Case whose floats are inputs (+ bias when drawn)."""
    if bias is None:
        return Case(call, inputs, reference)
    return Case(call, inputs + (bias,), reference)


@st.composite
def conv2d_cases(draw):
    groups, cg, og = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kernel, stride, dilation = draw(pairs(1, 3)), draw(pairs(1, 3)), draw(pairs(1, 2))
    options = [pairs(0, 2), st.integers(0, 2), st.just("valid")] + ([st.just("same")] if stride == (1, 1) else [])
    padding = draw(st.one_of(options))
    if padding == "same":
        pads = same_pads(kernel, dilation)
    else:
        p = (0, 0) if padding == "valid" else (padding, padding) if isinstance(padding, int) else padding
        pads = (p[0], p[0], p[1], p[1])
    size = [draw(st.integers(max(1, d * (k - 1) + 1 - p), d * (k - 1) + 3))
            for k, d, p in zip(kernel, dilation, (pads[0] + pads[1], pads[2] + pads[3]))]
    x = draw(float_arrays((draw(st.integers(1, 2)), groups * cg, *size)))
    w = draw(arrays((groups * og, cg, *kernel)))
    bias = optional_bias(draw, groups * og)
    options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    return with_bias(lambda *t: F.conv2d(*t, **options),
                     lambda x, w, b=None: ref_conv2d(x, w, b, stride, pads, dilation, groups), (x, w), bias)


@st.composite
def conv1d_cases(draw):
    groups, cg, og = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 3))
    k, s, d = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    padding = draw(st.one_of([st.integers(0, 2), st.just("valid")] + ([st.just("same")] if s == 1 else [])))
    pads = same_pads((1, k), (1, d)) if padding == "same" else (0, 0, 0, 0) if padding == "valid" \
        else (0, 0, padding, padding)
    length = draw(st.integers(max(1, d * (k - 1) + 1 - pads[2] - pads[3]), d * (k - 1) + 4))
    x = draw(float_arrays((draw(st.integers(1, 2)), groups * cg, length)))
    w = draw(arrays((groups * og, cg, k)))
    bias = optional_bias(draw, groups * og)

    def reference(x, w, b=None):
        return ref_conv2d(x[:, :, None], w[:, :, None], b, (1, s), pads, (1, d), groups)[:, :, 0]

    options = dict(stride=s, padding=padding, dilation=d, groups=groups)
    return with_bias(lambda *t: F.conv1d(*t, **options), reference, (x, w), bias)


@st.composite
def conv_transpose2d_cases(draw):
    groups, cg, og = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kernel, stride, dilation = draw(pairs(1, 3)), draw(pairs(1, 3)), draw(pairs(1, 2))
    padding = tuple(draw(st.integers(0, (d * (k - 1)) // 2)) for k, d in zip(kernel, dilation))
    extra = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    x = draw(float_arrays((draw(st.integers(1, 2)), groups * cg, *draw(pairs(1, 4)))))
    w = draw(arrays((groups * cg, og, *kernel)))
    bias = optional_bias(draw, groups * og)
    options = dict(stride=stride, padding=padding, output_padding=extra, groups=groups, dilation=dilation)
    return with_bias(lambda *t: F.conv_transpose2d(*t, **options),
                     lambda *a: ref_conv_transpose2d(*a, **options), (x, w), bias)


def pool_options(draw, dilation=True):
    kernel = draw(pairs(1, 3))
    stride = draw(st.one_of(st.none(), pairs(1, 3)))
    dil = draw(pairs(1, 2)) if dilation else (1, 1)
    padding = tuple(draw(st.integers(0, (d * (k - 1) + 1) // 2)) for k, d in zip(kernel, dil))
    ceil_mode = draw(st.booleans())
    size = tuple(draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), d * (k - 1) + 4))
                 for k, d, p in zip(kernel, dil, padding))
    return kernel, stride or kernel, dil, padding, ceil_mode, size


@st.composite
def max_pool2d_cases(draw):
    kernel, stride, dilation, padding, ceil_mode, size = pool_options(draw)
    lead = draw(st.sampled_from([(1, 2), (2, 1), (3,)]))
    x = distinct(draw, (*lead, *size))
    if draw(st.booleans()):
        x = x.T.copy().T  # not C-contiguous
    return Case(lambda t: F.max_pool2d(t, kernel, stride, padding, dilation, ceil_mode), (x,),
                lambda x: ref_max_pool2d(x, kernel, stride, padding, dilation, ceil_mode))


@st.composite
def avg_pool2d_cases(draw):
    kernel, stride, _, padding, ceil_mode, size = pool_options(draw, dilation=False)
    include, override = draw(st.booleans()), draw(st.sampled_from([None, None, 3]))
    x = draw(float_arrays((draw(st.integers(1, 2)), 2, *size)))
    return Case(lambda t: F.avg_pool2d(t, kernel, stride, padding, ceil_mode, include, override), (x,),
                lambda x: ref_avg_pool2d(x, kernel, stride, padding, ceil_mode, include, override))


@st.composite
def adaptive_avg_pool2d_cases(draw):
    size, out = draw(pairs(1, 7)), draw(pairs(1, 7))
    x = draw(float_arrays((draw(st.integers(1, 2)), 2, *size)))
    return Case(lambda t: F.adaptive_avg_pool2d(t, out), (x,), lambda x: ref_adaptive_avg_pool2d(x, out))


def norm_input(draw):
    """(N, C, ...) with at least two values per channel and no near-constant channel."""
    shape = (draw(st.integers(2, 3)), draw(st.integers(1, 4)), *draw(st.lists(st.integers(1, 3), max_size=2)))
    x = draw(float_arrays(shape))
    return x + np.linspace(0, 1, x.size).reshape(x.shape)  # spread: finite differences stay accurate


@st.composite
def batch_norm_cases(draw):
    x = norm_input(draw)
    c, training, affine = x.shape[1], draw(st.booleans()), draw(st.booleans())
    mean, var = draw(arrays((c,))), draw(arrays((c,), 0.5, 2.0))
    if training:  # fresh running buffers per call: the update is checked in its own test
        def call(*t):
            buffers = [backend.to_device(b, t[0].device).copy() for b in (mean, var)]
            return F.batch_norm(t[0], *buffers, *t[1:], training=True, eps=1e-3)

        def reference(x, *p):
            return ref_batch_norm(x, *channel_stats(x), *p, eps=1e-3)
    else:
        def call(*t):
            buffers = [backend.to_device(b, t[0].device) for b in (mean, var)]
            return F.batch_norm(t[0], *buffers, *t[1:], eps=1e-3)

        def reference(x, *p):
            return ref_batch_norm(x, mean, var, *p, eps=1e-3)
    params = (draw(arrays((c,))), draw(arrays((c,)))) if affine else ()
    return Case(call, (x, *params), reference)


@st.composite
def group_norm_cases(draw):
    x = norm_input(draw)
    c = x.shape[1]
    groups = draw(st.sampled_from([g for g in range(1, c + 1) if c % g == 0]))
    params = (draw(arrays((c,))), draw(arrays((c,)))) if draw(st.booleans()) else ()
    return Case(lambda *t: F.group_norm(t[0], groups, *t[1:]), (x, *params),
                lambda x, *p: ref_group_norm(x, groups, *p))


CASES = {
    "conv1d": conv1d_cases(),
    "conv2d": conv2d_cases(),
    "conv_transpose2d": conv_transpose2d_cases(),
    "max_pool2d": max_pool2d_cases(),
    "avg_pool2d": avg_pool2d_cases(),
    "adaptive_avg_pool2d": adaptive_avg_pool2d_cases(),
    "batch_norm": batch_norm_cases(),
    "group_norm": group_norm_cases(),
}

ops = pytest.mark.parametrize("op", sorted(CASES))


# ---- the generic tests ------------------------------------------------------------------------------

@ops
@settings(max_examples=25)
@given(data=st.data())
def test_forward_matches_float64_reference(op, data, device):
    data.draw(CASES[op], label="case").check_forward(device)


@ops
@settings(max_examples=20)
@given(data=st.data())
def test_gradient_matches_finite_differences(op, data, device):
    data.draw(CASES[op], label="case").check_gradient(device)


@pytest.mark.parametrize("op", ["conv1d", "conv2d"])
@settings(max_examples=20)
@given(data=st.data())
def test_per_image_gradient_matches_finite_differences(op, data, device):
    """conv_grads (the backward for images of many positions) on the drawn small cases too."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(conv, "MIN_IMAGE_POSITIONS", 1)
        data.draw(CASES[op], label="case").check_gradient(device)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@ops
@settings(max_examples=8)
@given(data=st.data())
def test_outputs_and_gradients_keep_dtype_and_shape(op, dtype, data, device):
    data.draw(CASES[op], label="case").check_dtype(dtype, device)


# ---- max pooling ties, batch norm's running statistics --------------------------------------------

@settings(max_examples=25)
@given(data=st.data())
def test_max_pool_ties_send_the_gradient_to_the_first_maximum(data, device):
    kernel, stride = data.draw(pairs(1, 3), label="kernel"), data.draw(pairs(1, 3), label="stride")
    size = data.draw(st.tuples(st.integers(kernel[0], 6), st.integers(kernel[1], 6)), label="size")
    x = data.draw(arrays((2, *size), 0, 2).map(np.round), label="x")  # values 0, 1, 2: many ties
    t = Tensor(x, requires_grad=True, device=device)
    out = F.max_pool2d(t, kernel, stride)
    g = np.random.default_rng(1).standard_normal(out.shape)
    out.backward(Tensor(g, device=device))
    # overlapping windows add their gradients in another order than the reference: rounding only
    np.testing.assert_allclose(backend.to_device(t.grad, "cpu"), ref_max_pool2d_grad(x, g, kernel, stride),
                               rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dilation", [1, 2])
def test_max_pool_gradient_is_zero_outside_every_window(dilation, device):
    """Stride equal to the dilated extent: the cells in the gaps of dilated windows get zero."""
    x = np.random.default_rng(2).permutation(36).reshape(1, 1, 6, 6) * 1.0
    t = Tensor(x, requires_grad=True, device=device)
    extent = dilation + 1
    out = F.max_pool2d(t, 2, extent, dilation=dilation)
    out.backward(Tensor(np.ones(out.shape), device=device))
    grad = backend.to_device(t.grad, "cpu")
    expected = np.zeros_like(x)
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            rows, cols = slice(i * extent, i * extent + extent, dilation), slice(j * extent, j * extent + extent, dilation)
            window = x[0, 0, rows, cols]
            a, e = np.unravel_index(np.argmax(window), window.shape)
            expected[0, 0, i * extent + a * dilation, j * extent + e * dilation] = 1
    np.testing.assert_array_equal(grad, expected)


@pytest.mark.parametrize("as_tensor", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_updates_running_statistics_in_place(as_tensor, dtype, device):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 5)).astype(dtype) * 2 + 1
    mean, var = np.zeros(3, dtype), np.ones(3, dtype)
    buffers = [Tensor(mean, device=device), Tensor(var, device=device)] if as_tensor else \
        [backend.to_device(mean, device), backend.to_device(var, device)]
    F.batch_norm(Tensor(x, device=device), *buffers, training=True, momentum=0.25)
    got = [backend.to_device(b.data if as_tensor else b, "cpu") for b in buffers]
    rows = np.moveaxis(x.astype(np.float64), 1, 0).reshape(3, -1)
    np.testing.assert_allclose(got[0], 0.75 * 0 + 0.25 * rows.mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(got[1], 0.75 * 1 + 0.25 * rows.var(axis=1, ddof=1), rtol=1e-5)  # unbiased
    assert got[0].dtype == dtype and got[1].dtype == dtype
    before = [g.copy() for g in got]
    F.batch_norm(Tensor(x, device=device), *buffers, training=False)  # eval leaves them alone
    for b, old in zip(buffers, before):
        np.testing.assert_array_equal(backend.to_device(b.data if as_tensor else b, "cpu"), old)


@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d"])
@pytest.mark.parametrize("stride", [1, 2])
def test_wide_rows_strides_and_groups_match_the_reference(op, stride, device):
    """Output rows 16+ long, with strides and groups: forward and gradients."""
    rng = np.random.default_rng(3)
    if op == "conv2d":
        x, w = rng.standard_normal((2, 2, 3, 16 * stride + 1)), rng.standard_normal((4, 1, 2, 3))
        options = dict(stride=stride, padding=1, groups=2)
        reference = ref_conv2d(x, w, None, (stride, stride), (1, 1, 1, 1), (1, 1), 2)
    else:
        x, w = rng.standard_normal((2, 2, 2, 17)), rng.standard_normal((2, 3, 2, 3))
        options = dict(stride=stride, padding=1)
        reference = ref_conv_transpose2d(x, w, None, (stride, stride), (1, 1))
    call = getattr(F, op)
    out = call(Tensor(x, device=device), Tensor(w, device=device), **options)
    np.testing.assert_allclose(out.numpy(), reference, rtol=1e-10, atol=1e-12)
    xt, wt = Tensor(x, requires_grad=True, device=device), Tensor(w, requires_grad=True, device=device)
    assert gradcheck(lambda a, b: call(a, b, **options), [xt, wt])


@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("op, chunk_bytes", [("conv1d", 1), ("conv2d", 1), ("conv_transpose2d", 1),
                                              ("conv1d", 1000), ("conv2d", 15000), ("conv_transpose2d", 6000)])
def test_chunks_of_images_match_the_reference(op, chunk_bytes, per_image, monkeypatch, device):
    """The column loops split into chunks of one image (chunk_bytes=1), or of two images with a
    shorter last chunk (the columns of one image take 480, 6912 and 2880 bytes); the backward
    by col2im or by conv_grads' per-image products (per_image)."""
    monkeypatch.setattr(blocking, "CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(conv, "MIN_IMAGE_POSITIONS", 1 if per_image else 10**9)
    if device.startswith("cuda"):  # CuPy runs one chunk: this test is about NumPy's loops
        pytest.skip("a single chunk on CuPy")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 4, 5) if op == "conv1d" else (5, 4, 5, 6))
    w = rng.standard_normal((4, 2, 3) if op == "conv1d" else (4, 2, 2, 3))
    b = rng.standard_normal(2 if op == "conv_transpose2d" else 4)  # its weight is (in, out, KH, KW)
    options = dict(stride=2, padding=1) if op == "conv_transpose2d" else dict(padding=1, groups=2)
    if op == "conv1d":
        reference = ref_conv2d(x[:, :, None], w[:, :, None], b, pads=(0, 0, 1, 1), groups=2)[:, :, 0]
    elif op == "conv2d":
        reference = ref_conv2d(x, w, b, pads=(1, 1, 1, 1), groups=2)
    else:
        reference = ref_conv_transpose2d(x, w, b, (2, 2), (1, 1))
    call = getattr(F, op)
    np.testing.assert_allclose(call(Tensor(x), Tensor(w), Tensor(b), **options).numpy(), reference,
                               rtol=1e-10, atol=1e-12)
    tensors = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    assert gradcheck(lambda *t: call(*t, **options), tensors)


def test_numpy_integers_and_lists_are_accepted_as_sizes():
    x, w = Tensor(np.ones((1, 2, 5, 5))), Tensor(np.ones((3, 2, 3, 3)))
    out = F.conv2d(x, w, stride=np.int64(2), padding=[1, np.int32(1)])
    assert out.shape == (1, 3, 3, 3)
    assert F.max_pool2d(x, np.int64(2), np.int64(2)).shape == (1, 2, 2, 2)


def test_same_padding_puts_the_odd_extra_at_the_bottom_and_right():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    w = np.zeros((1, 1, 2, 2))
    w[0, 0, 0, 0] = 1  # picks the window's top-left: out == x when the extra padding is after
    np.testing.assert_array_equal(F.conv2d(Tensor(x), Tensor(w), padding="same").numpy(), x)


# ---- bad input -----------------------------------------------------------------------------------

def t(*shape):
    return Tensor(np.zeros(shape))


@pytest.mark.parametrize("call, message", [
    (lambda: F.conv2d(t(2, 3, 5, 5), t(8, 4, 3, 3)), r"3 channels .*\(8, 4, 3, 3\) expects 4"),
    (lambda: F.conv2d(t(2, 4, 5, 5), t(8, 2, 3, 3), groups=4), r"4 channels .*expects 8"),
    (lambda: F.conv2d(t(2, 6, 5, 5), t(8, 2, 3, 3), groups=3), "groups=3 must divide"),
    (lambda: F.conv2d(t(2, 3, 2, 5), t(8, 3, 3, 3)), r"kernel \(3, 3\).*larger than the padded input \(2, 5\)"),
    (lambda: F.conv2d(t(2, 3, 5, 5), t(8, 3, 3, 3), stride=2, padding="same"), "'same' needs stride 1"),
    (lambda: F.conv2d(t(2, 3, 5, 5), t(8, 3, 3, 3), padding="full"), "padding must be"),
    (lambda: F.conv2d(t(2, 3, 5, 5), t(8, 3, 3, 3), stride=0), "stride must be at least 1"),
    (lambda: F.conv2d(t(2, 3, 5, 5), t(8, 3, 3, 3), stride=1.5), "stride must be an int or a pair of ints"),
    (lambda: F.conv1d(t(2, 3, 5), t(8, 3, 3), dilation=(1, 1)), "dilation must be an int or a 1-tuple"),
    (lambda: F.conv2d(t(3, 5, 5), t(8, 3, 3, 3)), r"\(N, C, H, W\)"),
    (lambda: F.conv2d(t(2, 3, 5, 5), t(8, 3, 3, 3), t(4)), r"bias has shape \(4,\)"),
    (lambda: F.conv1d(t(2, 3, 2), t(8, 3, 3)), r"larger than the padded input \(2,\)"),
    (lambda: F.conv2d(t(2, 3, 5, 5), Tensor(np.zeros((8, 3, 3, 3), np.float32))),
     "input dtype float64 does not match weight dtype float32"),
    (lambda: F.conv_transpose2d(Tensor(np.zeros((1, 3, 4, 4), int)), Tensor(np.zeros((3, 2, 3, 3), int))),
     "weight must be floating point, got dtype int64"),
    (lambda: F.conv_transpose2d(t(2, 3, 4, 4), t(4, 2, 3, 3)), r"3 channels .*expects 4"),
    (lambda: F.conv_transpose2d(t(2, 3, 4, 4), t(3, 2, 3, 3), stride=2, output_padding=2), "output_padding"),
    (lambda: F.max_pool2d(t(1, 1, 4, 4), 2, padding=2), "at most half the kernel"),
    (lambda: F.max_pool2d(t(1, 1, 2, 2), 3), "larger than the padded input"),
    (lambda: F.avg_pool2d(t(5, 5), 2), r"\(N, C, H, W\) or \(C, H, W\)"),
    (lambda: F.adaptive_avg_pool2d(t(1, 1, 4, 4), (2, 0)), "positive ints"),
    (lambda: F.batch_norm(t(4, 3), np.zeros(3), np.ones(3), t(2)), r"weight has shape \(2,\)"),
    (lambda: F.batch_norm(t(4, 3), None, None), "needed when training=False"),
    (lambda: F.batch_norm(t(1, 3), None, None, training=True), "more than 1 value per channel"),
    (lambda: F.group_norm(t(2, 6, 3), 4), "num_groups=4 must be a positive int dividing the 6 channels"),
])
def test_bad_input_gets_a_clear_error(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


# ---- NumPy and CuPy agree -------------------------------------------------------------------------

@requires_cuda
@ops
@settings(max_examples=10)
@given(data=st.data())
def test_cupy_matches_numpy(op, data):
    data.draw(CASES[op], label="case").check_cupy_matches_numpy()
