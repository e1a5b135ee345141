"""The array-level pieces of the convolutions (NumPy or CuPy): im2col, the GEMMs per chunk of
images on minitf's threads, col2im. minitf.functional.conv checks arguments and builds the nodes."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import backend, cpu
from .windows import Pair, offset_slices, unpad2d

__all__ = ["Geometry", "image_chunks", "channels_last", "im2col", "weight_columns", "positions_first",
           "apply_weight", "weight_grad", "bias_grad", "input_rows_weight", "wide_rows_like", "conv_grads",
           "col2im"]


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


# ---- the array-level pieces (NumPy or CuPy) -----------------------------------------------------
# The input is kept as a padded channels-last copy (N, Hp, Wp, C); columns and gradients are laid
# out positions first, (G, positions, KH*KW*C/G): each group is one plain GEMM with the positions
# as its long row axis (OpenBLAS is faster so), and the im2col copy and the col2im adds run over
# KW*C/G (or C/G) contiguous elements. On NumPy each loop below takes a few whole images at a
# time (cpu.blocking.CHUNK_BYTES of columns): the columns stay in cache and below malloc's mmap
# threshold (a batch's columns, 42 MB on MNIST's second layer, were mapped and page-faulted anew
# every call), and the backward rebuilds them rather than keep them (unless they were one chunk).

GPU_ROWS_BYTES = 1 << 30  # conv_grads' offsets' rows (9x the input gradient for 3x3) on CuPy, per chunk


def image_chunks(xp: Any, n: int, geo: Geometry, columns: int, itemsize: int,
                 gpu_bytes: int | None = None) -> list[tuple[slice, slice]]:
    """(images, positions) slices over a batch of n images, each chunk of whole images with about
    cpu.blocking.CHUNK_BYTES of columns (`columns` values per position); on CuPy a single chunk,
    or chunks of about gpu_bytes if given."""
    per_image = geo.out[0] * geo.out[1]
    step = n if xp is not np and not gpu_bytes else \
        cpu.chunk_size(per_image * columns * itemsize, None if xp is np else gpu_bytes)
    return [(slice(i, min(i + step, n)), slice(i * per_image, min(i + step, n) * per_image))
            for i in range(0, n, step)]


def channels_last(x: Any, pads: tuple[int, int, int, int]) -> Any:
    """x (N, C, H, W) padded by (top, bottom, left, right) zeros as a channels-last copy (N, Hp, Wp, C)."""
    xp = backend.get_array_module(x)
    if not any(pads):
        return xp.ascontiguousarray(x.transpose(0, 2, 3, 1))
    top, bottom, left, right = pads
    n, c, h, w = x.shape
    out = xp.zeros((n, h + top + bottom, w + left + right, c), dtype=x.dtype)
    out[:, top:top + h, left:left + w] = x.transpose(0, 2, 3, 1)
    return out


def im2col(nhwc: Any, geo: Geometry) -> Any:
    """Columns (G, N*OH*OW, KH*KW*C/G) of the padded channels-last input nhwc (N, Hp, Wp, C)."""
    xp = backend.get_array_module(nhwc)
    n, _, _, c = nhwc.shape
    g, (kh, kw), (oh, ow) = geo.groups, geo.kernel, geo.out
    sn, sh, sw, sc = nhwc.strides
    windows = xp.lib.stride_tricks.as_strided(  # (G, N, OH, OW, KH, KW, C/G), no copy
        nhwc, (g, n, oh, ow, kh, kw, c // g),
        (sc * (c // g), sn, sh * geo.stride[0], sw * geo.stride[1],
         sh * geo.dilation[0], sw * geo.dilation[1], sc))
    return windows.reshape(g, n * oh * ow, kh * kw * (c // g))  # the copy


def weight_columns(weight: Any, geo: Geometry) -> Any:
    """weight (O, C/G, KH, KW) as (G, O/G, KH*KW*C/G), the columns' order (a small copy)."""
    o = weight.shape[0]
    w = weight.reshape(geo.groups, o // geo.groups, *weight.shape[1:])
    return w.transpose(0, 1, 3, 4, 2).reshape(geo.groups, o // geo.groups, -1)


def positions_first(a: Any, geo: Geometry) -> Any:
    """An (N, O, H, W) array as (G, N*H*W, O/G), positions first: a channels-last copy (none if
    a is a view of one already), then a view."""
    xp = backend.get_array_module(a)
    n, o, h, w = a.shape
    nhwc = xp.ascontiguousarray(a.transpose(0, 2, 3, 1))
    return nhwc.reshape(n * h * w, geo.groups, o // geo.groups).swapaxes(0, 1)


def apply_weight(nhwc: Any, weight: Any, geo: Geometry, bias: Any = None) -> tuple[Any, Any]:
    """The convolution (N, O, OH, OW) of the padded channels-last input by weight (O, C/G, KH, KW),
    plus bias (O,): per chunk of images (the chunks shared among minitf's threads), im2col and
    one GEMM per group straight into the channels-last output. Returns an NCHW view and, when the
    batch was one chunk, its columns (small then; kept for the weight gradient, which otherwise
    rebuilds them), else None."""
    xp = backend.get_array_module(nhwc)
    n, o, g = nhwc.shape[0], weight.shape[0], geo.groups
    w_t = weight_columns(weight, geo).swapaxes(1, 2)  # (G, KH*KW*C/G, O/G)
    y = xp.empty((n, *geo.out, o), dtype=nhwc.dtype)
    y_pf = y.reshape(-1, g, o // g).swapaxes(0, 1)  # (G, positions, O/G), a view
    chunks = image_chunks(xp, n, geo, w_t.shape[1] * g, nhwc.dtype.itemsize)
    kept = []

    def chunk(images: slice, positions: slice) -> None:
        cols = im2col(nhwc[images], geo)
        cpu.matmul(cols, w_t, out=y_pf[:, positions])
        if bias is not None:
            y[images] += bias
        if len(chunks) == 1:
            kept.append(cols)

    cpu.run_tasks([functools.partial(chunk, *c) for c in chunks])
    return y.transpose(0, 3, 1, 2), kept[0] if kept else None


def weight_grad(g_pf: Any, nhwc: Any, geo: Geometry, weight_shape: tuple[int, ...], cols: Any = None) -> Any:
    """Gradient of the weight from the output gradient g_pf (positions first) and the padded
    channels-last input: one GEMM with the forward's columns `cols` if given, else the columns
    rebuilt per chunk of images (on minitf's threads), one GEMM each, summed in chunk order."""
    o, cg, kh, kw = weight_shape
    if cols is not None:
        return cpu.matmul(g_pf.swapaxes(1, 2), cols).reshape(o, kh, kw, cg).transpose(0, 3, 1, 2)
    xp = backend.get_array_module(g_pf)
    chunks = image_chunks(xp, nhwc.shape[0], geo, kh * kw * cg * geo.groups, g_pf.dtype.itemsize)
    per_chunk: list[Any] = [None] * len(chunks)

    def chunk(i: int, images: slice, positions: slice) -> None:
        per_chunk[i] = g_pf[:, positions].swapaxes(1, 2) @ im2col(nhwc[images], geo)

    cpu.run_tasks([functools.partial(chunk, i, *c) for i, c in enumerate(chunks)])
    gw = per_chunk[0]
    for part in per_chunk[1:]:
        gw += part
    return gw.reshape(o, kh, kw, cg).transpose(0, 3, 1, 2)


def bias_grad(g: Any) -> Any:
    """Sum of the output gradient g (N, O, OH, OW), any layout, over all but the channels, (O,):
    products with a ones vector (blocked float32 accumulation, faster than .sum here)."""
    xp = backend.get_array_module(g)
    per_image = g.reshape(g.shape[0], g.shape[1], -1)
    return (per_image @ xp.ones(per_image.shape[2], dtype=g.dtype)).sum(axis=0)


def input_rows_weight(weight: Any, geo: Geometry) -> Any:
    """weight (O, C/G, KH, KW) as (G, KH*KW*C/G, O/G): row (i, j, c) gives offset (i, j)'s
    contribution to input channel c (a small copy)."""
    o, cg, kh, kw = weight.shape
    w = weight.reshape(geo.groups, o // geo.groups, cg, kh, kw)
    return w.transpose(0, 3, 4, 2, 1).reshape(geo.groups, kh * kw * cg, o // geo.groups)


def wide_rows_like(g: Any, images: int, width: int) -> Any:
    """Zeros (images, O, OH, width) laid out as g (N, O, OH, OW): channels last if g is (the
    cotangent of a ReLU or pool after the convolution often is), so that copying g in reads and
    writes along the same axes."""
    xp = backend.get_array_module(g)
    n, o, oh, ow = g.shape
    if g.strides[1] < g.strides[3]:
        return xp.zeros((images, oh, width, o), dtype=g.dtype).transpose(0, 3, 1, 2)
    return xp.zeros((images, o, oh, width), dtype=g.dtype)


def conv_grads(g: Any, nhwc: Any, weight: Any, geo: Geometry, cols: Any = None, input_grad: bool = True,
               weight_grad: bool = True) -> tuple[Any, Any]:
    """(input gradient (N, C, H, W) or None, weight gradient or None) from the output gradient g
    (N, O, OH, OW, any layout) and the padded channels-last input, in one pass over chunks of
    images (shared among minitf's threads). The input gradient needs stride 1 (wide rows below).

    Weight: per image, g's (O/G, OH*OW) block times the image's columns (rebuilt unless `cols`
    is given), summed in chunk order. Input: g is copied into wide rows (O/G, OH, Wp), zero past
    OW, so that output position q = oh*Wp + ow and kernel offset (i, j) land on the padded input
    at flat index q + i*dh*Wp + j*dw: one GEMM per image gives every offset's (C/G, positions)
    contribution, and each offset is one contiguous add, shifted (the zero columns add nothing)."""
    xp = backend.get_array_module(g)
    n, hp, wp, c = nhwc.shape
    o, groups, (kh, kw), (oh, ow) = weight.shape[0], geo.groups, geo.kernel, geo.out
    wide = (oh - 1) * wp + ow  # the last row's zero columns would run past the padded image
    w_rows = input_rows_weight(weight, geo) if input_grad else None
    gpad = xp.zeros((n, groups, c // groups, hp * wp), dtype=g.dtype) if input_grad else None
    chunks = image_chunks(xp, n, geo, kh * kw * c, g.dtype.itemsize, gpu_bytes=GPU_ROWS_BYTES)
    parts: list[Any] = [None] * len(chunks)

    def chunk(k: int, images: slice, positions: slice) -> None:
        m = images.stop - images.start
        g_img = g[images].reshape(m, groups, o // groups, oh * ow)
        if weight_grad:
            c_img = im2col(nhwc[images], geo) if cols is None else cols[:, positions]  # (G, m*OH*OW, KH*KW*C/G)
            parts[k] = (g_img @ c_img.reshape(groups, m, oh * ow, -1).swapaxes(0, 1)).sum(axis=0)
        if input_grad:
            g_wide = wide_rows_like(g, m, wp)
            g_wide[..., :ow] = g[images]
            rows = w_rows @ g_wide.reshape(m, groups, o // groups, oh * wp)[..., :wide]  # (m, G, KH*KW*C/G, wide)
            rows = rows.reshape(m, groups, kh * kw, c // groups, wide)
            target = gpad[images]
            for i in range(kh):
                for j in range(kw):
                    shift = i * geo.dilation[0] * wp + j * geo.dilation[1]
                    target[..., shift:shift + wide] += rows[:, :, i * kw + j]

    cpu.run_tasks([functools.partial(chunk, k, *c) for k, c in enumerate(chunks)])
    gx = unpad2d(gpad.reshape(n, c, hp, wp), geo.pads) if input_grad else None
    if not weight_grad:
        return gx, None
    gw = parts[0]
    for part in parts[1:]:
        gw += part
    cg = c // groups
    return gx, gw.reshape(o, kh, kw, cg).transpose(0, 3, 1, 2)


def col2im(g_pf: Any, weight: Any, geo: Geometry, padded_shape: tuple[int, ...]) -> Any:
    """Input gradient (N, C, H, W) from g_pf (positions first): per chunk of images (the chunks
    shared among minitf's threads) and kernel offset, one GEMM gives that offset's column
    gradient (G, positions, C/G) in a buffer, added into the channels-last padded gradient. A GEMM
    per offset keeps each add's source contiguous (the adds from one GEMM's (positions,
    KH*KW*C/G) output are strided and twice as slow). Returns an NCHW view."""
    n, c, hp, wp = padded_shape
    g, (kh, kw) = geo.groups, geo.kernel
    per_offset = weight_columns(weight, geo).reshape(g, -1, kh * kw, c // g)  # (G, O/G, KH*KW, C/G)
    xp = backend.get_array_module(g_pf)
    gpad = xp.zeros((n, hp, wp, g, c // g), dtype=g_pf.dtype)
    chunks = image_chunks(xp, n, geo, kh * kw * c, g_pf.dtype.itemsize)

    def chunk(images: slice, positions: slice) -> None:
        g_chunk, gpad_chunk = g_pf[:, positions], gpad[images]
        offset_grad = xp.empty((g, g_chunk.shape[1], c // g), dtype=g_pf.dtype)
        for i, j, (_, rows, cols) in offset_slices(geo.kernel, geo.stride, geo.dilation, geo.out):
            cpu.matmul(g_chunk, per_offset[:, :, i * kw + j], out=offset_grad)
            gpad_chunk[:, rows, cols] += offset_grad.reshape(g, -1, *geo.out, c // g).transpose(1, 2, 3, 0, 4)

    cpu.run_tasks([functools.partial(chunk, *c) for c in chunks])
    return unpad2d(gpad.reshape(n, hp, wp, c).transpose(0, 3, 1, 2), geo.pads)
