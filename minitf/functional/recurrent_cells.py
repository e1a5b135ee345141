"""The array math of the fused recurrent layers: all steps of one layer in one direction, forward and
backward through time side by side (NumPy or CuPy arrays; PyTorch's gate order and equations).

Shapes: T steps, B sequences, H hidden units, P the state's size (H, or proj_size for an LSTM with a
projection). `xproj` (T, B, G*H) is the input's projection for every step at once (one product, done by
the caller) with the biases PyTorch adds outside the recurrence folded in. Each forward returns
Z (T, B, P [+ H]): the state after every step (an LSTM's h then c), and what its backward needs.
`active` (T, B, 1) bool, or None: where a sequence has ended (t >= its length) the state is carried
unchanged, so Z[T - 1] is each sequence's state at its last real step. Sequences are independent, so
each step runs in blocks of rows (sequences) on minitf's threads (`_each_step`).
"""
from __future__ import annotations

from typing import Any

from .. import backend, cpu

GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}


def sigmoid_(a: Any) -> Any:
    """a <- sigmoid(a) in place, as 0.5 tanh(a / 2) + 0.5 (no overflow for large |a|)."""
    xp = backend.get_array_module(a)
    a *= 0.5
    xp.tanh(a, out=a)
    a *= 0.5
    a += 0.5
    return a


def _each_step(step: Any, T: int, B: int, row_work: int, like: Any, backwards: bool = False) -> None:
    """step(t, rows) for t = 0..T-1 (T-1..0 backwards), each step's rows in blocks on the pool;
    `row_work`: the element-wise entries of one row, which size the blocks (a step's dozens of small
    NumPy calls gain from threads only on blocks of blocking.MIN_BLOCK_ELEMENTS or more: measured, a batch of 32
    LSTM rows of 256 units runs faster on one thread, one of 128 on two)."""
    for t in reversed(range(T)) if backwards else range(T):
        cpu.run_blocks(lambda rows: step(t, rows), B, row_work, like)


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
    w_hh_t = w_hh.T

    def step(t: int, s: slice) -> None:
        h, c = (z[t - 1, s, :P], z[t - 1, s, P:]) if t else (h0[s], c0[s])
        a = acts[t, s]
        a += h @ w_hh_t
        sigmoid_(a[:, :2 * H])
        xp.tanh(a[:, 2 * H:3 * H], out=a[:, 2 * H:3 * H])
        sigmoid_(a[:, 3 * H:])
        i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        c_new = f * c
        c_new += i * g
        h_new = xp.tanh(c_new)
        h_new *= o
        if m is not None:
            m[t, s] = h_new
            h_new = h_new @ w_hr.T
        active_t = None if active is None else active[t, s]
        _carry(z[t, s, :P], h_new, h, active_t)
        _carry(z[t, s, P:], c_new, c, active_t)

    _each_step(step, T, B, 4 * H, xproj)
    return z, {"acts": acts, "m": m}


def lstm_backward(gz: Any, z: Any, saved: dict, h0: Any, c0: Any, w_hh: Any, w_hr: Any,
                  active: Any) -> dict:
    xp = backend.get_array_module(gz)
    acts, m = saved["acts"], saved["m"]
    T, B, P, H = gz.shape[0], gz.shape[1], h0.shape[-1], c0.shape[-1]
    d_pre = xp.empty_like(acts)  # the gradient of the gates' pre-activations, (T, B, 4H)
    d_proj = xp.empty(gz.shape[:2] + (P,), dtype=gz.dtype) if w_hr is not None else None
    dh, dc = xp.zeros_like(h0), xp.zeros_like(c0)  # the gradient reaching the state before step t

    def step(t: int, s: slice) -> None:
        active_t = None if active is None else active[t, s]
        dh_t, carried_h = _split_carry(gz[t, s, :P] + dh[s], active_t)
        dc_t, carried_c = _split_carry(gz[t, s, P:] + dc[s], active_t)
        a = acts[t, s]
        i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        c_prev = z[t - 1, s, P:] if t else c0[s]
        if w_hr is not None:
            d_proj[t, s] = dh_t
            dh_t = dh_t @ w_hr
        tanh_c = xp.tanh(z[t, s, P:])  # where the sequence has ended, z holds the carried c: dh_t, dc_t are 0
        d = d_pre[t, s]
        xp.multiply(dh_t, tanh_c, out=d[:, 3 * H:])  # do, then times o (1 - o) below
        tanh_c *= tanh_c
        xp.subtract(1, tanh_c, out=tanh_c)
        tanh_c *= o
        tanh_c *= dh_t
        dc_t = dc_t + tanh_c
        xp.multiply(dc_t, g, out=d[:, :H])
        xp.multiply(dc_t, c_prev, out=d[:, H:2 * H])
        xp.multiply(dc_t, i, out=d[:, 2 * H:3 * H])
        for gate in (slice(0, 2 * H), slice(3 * H, 4 * H)):  # sigma' = sigma (1 - sigma)
            d[:, gate] *= a[:, gate] * (1 - a[:, gate])
        d[:, 2 * H:3 * H] *= 1 - g * g
        dh[s] = d @ w_hh + carried_h
        dc[s] = dc_t * f + carried_c

    _each_step(step, T, B, 4 * H, gz, backwards=True)
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
    w_hh_t = w_hh.T

    def step(t: int, s: slice) -> None:
        h = z[t - 1, s] if t else h0[s]
        hh = h @ w_hh_t
        if b_hh is not None:
            hh += b_hh
        a = acts[t, s]
        a[:, :2 * H] += hh[:, :2 * H]
        sigmoid_(a[:, :2 * H])
        hidden_n[t, s] = hh[:, 2 * H:]
        a[:, 2 * H:] += a[:, :H] * hh[:, 2 * H:]
        n = xp.tanh(a[:, 2 * H:], out=a[:, 2 * H:])
        _carry(z[t, s], n + a[:, H:2 * H] * (h - n), h, None if active is None else active[t, s])

    _each_step(step, T, B, 3 * H, xproj)
    return z, {"acts": acts, "hidden_n": hidden_n}


def gru_backward(gz: Any, z: Any, saved: dict, h0: Any, w_hh: Any, active: Any) -> dict:
    xp = backend.get_array_module(gz)
    acts, hidden_n = saved["acts"], saved["hidden_n"]
    T, B, H = gz.shape[0], gz.shape[1], h0.shape[-1]
    d_x = xp.empty_like(acts)  # gradient of xproj (T, B, 3H)
    d_h = xp.empty_like(acts)  # gradient of W_hh h + b_hh (T, B, 3H)
    dh = xp.zeros_like(h0)

    def step(t: int, s: slice) -> None:
        dh_t, carried = _split_carry(gz[t, s] + dh[s], None if active is None else active[t, s])
        r, u, n = acts[t, s, :H], acts[t, s, H:2 * H], acts[t, s, 2 * H:]
        h_prev = z[t - 1, s] if t else h0[s]
        d_n = dh_t * (1 - u) * (1 - n * n)
        d_x[t, s, :H] = d_n * hidden_n[t, s] * r * (1 - r)
        d_x[t, s, H:2 * H] = dh_t * (h_prev - n) * u * (1 - u)
        d_x[t, s, 2 * H:] = d_n
        d_h[t, s, :2 * H] = d_x[t, s, :2 * H]
        d_h[t, s, 2 * H:] = d_n * r
        dh[s] = dh_t * u + d_h[t, s] @ w_hh + carried

    _each_step(step, T, B, 3 * H, gz, backwards=True)
    return {"xproj": d_x, "hidden": d_h, "h0": dh, "w_hh": _weight_grad(d_h, previous_states(z, h0))}


# ---- Elman RNN: h' = tanh or relu of (xproj_t + W_hh h) -------------------------------------------------------
def rnn_forward(xproj: Any, h0: Any, w_hh: Any, relu: bool, active: Any) -> tuple[Any, dict]:
    xp = backend.get_array_module(xproj)
    T, B, H = xproj.shape
    z = xp.empty(xproj.shape, dtype=xproj.dtype)
    w_hh_t = w_hh.T

    def step(t: int, s: slice) -> None:
        h = z[t - 1, s] if t else h0[s]
        a = xproj[t, s] + h @ w_hh_t
        new = xp.maximum(a, 0, out=a) if relu else xp.tanh(a, out=a)
        _carry(z[t, s], new, h, None if active is None else active[t, s])

    _each_step(step, T, B, H, xproj)
    return z, {}


def rnn_backward(gz: Any, z: Any, saved: dict, h0: Any, w_hh: Any, relu: bool, active: Any) -> dict:
    xp = backend.get_array_module(gz)
    T, B, H = gz.shape
    d_pre = xp.empty_like(gz)
    dh = xp.zeros_like(h0)

    def step(t: int, s: slice) -> None:
        dh_t, carried = _split_carry(gz[t, s] + dh[s], None if active is None else active[t, s])
        d_pre[t, s] = dh_t * (z[t, s] > 0) if relu else dh_t * (1 - z[t, s] * z[t, s])
        dh[s] = d_pre[t, s] @ w_hh + carried

    _each_step(step, T, B, H, gz, backwards=True)
    return {"xproj": d_pre, "h0": dh, "w_hh": _weight_grad(d_pre, previous_states(z, h0))}


def _weight_grad(d: Any, inputs: Any) -> Any:
    """sum over steps and sequences of d_t^T inputs_t: (n_out, n_in), one product on the pool."""
    return cpu.matmul(d.reshape(-1, d.shape[-1]).T, inputs.reshape(-1, inputs.shape[-1]))
