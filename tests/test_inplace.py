"""In-place writes: `t[index] = value` (NumPy semantics) and the version counter that makes
backward() raise when an array a recorded op used was written since."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minitf as mt
from minitf.testing import arrays, shapes

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
