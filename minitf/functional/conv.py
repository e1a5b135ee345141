"""Convolutions (NCL / NCHW, PyTorch's weight layout), each one fused node.

conv2d is im2col + one GEMM per group: the padded input is copied once channels-last, read as a
strided view of its windows (no copy), copied into positions-first columns (G, positions,
KH*KW*C/G) and multiplied by the weight reordered to (G, O/G, KH*KW*C/G). On NumPy this runs a
few images at a time, each chunk's columns multiplied straight into its rows of the output, so
the columns stay small and in cache. The backward keeps the channels-last input (and the
columns only when the batch was one chunk). For images of many output positions it makes one
pass over the chunks (conv_grads): per image, the output gradient's (O, positions) block times
the rebuilt columns gives the weight gradient, and, with stride 1, the output gradient copied
into rows as wide as the padded input times the weight gives every kernel offset's input
gradient at once, each offset then one contiguous shifted add. Otherwise (small images, or
strides) the output gradient is copied positions first: the weight gradient is one GEMM per
chunk of rebuilt columns, and the input gradient is scattered back per chunk and kernel offset
(col2im: one GEMM and one add per offset). The chunks are shared among minitf's threads
(minitf.cpu; the pieces: conv_columns). conv_transpose2d is conv2d's input gradient,
and its backward is conv2d's forward and weight gradient. conv1d is conv2d with a height of 1.

Higher-order gradients (create_graph) close over three nodes of one Geometry: the convolution
F(x, w), its input gradient Gx(g, w) and its weight gradient Gw(x, g). Each is bilinear, and the
gradients of each are the other two: F's are Gx(g, w) and Gw(x, g); Gx's, for a cotangent u of
the input's shape, F(u, w) and Gw(u, g); Gw's, for v of the weight's shape, Gx(g, v) and F(x, v).
conv_transpose2d is Gx. So every order is again these nodes (the bias: windows.channel_sum).
"""
from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd import Tensor
from .conv_columns import (Geometry, apply_weight, bias_grad, channels_last, col2im, conv_grads, positions_first,
                           weight_grad)
from .dtypes import check_dtypes
from .windows import Pair, channel_sum, output_size, pair

__all__ = ["conv1d", "conv2d", "conv_transpose2d"]


MIN_IMAGE_POSITIONS = 256  # conv_grads' per-image products: faster at 24x24 outputs, slower at 8x8


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
    check_dtypes(op, x, weight=weight, bias=bias)
    backend.check_same_device(op, *(t.data for t in (x, weight, bias) if t is not None))


# ---- the ops ---------------------------------------------------------------------------------------

def _conv(op: str, x: Tensor, weight: Tensor, bias: Tensor | None, geo: Geometry, dims: int) -> Tensor:
    _check_params(op, x, weight, bias, weight.shape[0])
    x4, w4 = x.data, weight.data
    if dims == 1:  # (N, C, L) as (N, C, 1, L)
        x4, w4 = x4[:, :, None, :], w4[:, :, None, :]
    nhwc = channels_last(x4, geo.pads)  # kept for the backward (the columns only if small)
    y, cols = apply_weight(nhwc, w4, geo, None if bias is None else bias.data)

    def backward(g):
        g4 = g[:, :, None, :] if dims == 1 else g
        need_x, need_w = x.requires_grad, weight.requires_grad
        gx = gw = None
        if geo.out[0] * geo.out[1] >= MIN_IMAGE_POSITIONS:  # else per-image products are too small
            wide_rows = geo.stride == (1, 1)  # else the input gradient is col2im's
            gx, gw = conv_grads(g4, nhwc, w4, geo, cols, need_x and wide_rows, need_w)
        if (need_x and gx is None) or (need_w and gw is None):
            g_pf = positions_first(g4, geo)
            if need_x and gx is None:
                gx = col2im(g_pf, w4, geo, (nhwc.shape[0], nhwc.shape[3], *nhwc.shape[1:3]))
            if need_w and gw is None:
                gw = weight_grad(g_pf, nhwc, geo, w4.shape, cols)
        grads = [None if gx is None else gx.reshape(x.shape), None if gw is None else gw.reshape(weight.shape)]
        if bias is not None:
            grads.append(bias_grad(g4) if bias.requires_grad else None)
        return grads

    def higher(g, out):
        grads = [_input_grad(g, weight, geo, dims, x.shape) if x.requires_grad else None,
                 _weight_grad(x, g, geo, dims, weight.shape) if weight.requires_grad else None]
        if bias is not None:
            grads.append(channel_sum(g) if bias.requires_grad else None)
        return grads

    out = y[:, :, 0, :] if dims == 1 else y
    parents = (x, weight) if bias is None else (x, weight, bias)
    return Tensor.from_op(out, parents, backward, higher)


# ---- the input and weight gradients as nodes (create_graph) -----------------------------------------

def _as4(a: Any, dims: int) -> Any:
    return a[:, :, None, :] if dims == 1 else a


def _conv_array(x: Any, w: Any, geo: Geometry, dims: int) -> Any:
    """F(x, w) on arrays, without bias."""
    y, _ = apply_weight(channels_last(_as4(x, dims), geo.pads), _as4(w, dims), geo)
    return y[:, :, 0, :] if dims == 1 else y


def _input_grad_array(g: Any, w: Any, geo: Geometry, dims: int, x_shape: tuple) -> Any:
    """Gx(g, w) on arrays: the gradient of the input of shape x_shape (col2im)."""
    top, bottom, left, right = geo.pads
    height, width = (1, x_shape[2]) if dims == 1 else x_shape[2:]
    padded = (x_shape[0], x_shape[1], height + top + bottom, width + left + right)
    return col2im(positions_first(_as4(g, dims), geo), _as4(w, dims), geo, padded).reshape(x_shape)


def _weight_grad_array(x: Any, g: Any, geo: Geometry, dims: int, w_shape: tuple) -> Any:
    """Gw(x, g) on arrays: the gradient of the weight of shape w_shape."""
    w4_shape = (*w_shape[:2], 1, w_shape[2]) if dims == 1 else w_shape
    nhwc = channels_last(_as4(x, dims), geo.pads)
    return weight_grad(positions_first(_as4(g, dims), geo), nhwc, geo, w4_shape).reshape(w_shape)


def _plain_conv(x: Tensor, w: Tensor, geo: Geometry, dims: int) -> Tensor:
    return _conv("conv", x, w, None, geo, dims)


def _input_grad(g: Tensor, w: Tensor, geo: Geometry, dims: int, x_shape: tuple) -> Tensor:
    """The node Gx(g, w), differentiable to any order."""
    def backward(u):
        return (_conv_array(u, w.data, geo, dims) if g.requires_grad else None,
                _weight_grad_array(u, g.data, geo, dims, w.shape) if w.requires_grad else None)

    def higher(u, out):
        return (_plain_conv(u, w, geo, dims) if g.requires_grad else None,
                _weight_grad(u, g, geo, dims, w.shape) if w.requires_grad else None)

    return Tensor.from_op(_input_grad_array(g.data, w.data, geo, dims, x_shape), (g, w), backward, higher)


def _weight_grad(x: Tensor, g: Tensor, geo: Geometry, dims: int, w_shape: tuple) -> Tensor:
    """The node Gw(x, g), differentiable to any order."""
    def backward(v):
        return (_input_grad_array(g.data, v, geo, dims, x.shape) if x.requires_grad else None,
                _conv_array(x.data, v, geo, dims) if g.requires_grad else None)

    def higher(v, out):
        return (_input_grad(g, v, geo, dims, x.shape) if x.requires_grad else None,
                _plain_conv(x, v, geo, dims) if g.requires_grad else None)

    return Tensor.from_op(_weight_grad_array(x.data, g.data, geo, dims, w_shape), (x, g), backward, higher)


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
    x_pf = positions_first(x.data, geo)
    y = col2im(x_pf, weight.data, geo, padded_shape)
    if bias is not None:
        y = y + bias.data[:, None, None]

    def backward(g):
        g_nhwc = channels_last(g, geo.pads)
        gx, cols = apply_weight(g_nhwc, weight.data, geo) if x.requires_grad else (None, None)
        gw = weight_grad(x_pf, g_nhwc, geo, weight.shape, cols) if weight.requires_grad else None
        grads = [gx, gw]
        if bias is not None:
            grads.append(g.sum(axis=(0, 2, 3)) if bias.requires_grad else None)
        return grads

    def higher(g, out):  # conv2d's forward and weight gradient, with the transpose's output as input
        grads = [_plain_conv(g, weight, geo, 2) if x.requires_grad else None,
                 _weight_grad(g, x, geo, 2, weight.shape) if weight.requires_grad else None]
        if bias is not None:
            grads.append(channel_sum(g) if bias.requires_grad else None)
        return grads

    parents = (x, weight) if bias is None else (x, weight, bias)
    return Tensor.from_op(y, parents, backward, higher)
