"""PyTorch's Tensor methods that a port needs: casts, numel/dim/size(dim), contiguous, chunk, pow,
softmax/log_softmax, argmax(dim, keepdim), and minitf.cat/softmax/log_softmax."""
import copy
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minitf as mt
import minitf.functional as F
from minitf.testing import arrays, assert_grad_close, float_arrays, shapes

X = np.array([[1.7, -2.5, 0.0], [3.9, -0.2, 2.0]])


@pytest.mark.parametrize("method, dtype", [("float", np.float32), ("double", np.float64),
                                           ("half", np.float16)])
def test_float_casts_keep_the_graph_and_cast_the_gradient_back(method, dtype):
    x = mt.tensor(X, requires_grad=True)
    y = getattr(x, method)()
    assert y.dtype == dtype and y.requires_grad
    (y * mt.tensor(np.arange(6.0).reshape(2, 3), dtype=dtype)).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad, np.arange(6.0).reshape(2, 3))


@pytest.mark.parametrize("method, dtype", [("long", np.int64), ("int", np.int32), ("bool", np.bool_)])
def test_integer_and_boolean_casts_truncate_and_take_no_gradient(method, dtype):
    x = mt.tensor(X, requires_grad=True)
    y = getattr(x, method)()
    assert y.dtype == dtype and not y.requires_grad
    np.testing.assert_array_equal(y.numpy(), X.astype(dtype))  # truncation toward 0, as torch
    assert getattr(mt.tensor([1, 0, 3]), method)().dtype == dtype


def test_float_cast_gradient_matches_finite_differences():
    assert_grad_close(lambda t: t.double().pow(3) * 2.0, np.array([0.5, -1.5, 2.0]))


def test_casts_match_torch():
    torch = pytest.importorskip("torch")
    for method in ("float", "double", "half", "long", "int", "bool"):
        mine = getattr(mt.tensor(X), method)().numpy()
        theirs = getattr(torch.tensor(X), method)().numpy()
        assert mine.dtype == theirs.dtype and np.array_equal(mine, theirs), method


def test_numel_dim_and_size():
    t = mt.zeros(2, 3, 4)
    assert t.numel() == 24 and t.dim() == 3 and mt.tensor(1.0).dim() == 0 and mt.tensor(1.0).numel() == 1
    assert t.size == 24 and t.size + 1 == 25 and isinstance(t.size, int)  # NumPy's size, as before
    assert t.size() == (2, 3, 4) and t.size(0) == 2 and t.size(-1) == 4 and t.size(-3) == 2
    assert mt.tensor(1.0).size() == () and mt.zeros(0, 5).size == 0 and mt.zeros(0, 5).size(1) == 5
    for bad in (3, -4):
        with pytest.raises(ValueError, match="size: axis"):
            t.size(bad)
    with pytest.raises(TypeError, match="size: axis must be an int"):
        t.size(1.0)


def test_size_survives_pickle_and_copy():
    size = mt.zeros(2, 3).size
    for other in (pickle.loads(pickle.dumps(size)), copy.deepcopy(size), copy.copy(size)):
        assert other == 6 and other() == (2, 3) and other(-1) == 3


def test_contiguous_is_the_tensor_itself_or_a_copy_in_the_graph():
    x = mt.tensor(X, requires_grad=True)
    assert x.contiguous() is x
    y = x.T.contiguous()
    assert y.data.flags.c_contiguous and not x.T.data.flags.c_contiguous
    np.testing.assert_array_equal(y.numpy(), X.T)
    assert_grad_close(lambda t: t.T.contiguous() * mt.tensor(np.arange(6.0).reshape(3, 2)), X)
    mt.gradgradcheck(lambda t: (t.T.contiguous() ** 2), [mt.tensor(X, requires_grad=True)])


def torch_chunk_sizes(n, chunks):
    """torch.chunk's rule: pieces of ceil(n / chunks), the last smaller; n == 0 gives `chunks` empties."""
    if n == 0:
        return [0] * chunks
    step = -(-n // chunks)
    return [min(step, n - start) for start in range(0, n, step)]


@given(shape=shapes(min_dims=1, max_dims=3, max_side=7), data=st.data())
@settings(max_examples=20, deadline=None)
def test_chunk_follows_torchs_rule_and_passes_the_gradient(shape, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    chunks = data.draw(st.integers(1, 8))
    x = data.draw(float_arrays(shape))
    pieces = mt.tensor(x).chunk(chunks, dim=axis)
    assert [p.shape[axis] for p in pieces] == torch_chunk_sizes(shape[axis], chunks)
    np.testing.assert_array_equal(np.concatenate([p.numpy() for p in pieces], axis=axis), x)
    weights = [data.draw(arrays(p.shape)) for p in pieces]
    assert_grad_close(lambda t: mt.concat([p * w for p, w in zip(t.chunk(chunks, axis), weights)], axis), x)


def test_chunk_edge_cases_and_errors():
    assert [p.shape for p in mt.zeros(0, 2).chunk(3)] == [(0, 2)] * 3
    assert [p.shape for p in mt.arange(7).chunk(5)] == [(2,), (2,), (2,), (1,)]
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="chunks must be a positive int"):
            mt.zeros(4).chunk(bad)
    with pytest.raises(ValueError, match="chunk: axis 1 is out of range"):
        mt.zeros(4).chunk(2, 1)


def test_chunk_matches_torch():
    torch = pytest.importorskip("torch")
    for n in range(0, 9):
        for chunks in range(1, 7):
            mine = [p.shape for p in mt.zeros(3, n).chunk(chunks, -1)]
            assert mine == [tuple(p.shape) for p in torch.zeros(3, n).chunk(chunks, -1)], (n, chunks)


def test_pow_method_and_function():
    x = mt.tensor(np.array([0.5, 1.5, 2.0]), requires_grad=True)
    np.testing.assert_array_equal(x.pow(3).numpy(), (x ** 3).numpy())
    np.testing.assert_array_equal(mt.pow(x, x).numpy(), (x ** x).numpy())
    assert_grad_close(lambda t: t.pow(t) + t.pow(2.5), np.array([0.5, 1.5, 2.0]))


def test_softmax_methods_and_top_level_functions_are_the_fused_ops():
    assert mt.softmax is F.softmax and mt.log_softmax is F.log_softmax
    assert mt.Tensor.softmax is F.softmax and mt.Tensor.log_softmax is F.log_softmax
    x = mt.tensor(X)
    np.testing.assert_array_equal(x.softmax(0).numpy(), F.softmax(x, axis=0).numpy())
    np.testing.assert_array_equal(x.log_softmax(dim=-1).numpy(), F.log_softmax(x, axis=-1).numpy())
    cotangent = np.random.default_rng(0).standard_normal(X.shape)
    assert_grad_close(lambda t: t.softmax(dim=0) * cotangent, X)
    assert_grad_close(lambda t: t.log_softmax(1) * cotangent, X)


def test_cat_is_concat():
    assert mt.cat is mt.concat
    assert mt.cat([mt.zeros(2, 3), mt.ones(1, 3)], dim=0).shape == (3, 3)


def test_methods_match_torch():
    torch = pytest.importorskip("torch")
    x, t = mt.tensor(X), torch.tensor(X)
    assert x.argmax(dim=1, keepdim=True).tolist() == t.argmax(dim=1, keepdim=True).tolist()
    assert x.argmax().item() == t.argmax().item() and x.argmax(0).tolist() == t.argmax(0).tolist()
    assert x.size() == tuple(t.size()) and x.size(-1) == t.size(-1) and x.numel() == t.numel()
    np.testing.assert_allclose(x.softmax(0).numpy(), t.softmax(0).numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.log_softmax(1).numpy(), t.log_softmax(1).numpy(), rtol=1e-12)
    np.testing.assert_allclose(mt.tensor(np.abs(X)).pow(1.5).numpy(), torch.tensor(np.abs(X)).pow(1.5).numpy(),
                               rtol=1e-12)
    np.testing.assert_array_equal(mt.cat([x, x], dim=1).numpy(), torch.cat([t, t], dim=1).numpy())
    for reduction in ("sum", "mean", "amax", "logsumexp", "std", "var"):
        theirs = getattr(torch, reduction)(t, dim=1, keepdim=True)
        name = {"amax": "max"}.get(reduction, reduction)
        kwargs = {"correction": 1} if reduction in ("std", "var") else {}
        mine = getattr(mt, name)(x, dim=1, keepdim=True, **kwargs)
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-12, err_msg=reduction)
