"""Recurrent layers with PyTorch's constructor arguments, equations, state shapes and state-dict keys:
RNN, LSTM, GRU (stacked, bidirectional, batch_first, dropout between layers, an LSTM's proj_size,
variable lengths) and their one-step cells. Each layer and direction is one fused node
(minitf.functional.recurrent_layer): the input's projection for all steps in one product and an
analytic backward through time.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import functional as F
from ..autograd import Tensor, concat, stack
from ..functional.recurrent_cells import GATES
from . import init
from .module import Module, Parameter, check_input_dtype

State = Tensor | tuple[Tensor, Tensor]


def _positive(name: str, value: Any, layer: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{layer}: {name} must be a positive integer, got {value!r}")
    return int(value)


class RNNBase(Module):
    """The stack of layers and directions shared by RNN, LSTM and GRU (mode: a key of GATES)."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0) -> None:
        super().__init__()
        name = type(self).__name__
        self.mode = mode
        self.input_size, self.hidden_size = _positive("input_size", input_size, name), \
            _positive("hidden_size", hidden_size, name)
        self.num_layers = _positive("num_layers", num_layers, name)
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{name}: dropout must be a probability in [0, 1], got {dropout}")
        if proj_size and (mode != "lstm" or not 0 < proj_size < hidden_size):
            raise ValueError(f"{name}: proj_size must be in 1..hidden_size-1 ({hidden_size - 1}) and only for an "
                             f"LSTM, got {proj_size}")
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size = bidirectional, int(proj_size)
        self.num_directions = 2 if bidirectional else 1
        rows, state = GATES[mode] * hidden_size, proj_size or hidden_size
        for layer in range(num_layers):
            for suffix in self._suffixes():
                layer_in = input_size if layer == 0 else state * self.num_directions
                shapes = {"weight_ih": (rows, layer_in), "weight_hh": (rows, state)}
                if bias:
                    shapes.update(bias_ih=(rows,), bias_hh=(rows,))
                if proj_size:
                    shapes["weight_hr"] = (proj_size, hidden_size)
                for kind, shape in shapes.items():
                    setattr(self, f"{kind}_l{layer}{suffix}", Parameter(np.zeros(shape, dtype=init.DEFAULT_DTYPE)))
        self.reset_parameters()

    def _suffixes(self) -> tuple[str, ...]:
        return ("", "_reverse")[:self.num_directions]

    def reset_parameters(self) -> None:
        """Every weight and bias U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as PyTorch."""
        bound = 1 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def extra_repr(self) -> str:
        extras = [f"{self.input_size}, {self.hidden_size}"]
        for key, default in (("num_layers", 1), ("bias", True), ("batch_first", False), ("dropout", 0.0),
                             ("bidirectional", False), ("proj_size", 0)):
            if getattr(self, key) != default:
                extras.append(f"{key}={getattr(self, key)}")
        return ", ".join(extras)

    def flatten_parameters(self) -> None:
        """Nothing to do (PyTorch packs its weights for cuDNN here); kept so that ported code runs."""

    @property
    def all_weights(self) -> list[list[Tensor]]:
        """The parameters of each layer and direction (weight_ih, weight_hh[, biases][, weight_hr]), as PyTorch."""
        return [[w for w in self._weights(layer, suffix) if w is not None]
                for layer in range(self.num_layers) for suffix in self._suffixes()]

    def _weights(self, layer: int, suffix: str) -> list[Tensor | None]:
        def get(kind: str) -> Tensor | None:
            return getattr(self, f"{kind}_l{layer}{suffix}", None)
        return [get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh"), get("weight_hr")]

    def forward(self, input: Tensor, hx: State | None = None, lengths: Any = None) -> tuple[Tensor, State]:
        """input: (T, B, input_size), (B, T, input_size) with batch_first, or (T, input_size) unbatched.
        hx: h0 (layers * directions, B, P), and c0 (..., B, hidden_size) for an LSTM as a tuple (h0, c0);
        zeros if None. lengths: (B,) ints in 1..T (each sequence's real steps; outputs after them are
        zeros and the returned state is each sequence's at its last real step), or None.
        Returns (output (T, B, directions * P) in the input's layout, h_n, or (h_n, c_n) for an LSTM),
        with P = proj_size or hidden_size."""
        name = type(self).__name__
        first = self.weight_ih_l0
        check_input_dtype(self, input, weight_ih_l0=first)
        unbatched = input.ndim == 2
        if input.ndim not in (2, 3) or input.shape[-1] != self.input_size:
            raise ValueError(f"{name}: input must be (steps, batch, {self.input_size}) (batch first with "
                             f"batch_first=True) or (steps, {self.input_size}), got {input.shape}")
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: input must be a minitf Tensor, got {_described(input)} "
                            "(wrap it with minitf.tensor)")
        x = input[:, None] if unbatched else (input.swapaxes(0, 1) if self.batch_first else input)
        h0, c0 = self._initial_state(hx, x.shape[1], unbatched, x)
        layer_input, finals_h, finals_c = x, [], []
        for layer in range(self.num_layers):
            outputs = []
            for direction, suffix in enumerate(self._suffixes()):
                k = layer * self.num_directions + direction
                w_ih, w_hh, b_ih, b_hh, w_hr = self._weights(layer, suffix)
                out, h_n, c_n = F.recurrent_layer(self.mode, layer_input, h0[k], None if c0 is None else c0[k],
                                                  w_ih, w_hh, b_ih, b_hh, w_hr, lengths=lengths,
                                                  reverse=bool(direction))
                outputs.append(out)
                finals_h.append(h_n)
                finals_c.append(c_n)
            layer_input = outputs[0] if len(outputs) == 1 else concat(outputs, axis=-1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        output = layer_input[:, 0] if unbatched else (layer_input.swapaxes(0, 1) if self.batch_first else layer_input)
        h_n = stack(finals_h, axis=0)
        h_n = h_n[:, 0] if unbatched else h_n
        if self.mode != "lstm":
            return output, h_n
        c_n = stack(finals_c, axis=0)
        return output, (h_n, c_n[:, 0] if unbatched else c_n)

    def _initial_state(self, hx: State | None, batch: int, unbatched: bool,
                       like: Tensor) -> tuple[Tensor, Tensor | None]:
        """(h0, c0) as (layers * directions, B, size) tensors, checked against the layer."""
        name, count = type(self).__name__, self.num_layers * self.num_directions
        sizes = {"h0": self.proj_size or self.hidden_size, "c0": self.hidden_size}
        given = hx if isinstance(hx, (tuple, list)) else (hx, None)
        if self.mode == "lstm" and hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2
                                                       or any(v is None for v in hx)):
            raise ValueError(f"{name}: hx must be a tuple (h0, c0) of Tensors for an LSTM, got {_described(hx)}")
        if self.mode != "lstm" and isinstance(hx, (tuple, list)):
            raise ValueError(f"{name}: hx must be one Tensor h0, got a {type(hx).__name__}")
        states = []
        for key, value in zip(("h0", "c0"), given):
            if key == "c0" and self.mode != "lstm":
                states.append(None)
                continue
            shape = (count, sizes[key]) if unbatched else (count, batch, sizes[key])
            if value is None:
                value = Tensor(np.zeros(shape, dtype=like.dtype), device=like.device)
            elif not isinstance(value, Tensor):
                raise TypeError(f"{name}: {key} must be a minitf Tensor, got {_described(value)}")
            elif tuple(value.shape) != shape:
                raise ValueError(f"{name}: {key} has shape {tuple(value.shape)}, expected {shape} "
                                 f"(layers * directions, batch, size)")
            states.append(value[:, None] if unbatched else value)
        return states[0], states[1]


def _described(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} ({', '.join(_described(v) for v in value)})"
    return "None" if value is None else f"{type(value).__module__}.{type(value).__name__}"


class RNN(RNNBase):
    """Elman RNN: h' = tanh(W_ih x + b_ih + W_hh h + b_hh) (nonlinearity="relu": relu)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(f"rnn_{nonlinearity}", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """Long short-term memory (gates i, f, g, o as PyTorch); proj_size > 0 projects h (weight_hr)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0) -> None:
        super().__init__("lstm", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size)


class GRU(RNNBase):
    """Gated recurrent unit (gates r, z, n as PyTorch: n = tanh(W_in x + b_in + r (W_hn h + b_hn)))."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False) -> None:
        super().__init__("gru", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional)


class RNNCellBase(Module):
    """One step of a recurrent layer: weight_ih (G H, input_size), weight_hh (G H, hidden_size), biases."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        name = type(self).__name__
        self.mode = mode
        self.input_size = _positive("input_size", input_size, name)
        self.hidden_size = _positive("hidden_size", hidden_size, name)
        rows = GATES[mode] * hidden_size
        self.weight_ih = Parameter(np.zeros((rows, input_size), dtype=init.DEFAULT_DTYPE))
        self.weight_hh = Parameter(np.zeros((rows, hidden_size), dtype=init.DEFAULT_DTYPE))
        self.bias_ih = Parameter(np.zeros(rows, dtype=init.DEFAULT_DTYPE)) if bias else None
        self.bias_hh = Parameter(np.zeros(rows, dtype=init.DEFAULT_DTYPE)) if bias else None
        self.reset_parameters()

    reset_parameters = RNNBase.reset_parameters

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias_ih is not None else ", bias=False")

    def forward(self, input: Tensor, hx: State | None = None) -> State:
        """input: (B, input_size) or (input_size,); hx: h (B, hidden_size) (an LSTMCell: (h, c)), zeros if
        None. Returns the next h (an LSTMCell: (h, c)) of the same layout."""
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: input must be a minitf Tensor, got {_described(input)} "
                            "(wrap it with minitf.tensor)")
        check_input_dtype(self, input, weight_ih=self.weight_ih)
        if input.ndim not in (1, 2) or input.shape[-1] != self.input_size:
            raise ValueError(f"{name}: input must be (batch, {self.input_size}) or ({self.input_size},), "
                             f"got {input.shape}")
        unbatched = input.ndim == 1
        x = input[None] if unbatched else input
        lstm = self.mode == "lstm"
        pair = isinstance(hx, (tuple, list)) and len(hx) == 2 and all(v is not None for v in hx)
        if hx is not None and (pair != lstm or (not lstm and isinstance(hx, (tuple, list)))):
            raise TypeError(f"{name}: hx must be {'a tuple (h, c) of Tensors' if lstm else 'one Tensor h'}, "
                            f"got {_described(hx)}")
        states = list(hx) if lstm and hx is not None else [hx] * (2 if lstm else 1)
        if any(s is not None and not isinstance(s, Tensor) for s in states):
            raise TypeError(f"{name}: hx must hold minitf Tensors, got {_described(hx)}")
        shape = (x.shape[0], self.hidden_size)
        for i, state in enumerate(states):
            if state is None:
                states[i] = Tensor(np.zeros(shape, dtype=x.dtype), device=x.device)
            elif tuple(state.shape) != (shape[1:] if unbatched else shape):
                raise ValueError(f"{name}: a state of shape {tuple(state.shape)}, expected "
                                 f"{shape[1:] if unbatched else shape}")
            elif unbatched:
                states[i] = state[None]
        _, h, c = F.recurrent_layer(self.mode, x[None], states[0], states[1] if self.mode == "lstm" else None,
                                    self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        h, c = (h[0], None if c is None else c[0]) if unbatched else (h, c)
        return (h, c) if self.mode == "lstm" else h


class RNNCell(RNNCellBase):
    """h' = tanh (or relu) of W_ih x + b_ih + W_hh h + b_hh."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh") -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(f"rnn_{nonlinearity}", input_size, hidden_size, bias)
        self.nonlinearity = nonlinearity


class LSTMCell(RNNCellBase):
    """One LSTM step: (h, c) -> (h', c')."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__("lstm", input_size, hidden_size, bias)


class GRUCell(RNNCellBase):
    """One GRU step: h -> h'."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__("gru", input_size, hidden_size, bias)
