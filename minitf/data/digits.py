"""A small offline stand-in for MNIST: handwritten-looking digits rendered from stroke templates.

Each digit 0-9 is a few polylines in a unit box (x right, y down). A sample draws a random affine
warp (rotation, scale, shear, shift) and stroke width, renders the strokes at 4x the output size
with a soft edge, averages 4x4 blocks (grey levels as in scikit-learn's 8x8 digits) and adds a
little noise. Deterministic for a seed; NumPy only.
"""
from __future__ import annotations

import math

import numpy as np


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float, n: int = 10) -> list:
    """Points on an ellipse from angle `start` to `end` (degrees, clockwise on screen as y is down)."""
    t = np.radians(np.linspace(start, end, n))
    return list(zip(cx + rx * np.cos(t), cy + ry * np.sin(t)))


STROKES: dict[int, list[list[tuple[float, float]]]] = {
    0: [_arc(0.5, 0.5, 0.28, 0.4, 0, 360, 16)],
    1: [[(0.35, 0.25), (0.55, 0.1), (0.55, 0.9)]],
    2: [_arc(0.5, 0.32, 0.28, 0.22, 190, 370) + [(0.2, 0.9), (0.82, 0.9)]],
    3: [_arc(0.48, 0.3, 0.27, 0.2, 200, 450), _arc(0.48, 0.7, 0.3, 0.2, 270, 520)],
    4: [[(0.65, 0.9), (0.65, 0.1), (0.15, 0.65), (0.85, 0.65)]],
    5: [[(0.78, 0.1), (0.28, 0.1), (0.24, 0.45)] + _arc(0.48, 0.64, 0.3, 0.26, 220, 490)],
    6: [[(0.72, 0.12)] + _arc(0.5, 0.66, 0.27, 0.24, 200, 560, 18)],
    7: [[(0.2, 0.1), (0.82, 0.1), (0.42, 0.9)]],
    8: [_arc(0.5, 0.29, 0.22, 0.19, 0, 360, 14), _arc(0.5, 0.7, 0.27, 0.21, 0, 360, 14)],
    9: [_arc(0.5, 0.34, 0.27, 0.24, 0, 360, 14), [(0.77, 0.34), (0.7, 0.9)]],
}


def _segments(digit: int) -> np.ndarray:
    """(S, 2, 2) line segments of a digit's strokes."""
    segs = [(a, b) for stroke in STROKES[digit] for a, b in zip(stroke[:-1], stroke[1:])]
    return np.asarray(segs, dtype=np.float64)


def _warp(rng: np.random.Generator) -> np.ndarray:
    """A random 2x3 affine map of the unit box around its centre."""
    angle = math.radians(rng.uniform(-15, 15))
    sx, sy = rng.uniform(0.65, 1.05), rng.uniform(0.75, 1.05)
    shear = rng.uniform(-0.3, 0.3)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    linear = rot @ np.array([[sx, shear], [0.0, sy]])
    shift = np.array([0.5, 0.5]) + rng.uniform(-0.1, 0.1, 2)
    return np.concatenate([linear, (shift - linear @ np.array([0.5, 0.5]))[:, None]], axis=1)


def _render(segments: np.ndarray, width: float, size: int, oversample: int = 4) -> np.ndarray:
    """Grey levels in [0, 1] of strokes of `width` (unit-box units), (size, size)."""
    n = size * oversample
    centers = (np.arange(n) + 0.5) / n
    pixels = np.stack(np.meshgrid(centers, centers, indexing="xy"), axis=-1).reshape(-1, 1, 2)
    a, b = segments[None, :, 0], segments[None, :, 1]
    ab = b - a
    t = np.clip(((pixels - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0, 1)
    dist = np.linalg.norm(pixels - (a + t[..., None] * ab), axis=-1).min(axis=1)
    ink = np.clip((width / 2 - dist) * n + 0.5, 0, 1).reshape(n, n)
    return ink.reshape(size, oversample, size, oversample).mean(axis=(1, 3))


def make_digits(n: int, size: int = 8, seed: int = 0, noise: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """`n` digit images (n, size, size) float32 in [0, 1] and their labels (n,) int64, classes balanced
    and shuffled. Each image is a random warp of its digit's strokes (see the module docstring)."""
    if n < 1 or size < 4:
        raise ValueError(f"make_digits: needs n >= 1 and size >= 4, got n={n}, size={size}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 10).astype(np.int64)
    images = np.empty((n, size, size), dtype=np.float32)
    for i, digit in enumerate(labels):
        warp = _warp(rng)
        segs = _segments(int(digit)) @ warp[:, :2].T + warp[:, 2]
        image = _render(segs, rng.uniform(0.1, 0.16), size)
        images[i] = np.clip(image + noise * rng.standard_normal(image.shape), 0, 1)
    return images, labels
