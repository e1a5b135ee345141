"""In-place writes: `t[index] = value` (NumPy semantics) and the version counter that makes
backward() raise when an array a recorded op used was written since."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minitf as mt
from minitf.testing import arrays, shapes
from fake_gpu import FakeCupyArray

MODIFIED = "modified by an in-place operation"


def host(array):
    return mt.backend.to_device(array, "cpu")


def on(device, index):
    """Integer arrays inside an index as tensors on the device (raw arrays are fine on the CPU)."""
    if device == "cpu":
        return index
    parts = tuple(mt.tensor(i, device=device) if isinstance(i, np.ndarray) else i
                  for i in (index if isinstance(index, tuple) else (index,)))
    return parts if isinstance(index, tuple) else parts[0]


@given(data=st.data(), shape=shapes(min_dims=1))
def test_setitem_works_as_numpy(device, data, shape):
    x = data.draw(arrays(shape))
    index = data.draw(hnp.basic_indices(shape) | hnp.integer_array_indices(shape))
    value = data.draw(arrays(np.shape(x[index])))
    scalar = data.draw(st.floats(-3, 3))
    values = [mt.tensor(value, device=device), scalar] + ([value] if device == "cpu" else [])
    for v in values:
        t, expected = mt.tensor(x.copy(), device=device), x.copy()
        t[on(device, index)] = v
        expected[index] = value if isinstance(v, mt.Tensor) else v
        np.testing.assert_array_equal(t.numpy(), expected)
        assert t._version == 1


def test_setitem_with_masks_and_integer_tensors(device):
    x = mt.tensor(np.arange(6).reshape(2, 3), device=device)
    x[x.data % 2 == 0] = -1
    x[mt.tensor(np.array([1]), device=device), 0] = 7
    assert x.tolist() == [[-1, 1, -1], [7, -1, 5]] and x.dtype == np.int64
    assert x._version == 2


def test_writes_to_tensors_that_require_grad_raise():
    w = mt.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad.*no_grad"):
        w[0] = 2.0
    y = w * 2
    with pytest.raises(RuntimeError, match="computed by a recorded op"):
        y[0] = 1.0
    with mt.no_grad():
        with pytest.raises(RuntimeError, match="computed by a recorded op"):
            y[0] = 1.0
        w[0] = 5.0  # a parameter's values, changed as an optimizer would
    assert w.tolist() == [5.0, 1.0, 1.0] and w._version == 1 and w.requires_grad


GRAPHS = {  # recorded ops whose backward needs the values of the constant x
    "mul": lambda x, w: (w * x).sum(),
    "matmul": lambda x, w: (x.reshape(1, 3) @ w.reshape(3, 1)).sum(),
}


@pytest.mark.parametrize("op", ["mul", "matmul"])
@pytest.mark.parametrize("where", ["itself", "a view", "a detached alias"])
def test_writing_a_saved_input_makes_backward_raise(device, op, where):
    w = mt.tensor(np.ones(3), requires_grad=True, device=device)
    x = mt.tensor(np.arange(3.0), device=device)
    loss = GRAPHS[op](x, w)
    target = {"itself": x, "a view": x[1:], "a detached alias": x.detach()}[where]
    target[0] = 10.0
    with pytest.raises(RuntimeError, match=MODIFIED + ".*input of shape"):
        loss.backward()


def test_writing_a_saved_output_makes_backward_raise(device):
    w = mt.tensor(np.zeros(3), requires_grad=True, device=device)
    y = w.exp()  # exp's backward uses its output
    alias = y.detach()
    alias[0] = 5.0
    with pytest.raises(RuntimeError, match=MODIFIED + ".*output of shape \\(3,\\).*`exp`.*version 1"):
        y.sum().backward()


def test_writing_the_indices_of_a_gather_makes_backward_raise(device):
    w = mt.tensor(np.arange(4.0), requires_grad=True, device=device)
    idx = mt.tensor(np.array([0, 0, 1]), device=device)
    out = w.take(idx)
    idx[0] = 3
    with pytest.raises(RuntimeError, match=MODIFIED):
        out.sum().backward()


def test_writes_that_cannot_change_the_gradient_do_not_raise(device):
    w = mt.tensor(np.ones(3), requires_grad=True, device=device)
    x = mt.tensor(np.arange(3.0), device=device)
    other = mt.tensor(np.zeros(3), device=device)
    x[0] = 4.0  # before the graph is made
    loss = (w * x).sum()
    other[0] = 1.0  # memory no op of the graph used
    loss.backward()
    np.testing.assert_array_equal(host(w.grad), [4.0, 1.0, 2.0])


def test_a_retained_graph_refuses_a_second_backward_after_a_write(device):
    w = mt.tensor(np.ones(3), requires_grad=True, device=device)
    x = mt.tensor(np.arange(3.0), device=device)
    loss = (w * x).sum()
    loss.backward(retain_graph=True)
    x[:] = 0.0
    with pytest.raises(RuntimeError, match=MODIFIED):
        loss.backward()


def test_optimizer_steps_count_as_writes(device):
    w = mt.tensor(np.ones(3), requires_grad=True, device=device)
    opt = mt.optim.Adam([w], lr=0.1)
    for _ in range(3):  # the usual loop: a new graph after each step
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward(retain_graph=True)
        opt.step()
    assert w._version == 3
    with pytest.raises(RuntimeError, match=MODIFIED + ".*`mul`"):
        loss.backward()  # the graph of the last loss saw w before the step


def test_load_state_dict_counts_as_a_write():
    layer = mt.nn.Linear(3, 2)
    loss = layer(mt.tensor(np.ones((1, 3), np.float32))).sum()
    layer.load_state_dict({name: np.zeros(p.shape, p.dtype) for name, p in layer.named_parameters()})
    with pytest.raises(RuntimeError, match=MODIFIED):
        loss.backward()


def test_data_is_the_escape_hatch():
    """Writing through `.data` is not tracked (documented): no version bump."""
    x = mt.tensor(np.arange(3.0))
    x.data[0] = 9.0
    assert x._version == 0 and x.tolist() == [9.0, 1.0, 2.0]
    x[1] = 8.0
    assert x._version == 1 and x[0:2]._version == 1  # views share the count


@pytest.mark.parametrize("op", ["getitem", "where", "masked_fill"])
def test_writing_an_index_or_mask_makes_backward_raise(device, op):
    w = mt.tensor(np.arange(4.0), requires_grad=True, device=device)
    selector = mt.tensor(np.array([0, 0, 2]) if op == "getitem" else np.array([True, False, True, False]),
                         device=device)
    out = {"getitem": lambda: w[selector], "where": lambda: mt.where(selector, w, 0.0),
           "masked_fill": lambda: w.masked_fill(selector, 0.0)}[op]()
    selector[1] = 1
    with pytest.raises(RuntimeError, match=MODIFIED):
        out.sum().backward()


# ---- in-place operators and methods: += -= *= /= **=, add_ sub_ mul_ div_ pow_ ... ----------

def test_hand_written_sgd_changes_the_weights():
    """`p -= lr * p.grad` under no_grad writes the module's own parameter (it used to rebind p)."""
    mt.manual_seed(0)
    layer = mt.nn.Linear(3, 2)
    x = mt.tensor(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32))
    params = list(layer.parameters())
    ids, before = [id(p) for p in params], [p.numpy().copy() for p in params]
    (layer(x) ** 2).mean().backward()
    grads = [p.grad.copy() for p in params]
    with mt.no_grad():
        for p in layer.parameters():
            p -= 0.5 * p.grad
    assert [id(p) for p in layer.parameters()] == ids
    for p, b, g in zip(layer.parameters(), before, grads):
        np.testing.assert_array_equal(p.numpy(), b - np.float32(0.5) * g)
        assert p.dtype == np.float32 and p.requires_grad and p.is_leaf
    np.testing.assert_array_equal(layer.weight.numpy(), params[0].numpy())


BINARY = {  # method, augmented operator, NumPy ufunc
    "add_": (lambda t, v: t.add_(v), "__iadd__", np.add),
    "sub_": (lambda t, v: t.sub_(v), "__isub__", np.subtract),
    "mul_": (lambda t, v: t.mul_(v), "__imul__", np.multiply),
    "div_": (lambda t, v: t.div_(v), "__itruediv__", np.true_divide),
    "pow_": (lambda t, v: t.pow_(v), "__ipow__", np.power),
}


@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("form", ["method", "operator"])
@pytest.mark.parametrize("value_shape", [(), (4,), (1, 4), (3, 1), (3, 4)])
@pytest.mark.parametrize("value_dtype", [np.float32, np.float64])
def test_in_place_binary_ops_work_as_numpy_out(device, name, form, value_shape, value_dtype):
    rng = np.random.default_rng(1)
    x = rng.uniform(0.5, 2.0, (3, 4)).astype(np.float32)
    v = rng.uniform(0.5, 2.0, value_shape).astype(value_dtype)
    method, operator, ufunc = BINARY[name]
    expected = x.copy()
    ufunc(expected, v, out=expected, casting="same_kind")
    t = mt.tensor(x.copy(), device=device)
    ident = id(t)
    value = mt.tensor(v, device=device)
    result = method(t, value) if form == "method" else getattr(t, operator)(value)  # what `t += v` calls
    assert result is t and id(t) == ident
    assert t.dtype == np.float32 and t.shape == (3, 4) and t._version == 1
    np.testing.assert_array_equal(host(t.data), expected)


def test_add_and_sub_take_alpha():
    t = mt.tensor(np.array([1.0, 2.0]))
    t.add_(mt.tensor(np.array([1.0, 1.0])), alpha=-0.5).sub_(np.array([2.0, 4.0]), alpha=0.25)
    assert t.tolist() == [0.0, 0.5] and t._version == 2


def test_fill_zero_copy_clamp_work_as_numpy(device):
    x = np.arange(-3.0, 3.0).reshape(2, 3)
    t = mt.tensor(x, device=device)
    assert t.clamp_(-1.5, 1.0) is t
    np.testing.assert_array_equal(host(t.data), np.clip(x, -1.5, 1.0))
    t.clamp_(min=mt.tensor(np.array([0.0, -5.0, 0.5]), device=device))  # a tensor bound, broadcast
    np.testing.assert_array_equal(host(t.data), np.maximum(np.clip(x, -1.5, 1.0), [0.0, -5.0, 0.5]))
    t.clamp_(2.0, 1.0)  # min > max: max wins, as clamp and np.clip
    np.testing.assert_array_equal(host(t.data), np.full((2, 3), 1.0))
    t.copy_(mt.tensor(np.array([7, 8, 9]), device=device))  # broadcast rows, int -> float
    np.testing.assert_array_equal(host(t.data), [[7.0, 8.0, 9.0]] * 2)
    t.fill_(2.5)
    np.testing.assert_array_equal(host(t.data), np.full((2, 3), 2.5))
    t.fill_(mt.tensor(np.array([[-1.0]]), device=device))
    np.testing.assert_array_equal(host(t.data), np.full((2, 3), -1.0))
    t.zero_()
    np.testing.assert_array_equal(host(t.data), np.zeros((2, 3)))
    assert t._version == 7 and t.dtype == np.float64
    with pytest.raises(ValueError, match="clamp_: give at least one"):
        t.clamp_()
    with pytest.raises(ValueError, match=r"fill_: .*one element, got shape \(2,\)"):
        t.fill_(mt.tensor(np.ones(2), device=device))


def test_the_target_keeps_its_dtype_with_same_kind_casting():
    f32 = mt.tensor(np.ones(3, np.float32))
    f32 += np.full(3, 0.1)  # float64 values, stored as float32
    assert f32.dtype == np.float32
    np.testing.assert_array_equal(f32.numpy(), np.ones(3, np.float32) + np.float32(0.1))
    ints = mt.tensor(np.arange(3))
    ints *= 3
    assert ints.dtype == np.int64 and ints.tolist() == [0, 3, 6]
    for write in (lambda: ints.add_(1.5), lambda: ints.div_(2), lambda: ints.copy_(np.ones(3)),
                  lambda: ints.fill_(0.5)):
        with pytest.raises(TypeError, match=r"_ on a tensor of dtype int64: .*float64.*int64"):
            write()
    assert ints.tolist() == [0, 3, 6] and ints._version == 1


@pytest.mark.parametrize("value_shape", [(2, 3), (4,), (2, 1, 1)])
def test_a_value_that_would_grow_the_target_is_an_error(value_shape):
    t = mt.tensor(np.zeros((1, 3)))
    for write in (t.add_, t.mul_, t.copy_, t.__isub__):
        with pytest.raises(ValueError, match=rf"value of shape {re_shape(value_shape)} cannot be "
                                             rf"written into the tensor of shape \(1, 3\)"):
            write(np.ones(value_shape))
    assert t._version == 0 and t.tolist() == [[0.0, 0.0, 0.0]]


def re_shape(shape):
    return str(shape).replace("(", r"\(").replace(")", r"\)")


def test_in_place_ops_follow_the_setitem_rule():
    w = mt.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"\+=: in-place write to a leaf tensor that requires grad.*no_grad"):
        w += 1.0
    with pytest.raises(RuntimeError, match="add_: in-place write to a leaf tensor that requires grad"):
        w.add_(1.0)
    total = 0
    total += w.sum()  # int + Tensor: a new tensor
    with pytest.raises(RuntimeError, match=r"-=: .* computed by a recorded op .*`t = t - u`"):
        total -= w.sum()  # not recorded in place: the error says how to write it
    y = w * 2
    for write in (lambda: y.mul_(2.0), lambda: y.zero_(), lambda: y.clamp_(max=0.0)):
        with pytest.raises(RuntimeError, match="in-place write to a tensor computed by a recorded op"):
            write()
        with mt.no_grad(), pytest.raises(RuntimeError, match="computed by a recorded op"):
            write()
    buffer = mt.tensor(np.zeros(3))
    with pytest.raises(RuntimeError, match=r"\+=: the value written .* requires grad"):
        buffer += w  # the gradient to w would be lost
    with pytest.raises(RuntimeError, match="fill_: the value written .* requires grad"):
        buffer.fill_(w[0])
    with pytest.raises(RuntimeError, match="indexed assignment: the value written .* requires grad"):
        buffer[:] = w
    assert buffer._version == 0 and w._version == 0
    with mt.no_grad():
        w.mul_(3.0).sub_(1.0)
        buffer += w
    assert w.tolist() == [2.0, 2.0, 2.0] and w._version == 2 and w.requires_grad and w.is_leaf
    assert buffer.tolist() == [2.0, 2.0, 2.0]


@pytest.mark.parametrize("write", ["+=", "mul_", "copy_", "clamp_", "zero_"])
def test_a_saved_input_modified_in_place_makes_backward_raise(device, write):
    w = mt.tensor(np.ones(3), requires_grad=True, device=device)
    x = mt.tensor(np.arange(1.0, 4.0), device=device)
    loss = (w * x).sum()
    writes = {"+=": lambda: x.__iadd__(1.0), "mul_": lambda: x.mul_(2.0),
              "copy_": lambda: x.copy_(mt.tensor(np.ones(3), device=device)),
              "clamp_": lambda: x.clamp_(max=1.5), "zero_": lambda: x.zero_()}
    writes[write]()
    with pytest.raises(RuntimeError, match=MODIFIED + ".*input of shape"):
        loss.backward()


def test_writes_through_views_work_as_numpy():
    x, expected = mt.tensor(np.arange(6.0)), np.arange(6.0)
    every_other = x[::2]  # a view of x's memory, as in NumPy
    every_other *= 10.0
    expected[::2] *= 10.0
    np.testing.assert_array_equal(x.numpy(), expected)
    x += x[::-1]  # overlapping operands: NumPy's result
    expected += expected[::-1]
    np.testing.assert_array_equal(x.numpy(), expected)
    x[1:3] += 1.0  # getitem, iadd on the view, then setitem
    expected[1:3] += 1.0
    np.testing.assert_array_equal(x.numpy(), expected)
    assert x._version == every_other._version == 4


def test_a_read_only_view_is_a_clear_error():
    t = mt.tensor(np.ones(3)).expand(2, 3)
    with pytest.raises(ValueError, match=r"\+=: the tensor of shape \(2, 3\) is a read-only view"):
        t += 1.0


def test_in_place_ops_run_on_the_gpu_backend_and_refuse_other_devices(fake_gpu):  # noqa: F811
    """CuPy's ufuncs take the same out= and casting= (the NumPy stand-in of tests/fake_gpu.py for CuPy)."""
    t = mt.tensor(np.arange(3.0), device="cuda")
    t += mt.tensor(np.ones(3), device="cuda")
    t.mul_(2.0).clamp_(max=5.0).copy_(t.clamp(min=3.0))
    assert isinstance(t.data, FakeCupyArray) and t.tolist() == [3.0, 4.0, 5.0] and t._version == 4
    for write in (t.add_, t.copy_, t.__imul__, t.clamp_):
        with pytest.raises(mt.DeviceError, match="different devices"):
            write(np.ones(3))  # a host array
    assert t._version == 4
