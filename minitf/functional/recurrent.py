"""One recurrent layer in one direction as one autograd node: LSTM, GRU or Elman RNN (tanh, relu).

The input's projection for all steps is one product; the steps run in a loop over arrays
(recurrent_cells.py); the backward goes through time analytically in one pass and ends with one
product per weight. Its differentiable rule (create_graph) recomputes the layer from tensor ops
(`composite`, also the reference of the tests) and differentiates that.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend, cpu
from ..autograd import Tensor, concat, enable_grad, grad, sigmoid, stack, tanh, where
from . import recurrent_cells as cells
from .dtypes import check_dtypes

__all__ = ["recurrent_layer"]

MODES = tuple(cells.GATES)


def recurrent_layer(mode: str, x: Tensor, h0: Tensor, c0: Tensor | None, w_ih: Tensor, w_hh: Tensor,
                    b_ih: Tensor | None = None, b_hh: Tensor | None = None, w_hr: Tensor | None = None,
                    lengths: Any = None, reverse: bool = False) -> tuple[Tensor, Tensor, Tensor | None]:
    """Run one layer over a batch of sequences; return (outputs, h_n, c_n), PyTorch's equations.

    mode: "lstm", "gru", "rnn_tanh" or "rnn_relu". x: (T, B, I), time first. h0: (B, P); c0: (B, H)
    for an LSTM, else None. w_ih: (G H, I), w_hh: (G H, P), b_ih, b_hh: (G H,) with G gates (4, 3, 1);
    w_hr: (P, H), an LSTM's projection (P = H without it). lengths: (B,) ints in 1..T, or None (all T):
    sequence b ends after lengths[b] steps, its outputs after that are zeros and h_n, c_n are its state
    at its last step. reverse: run from each sequence's last real step to its first.
    Returns outputs (T, B, P), h_n (B, P), c_n (B, H) or None.
    """
    lengths = _check(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, lengths)
    active = None if lengths is None else backend.get_array_module(lengths).arange(x.shape[0])[:, None, None] \
        < lengths[None, :, None]
    if active is not None:  # padding never reaches the sums of the weight gradients (nan in it stays out)
        x = where(active, x, 0.0)
    order = _reversal(x.shape[0], lengths) if reverse else None
    if order is not None:
        x = x[order]
    z = _fused(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, active)
    P = h0.shape[-1]
    outputs = z[:, :, :P] if mode == "lstm" else z
    if active is not None:
        outputs = outputs * active.astype(outputs.dtype)
    if order is not None:
        outputs = outputs[order]
    return outputs, z[-1, :, :P], (z[-1, :, P:] if mode == "lstm" else None)


def _fused(mode: str, x: Tensor, h0: Tensor, c0: Tensor | None, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None,
           b_hh: Tensor | None, w_hr: Tensor | None, active: Any) -> Tensor:
    """The node: Z (T, B, P [+ H]), the state after every step."""
    T, B, n_in = x.shape
    x2 = x.data.reshape(-1, n_in)
    folded = [b.data for b in (b_ih, b_hh if mode != "gru" else None) if b is not None]
    xproj = cpu.matmul(x2, w_ih.data.T).reshape(T, B, -1)
    for b in folded:
        xproj += b
    if mode == "lstm":
        z, saved = cells.lstm_forward(xproj, h0.data, c0.data, w_hh.data, _data(w_hr), active)
    elif mode == "gru":
        z, saved = cells.gru_forward(xproj, h0.data, w_hh.data, _data(b_hh), active)
    else:
        z, saved = cells.rnn_forward(xproj, h0.data, w_hh.data, mode == "rnn_relu", active)
    named = {"x": x, "h0": h0, "c0": c0, "w_ih": w_ih, "w_hh": w_hh, "b_ih": b_ih, "b_hh": b_hh, "w_hr": w_hr}
    names = [name for name, t in named.items() if t is not None]

    def backward(gz):
        if mode == "lstm":
            d = cells.lstm_backward(gz, z, saved, h0.data, c0.data, w_hh.data, _data(w_hr), active)
        elif mode == "gru":
            d = cells.gru_backward(gz, z, saved, h0.data, w_hh.data, active)
        else:
            d = cells.rnn_backward(gz, z, saved, h0.data, w_hh.data, mode == "rnn_relu", active)
        d_x = d["xproj"].reshape(T * B, -1)
        d["x"], d["w_ih"], d["b_ih"] = cpu.linear_grads(
            d_x, x2, w_ih.data, input_grad=x.requires_grad, weight_grad=w_ih.requires_grad, bias_grad=True)
        d["x"] = None if d["x"] is None else d["x"].reshape(x.shape)
        if b_hh is not None:
            d["b_hh"] = d["b_ih"] if mode != "gru" else d["hidden"].reshape(T * B, -1).sum(axis=0)
        return tuple(d[name] for name in names)

    def higher(g, out):
        inputs = [named[name] for name in names]
        wanted = [t for t in inputs if t.requires_grad]
        with enable_grad():
            again = composite(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, active)
            found = iter(grad([again], wanted, [g], create_graph=True, allow_unused=True))
        return tuple(next(found) if t.requires_grad else None for t in inputs)

    return Tensor.from_op(z, tuple(named[name] for name in names), backward, higher)


def composite(mode: str, x: Tensor, h0: Tensor, c0: Tensor | None, w_ih: Tensor, w_hh: Tensor,
              b_ih: Tensor | None, b_hh: Tensor | None, w_hr: Tensor | None, active: Any) -> Tensor:
    """The fused node's Z written step by step with tensor ops (a graph of small ops: slow, but
    differentiable to any order)."""
    H = w_hh.shape[0] // cells.GATES[mode]
    xproj = x @ w_ih.T
    for b in (b_ih, b_hh if mode != "gru" else None):
        if b is not None:
            xproj = xproj + b
    h, c, states = h0, c0, []
    for t in range(x.shape[0]):
        a = xproj[t]
        if mode == "lstm":
            a = a + h @ w_hh.T
            i, f, o = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), sigmoid(a[:, 3 * H:])
            c_new = f * c + i * tanh(a[:, 2 * H:3 * H])
            h_new = o * tanh(c_new)
            h_new = h_new if w_hr is None else h_new @ w_hr.T
        elif mode == "gru":
            hh = h @ w_hh.T if b_hh is None else h @ w_hh.T + b_hh
            r, u = sigmoid(a[:, :H] + hh[:, :H]), sigmoid(a[:, H:2 * H] + hh[:, H:2 * H])
            n = tanh(a[:, 2 * H:] + r * hh[:, 2 * H:])
            h_new = n + u * (h - n)
        else:
            pre = a + h @ w_hh.T
            h_new = pre.relu() if mode == "rnn_relu" else tanh(pre)
        if active is not None:
            h_new = where(active[t], h_new, h)
            c_new = None if c is None else where(active[t], c_new, c)
        h, c = h_new, (c_new if mode == "lstm" else None)
        states.append(h if c is None else concat([h, c], axis=-1))
    return stack(states, axis=0)


def _data(t: Tensor | None) -> Any:
    return None if t is None else t.data


def _reversal(T: int, lengths: Any) -> tuple[Any, Any] | None:
    """The index (steps (T, B), sequences (1, B)) that reverses each sequence's first lengths[b] steps
    and leaves its padding in place (its own inverse)."""
    if lengths is None:
        return (slice(None, None, -1),)
    xp = backend.get_array_module(lengths)
    t = xp.arange(T)[:, None]
    steps = xp.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)
    return steps, xp.arange(lengths.shape[0])[None, :]


def _check(mode: str, x: Tensor, h0: Tensor, c0: Tensor | None, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None,
           b_hh: Tensor | None, w_hr: Tensor | None, lengths: Any) -> Any:
    """ValueError/TypeError naming the argument whose shape, dtype or value is wrong; the lengths
    as an integer array on x's device (None without lengths)."""
    if mode not in MODES:
        raise ValueError(f"recurrent_layer: mode must be one of {MODES}, got {mode!r}")
    given = {"x": x, "h0": h0, "c0": c0, "w_ih": w_ih, "w_hh": w_hh, "b_ih": b_ih, "b_hh": b_hh, "w_hr": w_hr}
    for name, t in given.items():
        if t is not None and not isinstance(t, Tensor):
            raise TypeError(f"{mode}: {name} must be a minitf Tensor, got {type(t).__module__}.{type(t).__name__} "
                            "(wrap arrays with minitf.tensor)")
    if x.ndim != 3 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{mode}: input must be (steps, batch, features) with at least one step and one "
                         f"sequence, got {x.shape}")
    T, B, n_in = x.shape
    G, P = cells.GATES[mode], h0.shape[-1]
    if w_hh.ndim != 2 or w_hh.shape[0] % G:
        raise ValueError(f"{mode}: w_hh has shape {tuple(w_hh.shape)}, expected ({G} * hidden, {P}) ({G} gates)")
    H = w_hh.shape[0] // G
    expected = {"w_ih": (w_ih, (G * H, n_in)), "w_hh": (w_hh, (G * H, P)), "b_ih": (b_ih, (G * H,)),
                "b_hh": (b_hh, (G * H,)), "h0": (h0, (B, P)), "c0": (c0, (B, H)), "w_hr": (w_hr, (P, H))}
    if (c0 is None) == (mode == "lstm"):
        raise ValueError(f"{mode}: c0 is {'required' if mode == 'lstm' else 'only for an LSTM'}")
    if w_hr is not None and mode != "lstm":
        raise ValueError(f"{mode}: w_hr (a projection) is only for an LSTM")
    for name, (t, shape) in expected.items():
        if t is not None and tuple(t.shape) != shape:
            raise ValueError(f"{mode}: {name} has shape {tuple(t.shape)}, expected {shape} (steps {T}, batch {B}, "
                             f"input {n_in}, hidden {H}, state {P})")
    if w_hr is None and P != H:
        raise ValueError(f"{mode}: the state h0 has {P} features but the layer {H} (give w_hr for a projection)")
    check_dtypes(mode, x, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh, w_hr=w_hr, h0=h0, c0=c0)
    backend.check_same_device(mode, *(t.data for t in (x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr) if t is not None))
    return None if lengths is None else _lengths(lengths, T, B, x.data)


def _lengths(lengths: Any, T: int, B: int, like: Any) -> Any:
    xp = backend.get_array_module(like)
    values = np.asarray(backend.to_device(lengths.data if isinstance(lengths, Tensor) else lengths, "cpu"))
    if values.shape != (B,) or values.dtype.kind not in "iu":
        raise ValueError(f"lengths must be {B} integers (one per sequence), got shape {values.shape} "
                         f"dtype {values.dtype}")
    if values.size and (values.min() < 1 or values.max() > T):
        raise ValueError(f"lengths must be in 1..{T} (the steps of the input), got {values.min()}..{values.max()}")
    return xp.asarray(values.astype(np.int64))
