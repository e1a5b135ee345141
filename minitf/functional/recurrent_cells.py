"""The array math of the fused recurrent layers: all steps of one layer in one direction, forward and
backward through time side by side (NumPy or CuPy arrays; PyTorch's gate order and equations).

Shapes: T steps, B sequences, H hidden units, P the state's size (H, or proj_size for an LSTM with a
projection). `xproj` (T, B, G*H) is the input's projection for every step at once (one product, done by
the caller) with the biases PyTorch adds outside the recurrence folded in. Each forward returns
Z (T, B, P [+ H]): the state after every step (an LSTM's h then c), and what its backward needs.
`active` (T, B, 1) bool, or None: where a sequence has ended (t >= its length) the state is carried
unchanged, so Z[T - 1] is each sequence's state at its last real step.
"""
from __future__ import annotations

from typing import Any

from .. import backend

GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}


def sigmoid_(a: Any) -> Any:
    """a <- sigmoid(a) in place, as 0.5 tanh(a / 2) + 0.5 (no overflow for large |a|)."""
    xp = backend.get_array_module(a)
    a *= 0.5
    xp.tanh(a, out=a)
    a *= 0.5
    a += 0.5
    return a


def _carry(z_t: Any, new: Any, previous: Any, active_t: Any) -> None:
    """z_t <- the new state where the sequence is active, the previous one where it has ended."""
    xp = backend.get_array_module(new)
    z_t[...] = new if active_t is None else xp.where(active_t, new, previous)


def _split_carry(g: Any, active_t: Any) -> tuple[Any, Any]:
    """A state's gradient -> (the part that reaches the step's computation, the part carried past it)."""
    if active_t is None:
        return g, 0.0
    return g * active_t, g * ~active_t


def previous_states(z: Any, first: Any, end: int | None = None) -> Any:
    """(T, B, n): the state before each step (`first` at step 0), from Z's columns [:end]."""
    xp = backend.get_array_module(z)
    return xp.concatenate([first[None], z[:-1, :, :end]], axis=0)


# ---- LSTM: i, f, g, o = sigma, sigma, tanh, sigma of xproj_t + W_hh h; c' = f c + i g; h' = W_hr (o tanh c') --
def lstm_forward(xproj: Any, h0: Any, c0: Any, w_hh: Any, w_hr: Any, active: Any) -> tuple[Any, dict]:
    xp = backend.get_array_module(xproj)
    T, B, P, H = xproj.shape[0], xproj.shape[1], h0.shape[-1], c0.shape[-1]
    z = xp.empty((T, B, P + H), dtype=xproj.dtype)
    acts = xproj  # overwritten step by step with the gates' values
    m = xp.empty((T, B, H), dtype=xproj.dtype) if w_hr is not None else None
    h, c, w_hh_t = h0, c0, w_hh.T
    for t in range(T):
        a = acts[t]
        a += h @ w_hh_t
        sigmoid_(a[:, :2 * H])
        xp.tanh(a[:, 2 * H:3 * H], out=a[:, 2 * H:3 * H])
        sigmoid_(a[:, 3 * H:])
        i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        c_new = f * c + i * g
        h_new = o * xp.tanh(c_new)
        if m is not None:
            m[t] = h_new
            h_new = h_new @ w_hr.T
        active_t = None if active is None else active[t]
        _carry(z[t, :, :P], h_new, h, active_t)
        _carry(z[t, :, P:], c_new, c, active_t)
        h, c = z[t, :, :P], z[t, :, P:]
    return z, {"acts": acts, "m": m}


def lstm_backward(gz: Any, z: Any, saved: dict, h0: Any, c0: Any, w_hh: Any, w_hr: Any,
                  active: Any) -> dict:
    xp = backend.get_array_module(gz)
    acts, m = saved["acts"], saved["m"]
    T, P, H = gz.shape[0], h0.shape[-1], c0.shape[-1]
    d_pre = xp.empty_like(acts)  # the gradient of the gates' pre-activations, (T, B, 4H)
    d_proj = xp.empty(gz.shape[:2] + (P,), dtype=gz.dtype) if w_hr is not None else None
    dh, dc = xp.zeros_like(h0), xp.zeros_like(c0)
    for t in reversed(range(T)):
        active_t = None if active is None else active[t]
        dh_t, carried_h = _split_carry(gz[t, :, :P] + dh, active_t)
        dc_t, carried_c = _split_carry(gz[t, :, P:] + dc, active_t)
        a = acts[t]
        i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        c_prev = z[t - 1, :, P:] if t else c0
        if w_hr is not None:
            d_proj[t] = dh_t
            dh_t = dh_t @ w_hr
        tanh_c = xp.tanh(f * c_prev + i * g)  # c' itself (z holds the carried state where inactive)
        dc_t = dc_t + dh_t * o * (1 - tanh_c * tanh_c)
        d = d_pre[t]
        d[:, :H] = dc_t * g * i * (1 - i)
        d[:, H:2 * H] = dc_t * c_prev * f * (1 - f)
        d[:, 2 * H:3 * H] = dc_t * i * (1 - g * g)
        d[:, 3 * H:] = dh_t * tanh_c * o * (1 - o)
        dh = d @ w_hh + carried_h
        dc = dc_t * f + carried_c
    grads = {"xproj": d_pre, "h0": dh, "c0": dc, "w_hh": _weight_grad(d_pre, previous_states(z, h0, P))}
    if w_hr is not None:
        grads["w_hr"] = _weight_grad(d_proj, m)
    return grads


# ---- GRU: r, z = sigma(xproj_t + W_hh h + b_hh); n = tanh(xproj_n + r (W_hn h + b_hn)); h' = n + z (h - n) ----
def gru_forward(xproj: Any, h0: Any, w_hh: Any, b_hh: Any, active: Any) -> tuple[Any, dict]:
    xp = backend.get_array_module(xproj)
    T, B, H = xproj.shape[0], xproj.shape[1], h0.shape[-1]
    z = xp.empty((T, B, H), dtype=xproj.dtype)
    acts = xproj  # overwritten with r, z, n
    hidden_n = xp.empty((T, B, H), dtype=xproj.dtype)  # W_hn h + b_hn of every step
    h, w_hh_t = h0, w_hh.T
    for t in range(T):
        hh = h @ w_hh_t
        if b_hh is not None:
            hh += b_hh
        a = acts[t]
        a[:, :2 * H] += hh[:, :2 * H]
        sigmoid_(a[:, :2 * H])
        hidden_n[t] = hh[:, 2 * H:]
        a[:, 2 * H:] += a[:, :H] * hidden_n[t]
        n = xp.tanh(a[:, 2 * H:], out=a[:, 2 * H:])
        _carry(z[t], n + a[:, H:2 * H] * (h - n), h, None if active is None else active[t])
        h = z[t]
    return z, {"acts": acts, "hidden_n": hidden_n}


def gru_backward(gz: Any, z: Any, saved: dict, h0: Any, w_hh: Any, active: Any) -> dict:
    xp = backend.get_array_module(gz)
    acts, hidden_n = saved["acts"], saved["hidden_n"]
    T, H = gz.shape[0], h0.shape[-1]
    d_x = xp.empty_like(acts)  # gradient of xproj (T, B, 3H)
    d_h = xp.empty_like(acts)  # gradient of W_hh h + b_hh (T, B, 3H)
    dh = xp.zeros_like(h0)
    for t in reversed(range(T)):
        dh_t, carried = _split_carry(gz[t] + dh, None if active is None else active[t])
        r, u, n = acts[t, :, :H], acts[t, :, H:2 * H], acts[t, :, 2 * H:]
        h_prev = z[t - 1] if t else h0
        d_n = dh_t * (1 - u) * (1 - n * n)
        d_x[t, :, :H] = d_n * hidden_n[t] * r * (1 - r)
        d_x[t, :, H:2 * H] = dh_t * (h_prev - n) * u * (1 - u)
        d_x[t, :, 2 * H:] = d_n
        d_h[t, :, :2 * H] = d_x[t, :, :2 * H]
        d_h[t, :, 2 * H:] = d_n * r
        dh = dh_t * u + d_h[t] @ w_hh + carried
    return {"xproj": d_x, "hidden": d_h, "h0": dh, "w_hh": _weight_grad(d_h, previous_states(z, h0))}


# ---- Elman RNN: h' = tanh or relu of (xproj_t + W_hh h) -------------------------------------------------------
def rnn_forward(xproj: Any, h0: Any, w_hh: Any, relu: bool, active: Any) -> tuple[Any, dict]:
    xp = backend.get_array_module(xproj)
    z = xp.empty(xproj.shape, dtype=xproj.dtype)
    h, w_hh_t = h0, w_hh.T
    for t in range(xproj.shape[0]):
        a = xproj[t] + h @ w_hh_t
        new = xp.maximum(a, 0, out=a) if relu else xp.tanh(a, out=a)
        _carry(z[t], new, h, None if active is None else active[t])
        h = z[t]
    return z, {}


def rnn_backward(gz: Any, z: Any, saved: dict, h0: Any, w_hh: Any, relu: bool, active: Any) -> dict:
    xp = backend.get_array_module(gz)
    d_pre = xp.empty_like(gz)
    dh = xp.zeros_like(h0)
    for t in reversed(range(gz.shape[0])):
        dh_t, carried = _split_carry(gz[t] + dh, None if active is None else active[t])
        d_pre[t] = dh_t * (z[t] > 0) if relu else dh_t * (1 - z[t] * z[t])
        dh = d_pre[t] @ w_hh + carried
    return {"xproj": d_pre, "h0": dh, "w_hh": _weight_grad(d_pre, previous_states(z, h0))}


def _weight_grad(d: Any, inputs: Any) -> Any:
    """sum over steps and sequences of d_t^T inputs_t: (n_out, n_in), one product."""
    return d.reshape(-1, d.shape[-1]).T @ inputs.reshape(-1, inputs.shape[-1])
