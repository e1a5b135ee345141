"""Shape and order ops: unsqueeze/expand_dims, squeeze, clone, flatten, view, flip, roll, tile,
repeat/repeat_interleave, pad, tril/triu. Forward against NumPy, gradients by gradcheck."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitf as mt
from minitf.testing import arrays, shapes


def check(fn, reference, x, device):
    """fn(tensor) equals reference(array) exactly (these ops only move values) and passes gradcheck."""
    t = mt.tensor(x, requires_grad=True, device=device)
    out, expected = fn(t), reference(x)
    assert out.shape == np.shape(expected) and out.dtype == np.float64
    np.testing.assert_array_equal(out.numpy(), expected)
    assert mt.gradcheck(fn, [t])


def axis_subset(data, ndim):
    """A tuple of distinct axes, some negative."""
    axes = data.draw(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim)) if ndim else []
    return tuple(a - ndim if data.draw(st.booleans()) else a for a in axes)


@given(data=st.data(), shape=shapes(max_dims=3))
def test_unsqueeze_and_expand_dims(device, data, shape):
    x = data.draw(arrays(shape))
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    check(lambda t: t.unsqueeze(axis), lambda a: np.expand_dims(a, axis), x, device)
    check(lambda t: mt.unsqueeze(t, dim=axis), lambda a: np.expand_dims(a, axis), x, device)
    two = (0, -1)
    check(lambda t: mt.expand_dims(t, two), lambda a: np.expand_dims(a, two), x, device)


@given(data=st.data(), shape=shapes(max_dims=4, max_side=2))
def test_squeeze(device, data, shape):
    x = data.draw(arrays(shape))
    ones = [i - len(shape) * data.draw(st.booleans()) for i, n in enumerate(shape) if n == 1]
    axis = tuple(data.draw(st.lists(st.sampled_from(ones), unique_by=lambda a: a % len(shape)))) if ones else ()
    check(lambda t: t.squeeze(), np.squeeze, x, device)
    check(lambda t: t.squeeze(axis), lambda a: np.squeeze(a, axis), x, device)
    if ones:
        check(lambda t: t.squeeze(dim=ones[0]), lambda a: np.squeeze(a, ones[0]), x, device)


@given(data=st.data(), shape=shapes())
def test_clone(device, data, shape):
    x = data.draw(arrays(shape))
    check(lambda t: t.clone(), np.copy, x, device)
    check(lambda t: mt.clone(t) * t, lambda a: a * a, x, device)  # the copy stays in the graph


@given(data=st.data(), shape=shapes(min_dims=1))
def test_flatten_and_view(device, data, shape):
    x = data.draw(arrays(shape))
    ndim = len(shape)
    start = data.draw(st.integers(0, ndim - 1))
    end = data.draw(st.integers(start, ndim - 1))
    merged = shape[:start] + (int(np.prod(shape[start:end + 1])),) + shape[end + 1:]
    check(lambda t: t.flatten(start - ndim, end), lambda a: a.reshape(merged), x, device)
    check(lambda t: mt.flatten(t), lambda a: a.reshape(-1), x, device)
    check(lambda t: t.view(-1, shape[-1]), lambda a: a.reshape(-1, shape[-1]), x, device)


@given(data=st.data(), shape=shapes())
def test_flip(device, data, shape):
    x = data.draw(arrays(shape))
    axes = axis_subset(data, len(shape))
    check(lambda t: t.flip(axes), lambda a: np.flip(a, axes), x, device)
    check(lambda t: mt.flip(t), np.flip, x, device)
    if axes:
        check(lambda t: t.flip(dim=axes[0]), lambda a: np.flip(a, axes[0]), x, device)


@given(data=st.data(), shape=shapes(min_dims=1))
def test_roll(device, data, shape):
    x = data.draw(arrays(shape))
    axes = axis_subset(data, len(shape))
    shifts = tuple(data.draw(st.integers(-7, 7)) for _ in axes)
    flat = data.draw(st.integers(-7, 7))
    check(lambda t: t.roll(shifts, axes), lambda a: np.roll(a, shifts, axes), x, device)
    check(lambda t: mt.roll(t, flat), lambda a: np.roll(a, flat), x, device)
    check(lambda t: mt.roll(t, flat, dim=-1), lambda a: np.roll(a, flat, -1), x, device)


@given(data=st.data(), shape=shapes(max_dims=3))
def test_tile(device, data, shape):
    x = data.draw(arrays(shape))
    reps = tuple(data.draw(st.lists(st.integers(0, 3), max_size=4)))
    check(lambda t: t.tile(reps), lambda a: np.tile(a, reps), x, device)
    check(lambda t: mt.tile(t, *reps) if reps else mt.tile(t, ()), lambda a: np.tile(a, reps), x, device)


@given(data=st.data(), shape=shapes(min_dims=1, max_dims=3))
def test_repeat_interleave(device, data, shape):
    x = data.draw(arrays(shape))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    times = data.draw(st.integers(0, 3))
    counts = np.array(data.draw(st.lists(st.integers(0, 3), min_size=shape[axis], max_size=shape[axis])))
    check(lambda t: t.repeat(times, axis=axis), lambda a: np.repeat(a, times, axis), x, device)
    check(lambda t: t.repeat_interleave(counts, dim=axis), lambda a: np.repeat(a, counts, axis), x, device)
    check(lambda t: mt.repeat_interleave(t, times), lambda a: np.repeat(a, times), x, device)


@st.composite
def pad_widths(draw, ndim):
    small = st.integers(0, 2)
    return draw(st.one_of(small, st.tuples(small, small),
                          st.tuples(*[st.tuples(small, small) for _ in range(ndim)])))


@given(data=st.data(), shape=shapes(min_dims=1, max_dims=3), value=st.sampled_from([0.0, -1.5]))
def test_pad(device, data, shape, value):
    x = data.draw(arrays(shape))
    width = data.draw(pad_widths(len(shape)))
    check(lambda t: mt.pad(t, width, value), lambda a: np.pad(a, width, constant_values=value), x, device)


@pytest.mark.parametrize("name", ["tril", "triu"])
@given(data=st.data(), shape=shapes(min_dims=2, max_dims=4))
def test_tril_triu(device, name, data, shape):
    x = data.draw(arrays(shape))
    k = data.draw(st.integers(-4, 4))
    check(lambda t: getattr(t, name)(k), lambda a: getattr(np, name)(a, k), x, device)
    check(lambda t: getattr(mt, name)(t, diagonal=k), lambda a: getattr(np, name)(a, k), x, device)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layout_ops_keep_dtype(device, dtype):
    x = mt.tensor(np.arange(6, dtype=dtype).reshape(2, 3), requires_grad=True, device=device)
    outs = [x.unsqueeze(1), x.unsqueeze(0).squeeze(0), x.flatten(), x.view(3, 2), x.flip(0), x.roll(1, 1),
            x.tile(2, 1), x.repeat(2, axis=0), x.repeat_interleave([1, 0, 2], axis=1), mt.pad(x, 1, 7.0),
            x.tril(), x.triu(1)]
    assert all(o.dtype == dtype for o in outs)
    sum(o.sum() for o in outs).backward()
    assert x.grad.dtype == dtype


def test_repeat_is_numpys_and_tile_is_torchs_repeat():
    x = mt.tensor([1.0, 2.0])
    assert x.repeat(2).tolist() == [1.0, 1.0, 2.0, 2.0]
    assert x.tile(2).tolist() == [1.0, 2.0, 1.0, 2.0]


def test_layout_errors():
    x = mt.tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match="squeeze: axis 1 has size 3, not 1"):
        x.squeeze(1)
    with pytest.raises(ValueError, match="expand_dims: axis 3 is out of range"):
        x.unsqueeze(3)
    with pytest.raises(ValueError, match="flatten: start_dim 1 comes after end_dim 0"):
        x.flatten(1, 0)
    with pytest.raises(ValueError, match="flip: repeated axis"):
        x.flip((0, -2))
    with pytest.raises(ValueError, match="roll: axis 2 is out of range"):
        x.roll(1, 2)
    with pytest.raises(ValueError, match="tile: reps must be non-negative"):
        x.tile(-1)
    with pytest.raises(ValueError, match="one per entry \\(3\\) along axis 1"):
        x.repeat_interleave([1, 2], axis=1)
    with pytest.raises(ValueError, match="repeats must be non-negative"):
        x.repeat(-1)
    with pytest.raises(ValueError, match="pad_width must be non-negative"):
        mt.pad(x, -1)
    with pytest.raises(ValueError, match="tril needs at least 2 dimensions"):
        mt.tensor([1.0]).tril()
    with pytest.raises(TypeError, match="both axis and dim"):
        x.flip(axis=0, dim=0)


def test_tril_and_triu_zero_infinities_outside_the_triangle(device):
    x = mt.tensor(np.array([[1.0, np.inf], [-np.inf, 2.0]]), device=device)
    assert x.tril().tolist() == [[1.0, 0.0], [-np.inf, 2.0]]
    assert x.triu().tolist() == [[1.0, np.inf], [0.0, 2.0]]
