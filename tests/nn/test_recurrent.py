"""nn.RNN/LSTM/GRU and their cells without PyTorch: shapes, PyTorch's state-dict keys, variable lengths,
batch_first and unbatched layouts, dropout between layers, bad arguments (tests/nn/test_recurrent_torch.py
compares values and gradients with PyTorch's)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minitf as mt
from minitf import nn

R = np.random.default_rng(0)


def layer(cls, *args, **kwargs):
    return getattr(nn, cls)(*args, **kwargs).to(np.float64)


@settings(max_examples=15, deadline=None)
@given(cls=st.sampled_from(["RNN", "LSTM", "GRU"]), layers=st.integers(1, 2), bidirectional=st.booleans(),
       batch_first=st.booleans(), proj=st.booleans(), T=st.integers(1, 4), B=st.integers(1, 3))
def test_output_and_state_shapes(cls, layers, bidirectional, batch_first, proj, T, B):
    proj_size = 2 if proj and cls == "LSTM" else 0
    m = layer(cls, 3, 4, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first,
              **({"proj_size": proj_size} if cls == "LSTM" else {}))
    D, P = 2 if bidirectional else 1, proj_size or 4
    x = mt.tensor(R.standard_normal((B, T, 3) if batch_first else (T, B, 3)))
    out, state = m(x)
    assert out.shape == ((B, T, D * P) if batch_first else (T, B, D * P))
    h_n = state[0] if cls == "LSTM" else state
    assert h_n.shape == (layers * D, B, P)
    if cls == "LSTM":
        assert state[1].shape == (layers * D, B, 4)


def test_state_dict_keys_are_pytorchs():
    m = nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2)
    keys = [f"{kind}_l{k}{suffix}" for k in range(2) for suffix in ("", "_reverse")
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")]
    assert list(m.state_dict()) == keys
    assert m.weight_ih_l1.shape == (16, 4) and m.weight_hh_l0_reverse.shape == (16, 2)
    assert list(nn.GRUCell(3, 4).state_dict()) == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    assert list(nn.RNN(3, 4, bias=False).state_dict()) == ["weight_ih_l0", "weight_hh_l0"]


def test_initialization_is_uniform_in_one_over_sqrt_hidden():
    m = nn.GRU(3, 16)
    for p in m.parameters():
        assert np.abs(p.numpy()).max() <= 0.25 and np.abs(p.numpy()).max() > 0.2


@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_variable_lengths_equal_each_sequence_run_alone(cls, bidirectional):
    """With lengths, each sequence's outputs and final state are those of the sequence run alone
    (no padding), and its outputs after its length are zeros."""
    m = layer(cls, 3, 4, num_layers=2, bidirectional=bidirectional)
    x, lengths = R.standard_normal((5, 3, 3)), np.array([5, 2, 3])
    out, state = m(mt.tensor(x), lengths=lengths)
    h_n = state[0] if cls == "LSTM" else state
    for b, n in enumerate(lengths):
        alone, alone_state = m(mt.tensor(x[:n, b:b + 1]))
        alone_h = alone_state[0] if cls == "LSTM" else alone_state
        np.testing.assert_allclose(out.numpy()[:n, b], alone.numpy()[:, 0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(h_n.numpy()[:, b], alone_h.numpy()[:, 0], rtol=1e-12, atol=1e-12)
        assert not out.numpy()[n:, b].any()


def test_batch_first_and_unbatched_layouts_agree():
    m = layer("LSTM", 3, 4, num_layers=2)
    x = R.standard_normal((4, 2, 3))
    out, (h, c) = m(mt.tensor(x))
    m.batch_first = True
    out_bf, (h_bf, _) = m(mt.tensor(x.swapaxes(0, 1)))
    np.testing.assert_allclose(out_bf.numpy().swapaxes(0, 1), out.numpy(), rtol=1e-12)
    np.testing.assert_allclose(h_bf.numpy(), h.numpy(), rtol=1e-12)
    m.batch_first = False
    one, (h1, c1) = m(mt.tensor(x[:, 0]))
    assert one.shape == (4, 4) and h1.shape == (2, 4) and c1.shape == (2, 4)
    np.testing.assert_allclose(one.numpy(), out.numpy()[:, 0], rtol=1e-12)


def test_initial_state_is_used_and_its_gradient_flows():
    m = layer("GRU", 3, 4)
    x = mt.tensor(R.standard_normal((3, 2, 3)))
    h0 = mt.tensor(R.standard_normal((1, 2, 4)), requires_grad=True)
    out, _ = m(x, h0)
    assert not np.allclose(out.numpy(), m(x)[0].numpy())
    (out * mt.tensor(R.standard_normal(out.shape))).sum().backward()
    assert h0.grad is not None and np.abs(h0.grad).sum() > 0


def test_dropout_acts_between_layers_only_in_training():
    m = layer("LSTM", 3, 8, num_layers=2, dropout=0.5)
    x = mt.tensor(R.standard_normal((4, 2, 3)))
    m.eval()
    first, second = m(x)[0].numpy(), m(x)[0].numpy()
    np.testing.assert_array_equal(first, second)
    m.train()
    assert not np.allclose(m(x)[0].numpy(), first)
    one_layer = layer("LSTM", 3, 8, dropout=0.5)  # nothing between: dropout has no effect
    np.testing.assert_array_equal(one_layer(x)[0].numpy(), one_layer(x)[0].numpy())


@pytest.mark.parametrize("cls, mode", [("LSTMCell", "LSTM"), ("GRUCell", "GRU"), ("RNNCell", "RNN")])
def test_a_cell_is_one_step_of_the_layer(cls, mode):
    cell, full = layer(cls, 3, 4), layer(mode, 3, 4)
    full.load_state_dict({f"{k}_l0": v for k, v in cell.state_dict().items()})
    x = R.standard_normal((1, 2, 3))
    out, _ = full(mt.tensor(x))
    step = cell(mt.tensor(x[0]))
    np.testing.assert_allclose((step[0] if mode == "LSTM" else step).numpy(), out.numpy()[0], rtol=1e-12)


def test_bad_arguments_name_what_is_wrong():
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        nn.LSTM(3, 0)
    with pytest.raises(ValueError, match="proj_size"):
        nn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="dropout"):
        nn.GRU(3, 4, dropout=1.5)
    m = layer("LSTM", 3, 4)
    with pytest.raises(ValueError, match=r"input must be \(steps, batch, 3\)"):
        m(mt.tensor(np.zeros((2, 2, 5))))
    with pytest.raises(ValueError, match="hx must be a tuple"):
        m(mt.tensor(np.zeros((2, 2, 3))), mt.tensor(np.zeros((1, 2, 4))))
    with pytest.raises(ValueError, match=r"c0 has shape \(1, 3, 4\), expected \(1, 2, 4\)"):
        m(mt.tensor(np.zeros((2, 2, 3))), (mt.tensor(np.zeros((1, 2, 4))), mt.tensor(np.zeros((1, 3, 4)))))
    with pytest.raises(ValueError, match=r"lengths must be in 1..2"):
        m(mt.tensor(np.zeros((2, 2, 3))), lengths=[2, 3])
    with pytest.raises(ValueError, match="lengths must be 2 integers"):
        m(mt.tensor(np.zeros((2, 2, 3))), lengths=[2.0, 1.0])
    with pytest.raises(TypeError, match="float32"):
        nn.GRU(3, 4)(mt.tensor(np.zeros((2, 2, 3))))  # a float32 layer, a float64 input


@pytest.mark.parametrize("cls", ["LSTM", "GRU", "RNN"])
def test_the_cupy_path_runs_on_device_arrays_and_equals_the_cpu(fake_gpu, cls):
    """On the NumPy stand-in for CuPy (tests/fake_gpu.py): every array stays a device array and the
    outputs and gradients equal the CPU's (the real GPU runs in tools/gpu_checks.sh)."""
    from fake_gpu import FakeCupyArray

    m = layer(cls, 3, 4, num_layers=2, bidirectional=True)
    x, g = R.standard_normal((5, 2, 3)), R.standard_normal((5, 2, 8))
    results = []
    for on_device in (False, True):
        for p in m.parameters():
            p.data, p.grad = (fake_gpu(p.data) if on_device else np.asarray(p.data)), None
        xt = mt.Tensor(fake_gpu(x) if on_device else x, requires_grad=True)
        out, _ = m(xt, lengths=np.array([5, 3]))
        out.backward(mt.Tensor(fake_gpu(g) if on_device else g))
        assert isinstance(out.data, FakeCupyArray) == on_device and isinstance(xt.grad, FakeCupyArray) == on_device
        results.append([np.asarray(out.data), np.asarray(xt.grad)] + [np.asarray(p.grad) for p in m.parameters()])
    for on_cpu, on_gpu in zip(*results):
        np.testing.assert_allclose(on_gpu, on_cpu, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
def test_nan_in_the_padding_never_reaches_the_gradients(cls):
    """Values after a sequence's length are not read (as packed sequences): nan there leaves every
    output and gradient finite."""
    m = layer(cls, 3, 4, bidirectional=True)
    x = R.standard_normal((5, 2, 3))
    x[3:, 1] = np.nan
    xt = mt.tensor(x, requires_grad=True)
    out, _ = m(xt, lengths=[5, 3])
    (out * mt.tensor(R.standard_normal(out.shape))).sum().backward()
    assert np.isfinite(out.numpy()).all() and np.isfinite(xt.grad[:3]).all() and not xt.grad[3:, 1].any()
    assert all(np.isfinite(p.grad).all() for p in m.parameters())


def test_states_and_inputs_of_the_wrong_kind_are_refused():
    x, h = mt.tensor(np.zeros((2, 3))), mt.tensor(np.zeros((2, 4)))
    with pytest.raises(TypeError, match=r"LSTMCell: hx must be a tuple \(h, c\)"):
        layer("LSTMCell", 3, 4)(x, h)  # PyTorch refuses it too (one Tensor would serve as both)
    with pytest.raises(ValueError, match=r"hx must be a tuple \(h0, c0\) of Tensors"):
        layer("LSTM", 3, 4)(x[None], (h[None], None))
    with pytest.raises(TypeError, match="input must be a minitf Tensor, got numpy.ndarray"):
        layer("GRU", 3, 4)(np.zeros((5, 2, 3)))
    with pytest.raises(TypeError, match="hx must hold minitf Tensors"):
        layer("GRUCell", 3, 4)(x, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="at least one step and one sequence"):
        layer("GRU", 3, 4)(mt.tensor(np.zeros((5, 0, 3))))


def test_pytorchs_weight_bookkeeping_calls_work():
    m = nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2)
    m.flatten_parameters()  # a no-op kept for ported code
    assert [len(ws) for ws in m.all_weights] == [5, 5, 5, 5]
    assert m.all_weights[1][1] is m.weight_hh_l0_reverse
