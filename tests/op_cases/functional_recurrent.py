"""The fused recurrent layer (minitf.functional.recurrent_layer): LSTM (with and without a projection),
GRU, tanh and relu RNNs, forward and reversed, with and without variable lengths, against a plain
NumPy loop of PyTorch's equations. The output checked is the outputs, h_n and c_n flattened together.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import minitf as mt
from minitf import functional as F
from minitf.testing import OpCase, float_arrays, op_tests

GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def step(mode, x, h, c, w_ih, w_hh, b_ih, b_hh, w_hr):
    """One step of one sequence: (h', c')."""
    if mode == "gru":
        gx, gh = w_ih @ x + b_ih, w_hh @ h + b_hh
        r, u = np.split(sigmoid(gx[:2 * h.size] + gh[:2 * h.size]), 2)
        n = np.tanh(gx[2 * h.size:] + r * gh[2 * h.size:])
        return (1 - u) * n + u * h, None
    a = w_ih @ x + b_ih + w_hh @ h + b_hh
    if mode != "lstm":
        return (np.maximum(a, 0) if mode == "rnn_relu" else np.tanh(a)), None
    i, f, g, o = np.split(a, 4)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    h = sigmoid(o) * np.tanh(c)
    return (h if w_hr is None else w_hr @ h), c


def reference(mode, names, lengths, reverse):
    def run(*arrays):
        given = dict(zip(names, arrays))
        x, h0, w_ih, w_hh, b_ih, b_hh = (given[k] for k in ("x", "h0", "w_ih", "w_hh", "b_ih", "b_hh"))
        c0, w_hr = given.get("c0", np.zeros_like(h0)), given.get("w_hr")
        T, B = x.shape[:2]
        out = np.zeros((T, B, h0.shape[1]))
        h_n, c_n = np.zeros_like(h0), np.zeros_like(c0)
        for b in range(B):
            steps = range(lengths[b])
            h, c = h0[b], c0[b]
            for t in (reversed(steps) if reverse else steps):
                h, c = step(mode, x[t, b], h, c, w_ih, w_hh, b_ih, b_hh, w_hr)
                out[t, b] = h
            h_n[b], c_n[b] = h, (c if c is not None else 0)
        parts = [out.ravel(), h_n.ravel()] + ([c_n.ravel()] if mode == "lstm" else [])
        return np.concatenate(parts)
    return run


@st.composite
def layer_cases(draw):
    mode = draw(st.sampled_from(sorted(GATES)))
    T, B, n_in, H = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    P = draw(st.integers(1, H - 1)) if mode == "lstm" and H > 1 and draw(st.booleans()) else H
    G = GATES[mode]
    small = dict(min_value=-1.0, max_value=1.0)
    shapes = {"x": (T, B, n_in), "h0": (B, P), "c0": (B, H), "w_ih": (G * H, n_in), "w_hh": (G * H, P),
              "b_ih": (G * H,), "b_hh": (G * H,), "w_hr": (P, H)}
    if mode != "lstm":
        del shapes["c0"]
    if P == H:
        del shapes["w_hr"]
    arrays = {name: draw(float_arrays(shape, **small)) for name, shape in shapes.items()}
    if mode == "rnn_relu":  # keep pre-activations off relu's kink
        arrays["b_ih"] = arrays["b_ih"] + np.where(arrays["b_ih"] >= 0, 0.1, -0.1)
    lengths = np.array(draw(st.lists(st.integers(1, T), min_size=B, max_size=B))) if draw(st.booleans()) else None
    reverse = draw(st.booleans())
    names = list(arrays)

    def call(*tensors):
        given = dict(zip(names, tensors))
        out, h_n, c_n = F.recurrent_layer(mode, given.pop("x"), given.pop("h0"), given.pop("c0", None), **given,
                                          lengths=lengths, reverse=reverse)
        return mt.concat([t.reshape(-1) for t in (out, h_n, c_n) if t is not None], axis=0)
    full = np.full(B, T) if lengths is None else lengths
    return OpCase(call, tuple(arrays.values()), reference(mode, names, full, reverse))


OPS = op_tests({"recurrent_layer": layer_cases()},
               examples={"forward": 15, "gradient": 12, "gradgrad": 6, "float32": 4, "float64": 4},
               options={"float32": {"float32_tol": 1e-4}})
