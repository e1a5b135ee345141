"""nn.RNN/LSTM/GRU and their cells against PyTorch's in float64: a torch state dict loads under the
same keys and gives the same outputs, final states and gradients (variable lengths against packed
sequences); the double backward of the fused layer too. Skipped without PyTorch."""
from __future__ import annotations

import numpy as np
import pytest

import minitf as mt
from minitf import nn

torch = pytest.importorskip("torch")
R = np.random.default_rng(3)
CONFIGS = [("LSTM", dict(num_layers=2, bidirectional=True, proj_size=3)), ("LSTM", dict(batch_first=True)),
           ("GRU", dict(num_layers=2, bidirectional=True, batch_first=True)),
           ("RNN", dict(nonlinearity="relu", num_layers=2)),
           ("RNN", dict(bias=False, bidirectional=True, batch_first=True)), ("GRU", dict(bias=False))]


def pair(cls, **kwargs):
    theirs = getattr(torch.nn, cls)(4, 5, dtype=torch.float64, **kwargs)
    mine = getattr(nn, cls)(4, 5, **kwargs).to(np.float64)
    mine.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return mine, theirs


def run_torch(module, x, lengths, batch_first):
    if lengths is None:
        return module(x)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor(lengths), batch_first=batch_first,
                                                     enforce_sorted=False)
    out, state = module(packed)
    steps = x.shape[1] if batch_first else x.shape[0]
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=batch_first, total_length=steps)
    return out, state


def states(state):
    return state if isinstance(state, tuple) else (state,)


@pytest.mark.parametrize("cls, kwargs", CONFIGS)
@pytest.mark.parametrize("with_lengths", [False, True])
def test_outputs_states_and_gradients_match_torch(cls, kwargs, with_lengths):
    mine, theirs = pair(cls, **kwargs)
    batch_first = kwargs.get("batch_first", False)
    x = R.standard_normal((3, 6, 4) if batch_first else (6, 3, 4))
    lengths = np.array([6, 2, 4]) if with_lengths else None
    xm, xt = mt.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, state = mine(xm, lengths=lengths)
    out_t, state_t = run_torch(theirs, xt, lengths, batch_first)
    np.testing.assert_allclose(out.numpy(), out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    for a, b in zip(states(state), states(state_t)):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = R.standard_normal(out.shape)
    weights = [R.standard_normal(s.shape) for s in states(state)]
    loss = (out * mt.tensor(g)).sum() + sum((s * mt.tensor(w)).sum() for s, w in zip(states(state), weights))
    loss_t = (out_t * torch.tensor(g)).sum() + sum((s * torch.tensor(w)).sum()
                                                  for s, w in zip(states(state_t), weights))
    loss.backward()
    loss_t.backward()
    np.testing.assert_allclose(xm.grad, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    for (name, p), (_, q) in zip(mine.named_parameters(), theirs.named_parameters()):
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("cls", ["LSTMCell", "GRUCell", "RNNCell"])
def test_cells_match_torch(cls):
    theirs = getattr(torch.nn, cls)(4, 5, dtype=torch.float64)
    mine = getattr(nn, cls)(4, 5).to(np.float64)
    mine.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x, h = R.standard_normal((3, 4)), R.standard_normal((3, 5))
    state = (mt.tensor(h), mt.tensor(h * 0.5)) if cls == "LSTMCell" else mt.tensor(h)
    state_t = (torch.tensor(h), torch.tensor(h * 0.5)) if cls == "LSTMCell" else torch.tensor(h)
    for a, b in zip(states(mine(mt.tensor(x), state)), states(theirs(torch.tensor(x), state_t))):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
def test_double_backward_matches_torch(cls):
    """The gradient of a projection of the input's gradient (create_graph), as a gradient penalty."""
    mine, theirs = pair(cls)
    x = R.standard_normal((3, 2, 4))
    v = R.standard_normal(x.shape)
    xm, xt = mt.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (gx,) = mt.autograd.grad(mine(xm)[0].tanh().sum(), xm, create_graph=True)
    (gx_t,) = torch.autograd.grad(theirs(xt)[0].tanh().sum(), xt, create_graph=True)
    (gx * mt.tensor(v)).sum().backward()
    (gx_t * torch.tensor(v)).sum().backward()
    np.testing.assert_allclose(xm.grad, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    for (name, p), (_, q) in zip(mine.named_parameters(), theirs.named_parameters()):
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
