"""Convolutions (NCL / NCHW, PyTorch's weight layout), each one fused node.

conv2d is im2col + one GEMM per group: the padded input's windows are a strided view (no
copy), copied once into columns (G, C/G*KH*KW, N*OH*OW) and multiplied by the weight
(G, O/G, C/G*KH*KW). The backward reuses the columns for the weight gradient (one GEMM)
and scatters the columns' gradient (one GEMM) back onto the input (col2im: one strided add
per kernel offset). conv_transpose2d is conv2d's input gradient, and its backward is
conv2d's forward and weight gradient. conv1d is conv2d with a height of 1.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import backend
from ..autograd import Tensor
from .windows import Pair, offset_slices, output_size, pad2d, pair, unpad2d, window_view

__all__ = ["conv1d", "conv2d", "conv_transpose2d"]


@dataclass(frozen=True)
class Geometry:
    """Where a convolution's windows lie: kernel, stride, dilation, (top, bottom, left, right)
    padding, the output's spatial size and the number of groups."""

    kernel: Pair
    stride: Pair
    dilation: Pair
    pads: tuple[int, int, int, int]
    out: Pair
    groups: int

    @property
    def batch_last(self) -> bool:
        """Whether the columns order their positions (OH, OW, N) rather than (N, OH, OW): with
        short output rows, copies and adds then run over OW*N contiguous elements, not OW."""
        return self.out[1] < 16


# ---- the array-level pieces (NumPy or CuPy) -----------------------------------------------------
# Columns and gradients are laid out channels first, (G, C/G*KH*KW, positions), so that each
# group is one plain GEMM with the batch folded into its long axis; the positions are ordered
# (N, OH, OW), or (OH, OW, N) when geo.batch_last.

_TO_COLUMNS = {False: (1, 0, 2, 3), True: (1, 2, 3, 0)}  # (N, C, H, W) -> (C, N, H, W) / (C, H, W, N)
_FROM_COLUMNS = {False: (1, 0, 2, 3), True: (3, 0, 1, 2)}


def im2col(xpad: Any, geo: Geometry) -> Any:
    """Columns (G, C/G*KH*KW, N*OH*OW) of the padded input xpad (N, C, Hp, Wp)."""
    n, c = xpad.shape[:2]
    if geo.batch_last:  # copy to (C, Hp, Wp, N) first, keep indexing it as (N, C, Hp, Wp)
        xpad = channels_first(xpad, geo).transpose(_FROM_COLUMNS[True])
    grouped = xpad.swapaxes(0, 1).reshape(geo.groups, c // geo.groups, n, *xpad.shape[2:])
    windows = window_view(grouped, geo.kernel, geo.stride, geo.dilation, geo.out)  # (G, C/G, N, KH, KW, OH, OW)
    order = (0, 1, 3, 4, 5, 6, 2) if geo.batch_last else (0, 1, 3, 4, 2, 5, 6)
    return windows.transpose(order).reshape(geo.groups, -1, n * geo.out[0] * geo.out[1])  # the big copy


def channels_first(a: Any, geo: Geometry) -> Any:
    """An (N, C, H, W) array as a contiguous (C, N, H, W), or (C, H, W, N) when geo.batch_last:
    the column order. The output gradient is copied so once, for the weight, bias and input."""
    return backend.get_array_module(a).ascontiguousarray(a.transpose(_TO_COLUMNS[geo.batch_last]))


def apply_weight(weight: Any, cols: Any, geo: Geometry) -> Any:
    """weight (O, C/G, KH, KW) times the columns -> (N, O, OH, OW), a view of the GEMM's output."""
    o, n = weight.shape[0], cols.shape[-1] // (geo.out[0] * geo.out[1])
    y = weight.reshape(geo.groups, o // geo.groups, -1) @ cols  # one GEMM per group
    layout = (o, *geo.out, n) if geo.batch_last else (o, n, *geo.out)
    return y.reshape(layout).transpose(_FROM_COLUMNS[geo.batch_last])


def weight_grad(g_cf: Any, cols: Any, geo: Geometry, weight_shape: tuple[int, ...]) -> Any:
    """Gradient of the weight from the output gradient g_cf (in column order) and the columns."""
    g = g_cf.reshape(geo.groups, g_cf.shape[0] // geo.groups, -1)
    return (g @ cols.swapaxes(1, 2)).reshape(weight_shape)


def col2im(g_cf: Any, weight: Any, geo: Geometry, padded_shape: tuple[int, ...]) -> Any:
    """Input gradient (N, C, H, W) from g_cf (in column order): one GEMM, then one add per offset
    into the padded gradient, itself in column order. Returns an NCHW view."""
    groups, o = geo.groups, weight.shape[0]
    w = weight.reshape(groups, o // groups, -1)
    gcols = w.swapaxes(1, 2) @ g_cf.reshape(groups, o // groups, -1)  # (G, C/G*KH*KW, positions)
    gcols = gcols.reshape(padded_shape[1], *geo.kernel, *g_cf.shape[1:])
    batch_last = geo.batch_last
    perm = _TO_COLUMNS[batch_last]
    xp = backend.get_array_module(g_cf)
    gpad = xp.zeros([padded_shape[p] for p in perm], dtype=gcols.dtype)
    for i, j, (_, rows, cols) in offset_slices(geo.kernel, geo.stride, geo.dilation, geo.out):
        if batch_last:
            gpad[:, rows, cols] += gcols[:, i, j]
        else:
            gpad[:, :, rows, cols] += gcols[:, i, j]
    return unpad2d(gpad.transpose(_FROM_COLUMNS[batch_last]), geo.pads)


# ---- argument checks ------------------------------------------------------------------------------

def _spatial(value: Any, name: str, op: str, minimum: int, dims: int) -> Pair:
    """A pair for conv2d; for conv1d (dims=1) an int or 1-tuple, returned as (neutral, value)."""
    if dims == 2:
        return pair(value, name, op, minimum)
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise TypeError(f"{op}: {name} must be an int or a 1-tuple, got {value!r}")
        value = value[0]
    return (1 if minimum == 1 else 0, pair(value, name, op, minimum)[1])


def _check_channels(op: str, x_shape: tuple, w_shape: tuple, groups: int, dims: int) -> None:
    if len(x_shape) != dims + 2:
        layout = "(N, C, L)" if dims == 1 else "(N, C, H, W)"
        raise ValueError(f"{op}: input must be {layout}, got shape {x_shape}")
    if len(w_shape) != dims + 2:
        raise ValueError(f"{op}: weight must have {dims + 2} axes (out, in/groups, kernel...), "
                         f"got shape {w_shape}")
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    if x_shape[1] % groups or w_shape[0] % groups:
        raise ValueError(f"{op}: groups={groups} must divide the input's {x_shape[1]} channels "
                         f"and the weight's {w_shape[0]} output channels")


def conv_geometry(op: str, x_shape: tuple, w_shape: tuple, stride: Any, padding: Any, dilation: Any,
                  groups: int, dims: int = 2) -> Geometry:
    """Check a convolution's arguments against PyTorch's rules; return its Geometry."""
    _check_channels(op, x_shape, w_shape, groups, dims)
    if x_shape[1] != w_shape[1] * groups:
        raise ValueError(f"{op}: input has {x_shape[1]} channels (shape {x_shape}) but the weight of "
                         f"shape {w_shape} expects {w_shape[1] * groups} (in/groups={w_shape[1]} "
                         f"x groups={groups})")
    stride = _spatial(stride, "stride", op, 1, dims)
    dilation = _spatial(dilation, "dilation", op, 1, dims)
    kernel = (1, w_shape[2]) if dims == 1 else tuple(w_shape[2:])
    if padding == "same":
        if stride != (1, 1):
            raise ValueError(f"{op}: padding='same' needs stride 1 (as in PyTorch), got stride={stride}")
        total = [d * (k - 1) for d, k in zip(dilation, kernel)]
        pads = (total[0] // 2, total[0] - total[0] // 2, total[1] // 2, total[1] - total[1] // 2)
    elif padding == "valid":
        pads = (0, 0, 0, 0)
    elif isinstance(padding, str):
        raise ValueError(f"{op}: padding must be 'same', 'valid', an int or a tuple, got {padding!r}")
    else:
        ph, pw = _spatial(padding, "padding", op, 0, dims)
        pads = (ph, ph, pw, pw)
    size = (1, x_shape[2]) if dims == 1 else x_shape[2:]
    out = tuple(output_size(s, k, st, d, p0 + p1) for s, k, st, d, p0, p1
                in zip(size, kernel, stride, dilation, pads[::2], pads[1::2]))
    if min(out) < 1:
        padded = (size[0] + pads[0] + pads[1], size[1] + pads[2] + pads[3])
        raise ValueError(f"{op}: kernel {kernel[2 - dims:]} with dilation {dilation[2 - dims:]} is "
                         f"larger than the padded input {padded[2 - dims:]} (input shape {x_shape})")
    return Geometry(kernel, stride, dilation, pads, out, groups)


def _check_params(op: str, x: Tensor, weight: Tensor, bias: Tensor | None, channels: int) -> None:
    """Bias shape, one floating dtype for all inputs (as PyTorch requires), one device."""
    if bias is not None and bias.shape != (channels,):
        raise ValueError(f"{op}: bias has shape {bias.shape}, expected ({channels},)")
    named = [("input", x), ("weight", weight)] + ([("bias", bias)] if bias is not None else [])
    if x.dtype.kind != "f" or any(t.dtype != x.dtype for _, t in named):
        given = ", ".join(f"{name} {t.dtype}" for name, t in named)
        raise TypeError(f"{op}: inputs must share one floating-point dtype, got {given}")
    backend.check_same_device(op, *(t.data for _, t in named))


# ---- the ops ---------------------------------------------------------------------------------------

def _conv(op: str, x: Tensor, weight: Tensor, bias: Tensor | None, geo: Geometry, dims: int) -> Tensor:
    _check_params(op, x, weight, bias, weight.shape[0])
    x4, w4 = x.data, weight.data
    if dims == 1:  # (N, C, L) as (N, C, 1, L)
        x4, w4 = x4[:, :, None, :], w4[:, :, None, :]
    xpad = pad2d(x4, geo.pads)
    cols = im2col(xpad, geo)
    y = apply_weight(w4, cols, geo)
    if bias is not None:
        y += bias.data[:, None, None]

    def backward(g):
        g_cf = channels_first(g[:, :, None, :] if dims == 1 else g, geo)
        gx = col2im(g_cf, w4, geo, xpad.shape).reshape(x.shape) if x.requires_grad else None
        gw = weight_grad(g_cf, cols, geo, weight.shape) if weight.requires_grad else None
        grads = [gx, gw]
        if bias is not None:
            grads.append(g_cf.reshape(g_cf.shape[0], -1).sum(axis=1) if bias.requires_grad else None)
        return grads

    out = y[:, :, 0, :] if dims == 1 else y
    parents = (x, weight) if bias is None else (x, weight, bias)
    return Tensor._make(out, parents, backward)


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Tensor:
    """2-D cross-correlation as in torch.nn.functional.conv2d.

    x: (N, C, H, W); weight: (O, C/groups, KH, KW); bias: (O,) or None; stride, dilation: int or
    pair; padding: int, pair, "valid" or "same" (stride 1; odd extra padding goes bottom/right).
    Returns (N, O, OH, OW) with OH = (H + 2*ph - dh*(KH-1) - 1) // sh + 1.
    """
    geo = conv_geometry("conv2d", x.shape, weight.shape, stride, padding, dilation, groups)
    return _conv("conv2d", x, weight, bias, geo, dims=2)


def conv1d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Tensor:
    """1-D cross-correlation as in torch.nn.functional.conv1d.

    x: (N, C, L); weight: (O, C/groups, K); bias: (O,) or None; padding: int, "valid" or "same".
    Returns (N, O, OL).
    """
    geo = conv_geometry("conv1d", x.shape, weight.shape, stride, padding, dilation, groups, dims=1)
    return _conv("conv1d", x, weight, bias, geo, dims=1)


def conv_transpose2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
                     padding: Any = 0, output_padding: Any = 0, groups: int = 1,
                     dilation: Any = 1) -> Tensor:
    """2-D transposed convolution as in torch.nn.functional.conv_transpose2d.

    x: (N, C, H, W); weight: (C, O/groups, KH, KW); bias: (O,) or None. Returns (N, O, OH, OW),
    OH = (H - 1)*sh - 2*ph + dh*(KH - 1) + output_padding + 1: the input gradient of conv2d.
    """
    op = "conv_transpose2d"
    _check_channels(op, x.shape, weight.shape, groups, dims=2)
    if x.shape[1] != weight.shape[0]:
        raise ValueError(f"{op}: input has {x.shape[1]} channels (shape {x.shape}) but the weight of "
                         f"shape {weight.shape} expects {weight.shape[0]}")
    stride, dilation = pair(stride, "stride", op, 1), pair(dilation, "dilation", op, 1)
    ph, pw = pair(padding, "padding", op, 0)
    extra = pair(output_padding, "output_padding", op, 0)
    if any(e >= max(s, d) for e, s, d in zip(extra, stride, dilation)):
        raise ValueError(f"{op}: output_padding {extra} must be smaller than stride {stride} "
                         f"or dilation {dilation}")
    kernel = tuple(weight.shape[2:])
    size = tuple((h - 1) * s - 2 * p + d * (k - 1) + e + 1
                 for h, s, p, d, k, e in zip(x.shape[2:], stride, (ph, pw), dilation, kernel, extra))
    if min(size) < 1:
        raise ValueError(f"{op}: padding ({ph}, {pw}) leaves an empty output {size} for input {x.shape}")
    geo = Geometry(kernel, stride, dilation, (ph, ph, pw, pw), tuple(x.shape[2:]), groups)
    channels = weight.shape[1] * groups
    _check_params(op, x, weight, bias, channels)
    padded_shape = (x.shape[0], channels, size[0] + 2 * ph, size[1] + 2 * pw)
    x_cf = channels_first(x.data, geo)
    y = col2im(x_cf, weight.data, geo, padded_shape)
    if bias is not None:
        y = y + bias.data[:, None, None]

    def backward(g):
        cols = im2col(pad2d(g, geo.pads), geo)
        gx = apply_weight(weight.data, cols, geo) if x.requires_grad else None
        gw = weight_grad(x_cf, cols, geo, weight.shape) if weight.requires_grad else None
        grads = [gx, gw]
        if bias is not None:
            grads.append(g.sum(axis=(0, 2, 3)) if bias.requires_grad else None)
        return grads

    parents = (x, weight) if bias is None else (x, weight, bias)
    return Tensor._make(y, parents, backward)
