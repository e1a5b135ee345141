"""Convolution, pooling and batch/group norm beyond the generic checks: the per-image backward,
max pooling's ties, batch norm's running statistics, chunked column loops and bad input.

The ops' cases and their plain-loop float64 references live in tests/op_cases/functional_conv.py;
tests/functional/test_op_properties.py runs the generic checks on them.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minitf.functional as F
from minitf import Tensor, backend, gradcheck
from minitf.cpu import blocking
from minitf.functional import conv
from minitf.testing import arrays

from op_cases.functional_conv import CASES, pairs, ref_conv2d, ref_conv_transpose2d, ref_max_pool2d_grad


# ---- the per-image backward ---------------------------------------------------------------------

@pytest.mark.parametrize("op", ["conv1d", "conv2d"])
@settings(max_examples=20)
@given(data=st.data())
def test_per_image_gradient_matches_finite_differences(op, data, device):
    """conv_grads (the backward for images of many positions) on the drawn small cases too."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(conv, "MIN_IMAGE_POSITIONS", 1)
        data.draw(CASES[op], label="case").check_gradient(device)


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
