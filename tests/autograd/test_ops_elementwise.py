"""sin, cos, log1p, expm1, clip/clamp, maximum, minimum: forward against NumPy float64,
gradients against finite differences, kink conventions as PyTorch."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minitf as mt
from minitf.testing import arrays, broadcastable_shapes, shapes


def leaf(array, device):
    return mt.tensor(np.asarray(array, dtype=np.float64), requires_grad=True, device=device)


def host(array):
    return mt.backend.to_device(array, "cpu")


def grads_of(fn, inputs, cotangent, device):
    """Output and input gradients of fn on float64 leaves for the given cotangent."""
    tensors = [leaf(a, device) for a in inputs]
    out = fn(*tensors)
    out.backward(mt.tensor(np.asarray(cotangent, dtype=np.float64), device=device))
    return host(out.data), [host(t.grad) for t in tensors]


UNARY = {  # name: (NumPy reference, lowest input)
    "sin": (np.sin, -3.0),
    "cos": (np.cos, -3.0),
    "log1p": (np.log1p, -0.5),
    "expm1": (np.expm1, -3.0),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(data=st.data(), shape=shapes())
def test_unary(device, name, data, shape):
    reference, low = UNARY[name]
    x_np = data.draw(arrays(shape, low, 3.0))
    x = leaf(x_np, device)
    out = getattr(x, name)()
    np.testing.assert_allclose(out.numpy(), reference(x_np), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(getattr(mt, name)(x).numpy(), out.numpy())
    assert mt.gradcheck(lambda t: getattr(t, name)(), [x])


@pytest.mark.parametrize("name", ["sin", "cos", "log1p", "expm1", "clip", "maximum", "minimum"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(device, name, dtype):
    x = mt.tensor(np.array([0.25, -0.5, 2.0], dtype=dtype), requires_grad=True, device=device)
    ops = {"clip": lambda t: t.clip(-0.3, 1.0), "maximum": lambda t: mt.maximum(t, 0.5),
           "minimum": lambda t: mt.minimum(0.5, t)}
    out = ops.get(name, lambda t: getattr(t, name)())(x)
    assert out.dtype == dtype
    out.backward(mt.tensor(np.ones(3, dtype=dtype), device=device))
    assert x.grad.dtype == dtype


def test_log1p_and_expm1_are_accurate_near_zero(device):
    x = mt.tensor(np.array([1e-12, -1e-15]), device=device)
    np.testing.assert_allclose(x.log1p().numpy(), [1e-12 - 5e-25, -1e-15], rtol=1e-14)
    np.testing.assert_allclose(x.expm1().numpy(), [1e-12 + 5e-25, -1e-15], rtol=1e-14)


# ---- clip -------------------------------------------------------------------------------

@st.composite
def away_from(draw, shape, points):
    """Values in [-3, 3] at least 0.05 from each of `points` (so no finite difference crosses a kink)."""
    x = draw(arrays(shape))
    for p in points:
        x = np.where(np.abs(x - p) < 0.05, p + 0.1, x)
    return x


@given(data=st.data(), shape=shapes())
def test_clip_with_number_bounds(device, data, shape):
    lo, hi = sorted(data.draw(st.lists(st.sampled_from([-2.0, -0.5, 0.0, 1.0, 2.5]), min_size=2,
                                       max_size=2)))
    x_np = data.draw(away_from(shape, [lo, hi]))
    bounds = data.draw(st.sampled_from([(lo, hi), (lo, None), (None, hi)]))
    x = leaf(x_np, device)
    out = x.clip(*bounds)
    np.testing.assert_array_equal(out.numpy(), np.clip(x_np, *bounds))
    np.testing.assert_array_equal(mt.clamp(x, *bounds).numpy(), out.numpy())
    assert mt.gradcheck(lambda t: t.clip(*bounds), [x])


@settings(max_examples=30)
@given(data=st.data(), shapes3=broadcastable_shapes(3))
def test_clip_with_tensor_bounds(device, data, shapes3):
    x_np = data.draw(arrays(shapes3[0]))
    lo_np = data.draw(arrays(shapes3[1], -3.0, 0.0))
    hi_np = data.draw(arrays(shapes3[2], 0.5, 3.0))
    x_np = np.where(np.abs(x_np - lo_np) < 0.05, lo_np - 0.1, x_np)
    x_np = np.where(np.abs(x_np - hi_np) < 0.05, hi_np + 0.1, x_np)
    ts = [leaf(a, device) for a in (x_np, lo_np, hi_np)]
    out = mt.clip(*ts)
    np.testing.assert_array_equal(out.numpy(), np.minimum(np.maximum(x_np, lo_np), hi_np))
    assert mt.gradcheck(lambda x, lo, hi: x.clip(lo, hi), ts)


def test_clip_gradient_at_and_across_the_bounds_is_pytorchs(device):
    # x at min, at max, inside, below, above, and where min > max (max wins)
    x, lo, hi = [0.0, 2.0, 1.0, -1.0, 3.0, 1.0], [0.0, 0.0, 0.0, 0.0, 0.0, 2.0], \
        [2.0, 2.0, 2.0, 2.0, 2.0, 0.5]
    out, (gx, glo, ghi) = grads_of(lambda *t: mt.clip(*t), [x, lo, hi], np.ones(6), device)
    np.testing.assert_array_equal(out, [0.0, 2.0, 1.0, 0.0, 2.0, 0.5])
    np.testing.assert_array_equal(gx, [1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(glo, [0, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(ghi, [0, 0, 0, 0, 1, 1])


def test_clip_needs_a_bound():
    with pytest.raises(ValueError, match="min and max"):
        mt.tensor([1.0]).clip()


# ---- maximum, minimum ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ["maximum", "minimum"])
@given(data=st.data(), shape_pair=broadcastable_shapes(2))
def test_maximum_minimum(device, name, data, shape_pair):
    a_np = np.round(data.draw(arrays(shape_pair[0])) * 5) / 5  # on a grid of 0.2 ...
    b_np = np.round(data.draw(arrays(shape_pair[1])) * 5) / 5 + 0.1  # ... and off it: no ties
    a, b = leaf(a_np, device), leaf(b_np, device)
    out = getattr(mt, name)(a, b)
    np.testing.assert_array_equal(out.numpy(), getattr(np, name)(a_np, b_np))
    np.testing.assert_array_equal(getattr(a, name)(b).numpy(), out.numpy())
    assert mt.gradcheck(lambda s, t: getattr(mt, name)(s, t), [a, b])


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_ties_split_the_gradient(device, name):
    a, b = [1.0, 2.0, 3.0], [1.0, 0.0, 5.0]
    wins = [1.0, 0.0] if name == "maximum" else [0.0, 1.0]
    out, (ga, gb) = grads_of(lambda s, t: getattr(mt, name)(s, t), [a, b], [2.0, 2.0, 2.0], device)
    np.testing.assert_array_equal(ga, [1.0, 2 * wins[0], 2 * wins[1]])
    np.testing.assert_array_equal(gb, [1.0, 2 * wins[1], 2 * wins[0]])


def test_maximum_with_an_array_and_a_number(device):
    x = leaf([-1.0, 0.5], device)
    np.testing.assert_array_equal(mt.maximum(x, 0).numpy(), [0.0, 0.5])
    np.testing.assert_array_equal(mt.maximum(np.array([0.0, 1.0]), x).numpy(), [0.0, 1.0])
