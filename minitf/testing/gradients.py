"""Tensors on the device under test, and `assert_grad_close` for checking a backward by hand."""
from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

from ..autograd import Tensor
from ..gradcheck import gradcheck


def device_under_test() -> str:
    """The device the test suite runs on: $MINITF_TEST_DEVICE, "cpu" by default."""
    return os.environ.get("MINITF_TEST_DEVICE", "cpu")


def as_tensors(*arrays: Any, requires_grad: bool = True, device: str | None = None) -> list[Tensor]:
    """Float64 tensors on the test device that require grad."""
    device = device or device_under_test()
    return [Tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad, device=device)
            for a in arrays]


def assert_grad_close(fn: Callable[..., Any], *inputs: Any, eps: float = 1e-6, atol: float = 1e-5,
                      rtol: float = 1e-3, fast: bool = False) -> None:
    """Assert that `fn`'s backward matches finite differences for every float input.

    Arrays among `inputs` become float64 tensors that require grad; tensors are used as
    they are (so pass integer targets or masks as tensors or non-float arrays).
    """
    args = [Tensor(x.astype(np.float64), requires_grad=True, device=device_under_test())
            if isinstance(x, np.ndarray) and x.dtype.kind == "f" else x for x in inputs]
    gradcheck(fn, args, eps=eps, atol=atol, rtol=rtol, fast=fast)
