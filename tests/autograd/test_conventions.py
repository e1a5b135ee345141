"""Engine conventions: `dim=` as an alias of `axis=`, `.mT`, and conversions to Python and NumPy."""
import inspect

import numpy as np
import pytest

import minitf as mt
import minitf.functional as F
from minitf.autograd.axes import accepts_dim

X = np.arange(24.0).reshape(2, 3, 4) - 11.5

IDX = np.zeros((2, 2, 4), dtype=np.int64)  # an index along axis 1 (or -2) of X

AXIS_OPS = {  # every public op with an `axis` parameter: name -> call with the axis as keyword `key`
    "sum": lambda t, **k: t.sum(**k),
    "mean": lambda t, **k: mt.mean(t, **k),
    "max": lambda t, **k: t.max(**k),
    "min": lambda t, **k: mt.min(t, **k),
    "amax": lambda t, **k: t.amax(**k),
    "amin": lambda t, **k: mt.amin(t, **k),
    "all": lambda t, **k: (t > 0).all(**k),
    "any": lambda t, **k: mt.any(t > 0, **k),
    "argmax": lambda t, **k: mt.argmax(t, **k),
    "argmin": lambda t, **k: t.argmin(**k),
    "argsort": lambda t, **k: t.argsort(**k),
    "sort": lambda t, **k: mt.concat(list(t.sort(**k)), axis=0),
    "topk": lambda t, **k: mt.concat(list(mt.topk(t, 2, **k)), axis=0),
    "cumsum": lambda t, **k: mt.cumsum(t, **k),
    "cumprod": lambda t, **k: t.cumprod(**k),
    "logsumexp": lambda t, **k: t.logsumexp(**k),
    "var": lambda t, **k: mt.var(t, correction=1, **k),
    "std": lambda t, **k: t.std(**k),
    "norm": lambda t, **k: mt.norm(t, 1, **k),
    "concat": lambda t, **k: mt.concat([t, t], **k),
    "cat": lambda t, **k: mt.cat([t, t], **k),
    "chunk": lambda t, **k: mt.stack([c.sum() for c in t.chunk(2, **k)]),
    "stack": lambda t, **k: mt.stack([t, t], **k),
    "split": lambda t, **k: mt.concat(t.split(1, **k), axis=0),
    "flip": lambda t, **k: mt.flip(t, **k),
    "roll": lambda t, **k: t.roll(1, **k),
    "repeat": lambda t, **k: mt.repeat(t, 2, **k),
    "repeat_interleave": lambda t, **k: t.repeat_interleave(2, **k),
    "expand_dims": lambda t, **k: mt.expand_dims(t, **k),
    "unsqueeze": lambda t, **k: t.unsqueeze(**k),
    "squeeze": lambda t, **k: mt.squeeze(t[:, :1], **k),
    "take": lambda t, **k: mt.take(t, [2, 0], **k),
    "index_select": lambda t, **k: t.index_select(index=[2, 0], **k),
    "take_along_axis": lambda t, **k: mt.take_along_axis(t, IDX + 1, **k),
    "gather": lambda t, **k: t.gather(index=IDX + 2, **k),
    "scatter_add": lambda t, **k: mt.scatter_add(t, index=IDX, src=t, **k),
    "softmax": lambda t, **k: F.softmax(t, **k),
    "log_softmax": lambda t, **k: F.log_softmax(t, **k),
    "cosine_similarity": lambda t, **k: F.cosine_similarity(t, t + 1, **k),
    "normalize": lambda t, **k: F.normalize(t, **k),
}


def _public_axis_ops():
    """Name -> function for every function of minitf, minitf.functional and Tensor taking `axis`."""
    found = {}
    named = [(n, getattr(mt, n)) for n in mt.__all__] + [(n, getattr(F, n)) for n in F.__all__]
    named += [(n, getattr(mt.Tensor, n)) for n in dir(mt.Tensor) if not n.startswith("_")]
    for name, fn in named:
        if callable(fn) and not isinstance(fn, type):
            if "axis" in inspect.signature(fn).parameters:
                found.setdefault(name, fn)
    return found


def test_every_public_axis_op_is_checked_for_the_dim_alias():
    ops = _public_axis_ops()
    assert set(ops) == set(AXIS_OPS), "add new axis-taking ops to AXIS_OPS"
    for name, fn in ops.items():
        assert "dim" not in inspect.signature(fn).parameters, f"{name}: use @accepts_dim, not a dim parameter"


@pytest.mark.parametrize("name", sorted(AXIS_OPS))
@pytest.mark.parametrize("axis", [1, -2])
def test_dim_is_an_alias_of_axis(name, axis):
    op, t = AXIS_OPS[name], mt.tensor(X)
    np.testing.assert_array_equal(op(t, dim=axis).numpy(), op(t, axis=axis).numpy())
    try:  # dim= must not fall back to the default axis: axis 0 (where it is valid) differs
        at_zero = op(t, axis=0)
    except (IndexError, ValueError):
        at_zero = None
    assert at_zero is None or not np.array_equal(at_zero.numpy(), op(t, dim=axis).numpy())
    with pytest.raises(TypeError, match="both axis and dim"):
        op(t, axis=axis, dim=axis)


KEEPDIMS_OPS = sorted(name for name, fn in _public_axis_ops().items()
                      if "keepdims" in inspect.signature(fn).parameters)


def test_the_reductions_are_found_by_their_keepdims_parameter():
    assert {"sum", "mean", "max", "min", "var", "std", "logsumexp", "norm", "argmax", "argmin"} <= set(KEEPDIMS_OPS)


@pytest.mark.parametrize("name", KEEPDIMS_OPS)  # every public op with keepdims, found by its signature
@pytest.mark.parametrize("keep", [True, False])
def test_keepdim_is_an_alias_of_keepdims(name, keep):
    op, t = AXIS_OPS[name], mt.tensor(X)
    expected = op(t, axis=1, keepdims=keep)
    assert expected.shape == ((2, 1, 4) if keep else (2, 4))
    for spelled in (op(t, dim=1, keepdim=keep), op(t, axis=1, keepdim=keep), op(t, dim=1, keepdims=keep)):
        assert spelled.shape == expected.shape
        np.testing.assert_array_equal(spelled.numpy(), expected.numpy())
    with pytest.raises(TypeError, match=f"{name}\\(\\) got both keepdims and keepdim"):
        op(t, dim=1, keepdims=keep, keepdim=keep)


def test_keepdim_and_a_positional_keepdims_clash():
    with pytest.raises(TypeError, match="sum\\(\\) got both keepdims and keepdim"):
        mt.tensor(X).sum(1, True, keepdim=True)
    assert mt.tensor(X).sum(1, True).shape == (2, 1, 4)


def test_accepts_dim_adds_keepdim_only_where_there_is_keepdims():
    @accepts_dim
    def op(x, axis=None):
        return axis

    assert op.dim_aliases == {"dim": "axis"} and mt.sum.dim_aliases == {"dim": "axis", "keepdim": "keepdims"}
    with pytest.raises(TypeError, match="keepdim"):
        op(1, dim=0, keepdim=True)


def test_dim_and_a_positional_axis_clash():
    with pytest.raises(TypeError, match="sum\\(\\) got both axis and dim"):
        mt.tensor(X).sum(0, dim=1)
    assert mt.tensor(X).sum(1).shape == (2, 4)


def test_accepts_dim_keeps_name_and_doc():
    @accepts_dim
    def op(x, axis=None):
        """Doc."""
        return axis

    assert op.__name__ == "op" and op.__doc__ == "Doc." and op(1, dim=3) == 3 and op(1, 2) == 2


def test_pytorch_spellings_are_the_same_functions():
    assert F.one_hot is mt.one_hot and mt.clamp is mt.clip and mt.Tensor.clamp is mt.clip
    assert mt.Tensor.view is not None and mt.Tensor.expand_dims is mt.expand_dims
    t = mt.tensor(X)
    assert t.view(6, 4).shape == (6, 4) and t.expand_dims(1).shape == (2, 1, 3, 4)
    np.testing.assert_array_equal(F.one_hot(mt.tensor(np.array([2, 0])), 3).numpy(), [[0, 0, 1], [1, 0, 0]])


def test_one_definition_of_each_activation_shared_by_minitf_and_functional():
    for name in ("sigmoid", "relu", "tanh"):
        assert getattr(F, name) is getattr(mt, name) is getattr(mt.Tensor, name), name
    np.testing.assert_allclose(mt.sigmoid(mt.tensor([0, 2])).numpy(), 1 / (1 + np.exp([-0.0, -2.0])), rtol=1e-15)


def test_matrix_transpose():
    t = mt.tensor(X, requires_grad=True)
    np.testing.assert_array_equal(t.mT.numpy(), np.swapaxes(X, -1, -2))
    assert mt.gradcheck(lambda a: a.mT, [t])
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        mt.tensor(np.ones(3)).mT


def test_transpose_keeps_numpy_semantics():
    """The trap for PyTorch users: transpose(0, 1) on 2-D is the identity permutation."""
    t = mt.tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(t.transpose(0, 1).numpy(), t.numpy())
    np.testing.assert_array_equal(t.transpose(1, 0).numpy(), t.mT.numpy())


@pytest.mark.parametrize("value, dtype", [(2.5, np.float32), (-3, np.int64), (True, np.bool_)])
def test_python_scalars_from_one_element_tensors(value, dtype):
    for t in (mt.tensor(np.array(value, dtype=dtype)), mt.tensor(np.array([[value]], dtype=dtype))):
        assert float(t) == float(value) and int(t) == int(value) and bool(t) is bool(value)
        assert isinstance(float(t), float) and isinstance(int(t), int)


@pytest.mark.parametrize("convert", [float, int, bool])
def test_python_scalars_need_one_element(convert):
    with pytest.raises(TypeError, match=f"{convert.__name__}\\(\\) needs a tensor with one element.*\\(2,\\)"):
        convert(mt.tensor([1.0, 2.0]))


def test_numpy_asarray_gives_the_data():
    t = mt.tensor(X)
    a = np.asarray(t)
    assert a is t.data and a.dtype == np.float64
    assert np.asarray(t, dtype=np.float32).dtype == np.float32
    copied = np.array(t)  # copy=True by default
    assert copied is not t.data and np.shares_memory(copied, t.data) is False
    np.testing.assert_array_equal(copied, X)
    assert np.asarray(t, copy=False) is t.data
    with pytest.raises(ValueError, match="without a copy"):
        np.asarray(t, dtype=np.float32, copy=False)


def test_numpy_asarray_of_a_gpu_tensor_copies_to_the_host(device):
    t = mt.tensor(X, device=device)
    a = np.asarray(t)
    assert type(a) is np.ndarray
    np.testing.assert_array_equal(a, X)
    if device != "cpu":
        with pytest.raises(ValueError, match="without a copy"):
            np.asarray(t, copy=False)


def test_ndarray_operators_still_defer_to_the_tensor():
    out = np.ones(3) * mt.tensor(np.arange(3.0), requires_grad=True)
    assert isinstance(out, mt.Tensor) and out.requires_grad
