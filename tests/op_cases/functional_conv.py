"""Convolution, pooling and batch/group norm cases for the generic checks (tests/functional/test_op_properties.py).

Each op has a hypothesis strategy drawing one `OpCase`: small odd sizes with stride, padding,
dilation, groups and ceil_mode combinations. The references below are written with plain
loops over output positions, independent of the strided views and scatter loops of
minitf.functional.
"""
from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

import minitf.functional as F
from minitf import backend
from minitf.testing import OpCase, arrays, float_arrays, op_tests

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
        return OpCase(call, inputs, reference)
    return OpCase(call, inputs + (bias,), reference)


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
    return OpCase(lambda t: F.max_pool2d(t, kernel, stride, padding, dilation, ceil_mode), (x,),
                  lambda x: ref_max_pool2d(x, kernel, stride, padding, dilation, ceil_mode))


@st.composite
def avg_pool2d_cases(draw):
    kernel, stride, _, padding, ceil_mode, size = pool_options(draw, dilation=False)
    include, override = draw(st.booleans()), draw(st.sampled_from([None, None, 3]))
    x = draw(float_arrays((draw(st.integers(1, 2)), 2, *size)))
    return OpCase(lambda t: F.avg_pool2d(t, kernel, stride, padding, ceil_mode, include, override), (x,),
                  lambda x: ref_avg_pool2d(x, kernel, stride, padding, ceil_mode, include, override))


@st.composite
def adaptive_avg_pool2d_cases(draw):
    size, out = draw(pairs(1, 7)), draw(pairs(1, 7))
    x = draw(float_arrays((draw(st.integers(1, 2)), 2, *size)))
    return OpCase(lambda t: F.adaptive_avg_pool2d(t, out), (x,), lambda x: ref_adaptive_avg_pool2d(x, out))


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
    return OpCase(call, (x, *params), reference)


@st.composite
def group_norm_cases(draw):
    x = norm_input(draw)
    c = x.shape[1]
    groups = draw(st.sampled_from([g for g in range(1, c + 1) if c % g == 0]))
    params = (draw(arrays((c,))), draw(arrays((c,)))) if draw(st.booleans()) else ()
    return OpCase(lambda *t: F.group_norm(t[0], groups, *t[1:]), (x, *params),
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

OPS = op_tests(CASES, examples={"forward": 25, "gradient": 20, "float32": 8, "float64": 8, "cupy": 10})
