"""`OpTest`: an op described once (its cases and which properties apply), checked generically.

In the spirit of Chainer's `FunctionTestCase`: say how to draw calls of your op (a hypothesis
strategy of `OpCase`s, or one fixed `OpCase`) and get the generic checks:

    "forward"   the float64 output equals the NumPy reference
    "gradient"  every float input's gradient equals central differences in float64 (random cotangent)
    "gradgrad"  second derivatives: the gradient's own gradients (create_graph) equal central differences
    "no_gradient"  the output carries no graph (an op that is not differentiable, e.g. argmax: an index)
    "float32"   output and gradients stay float32, on the device, with their shapes; output near the reference
    "float64"   the same in float64
    "cupy"      CuPy and NumPy give the same output and gradients (needs a GPU)
    "torch"     output and gradients equal the PyTorch counterpart's (needs PyTorch)
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from .. import backend
from .cases import OpCase
from .gradients import device_under_test

CHECKS = ("forward", "gradient", "gradgrad", "no_gradient", "float32", "float64", "cupy", "torch")
NUMPY_CHECKS = ("forward", "gradient", "gradgrad", "float32", "float64", "cupy")  # a NumPy reference, no PyTorch


def _run_check(case: OpCase, check: str, device: str, options: Mapping[str, Any]) -> None:
    if check == "forward":
        case.check_forward(device, **options)
    elif check == "gradient":
        case.check_gradient(device, **options)
    elif check == "gradgrad":
        case.check_gradgrad(device, **options)
    elif check == "no_gradient":
        case.check_no_gradient(device)
    elif check in ("float32", "float64"):
        case.check_dtype(np.dtype(check).type, device, **options)
    elif check == "cupy":
        case.check_cupy_matches_numpy(**options)
    else:
        case.check_matches_torch(**options)


def _skip_without(check: str) -> None:
    """Skip the running pytest test when the "cupy" check has no GPU or the "torch" check no PyTorch."""
    import pytest

    if check == "torch":
        pytest.importorskip("torch")
    if check == "cupy" and not backend.cuda_available():
        pytest.skip("the cupy check needs CuPy and a CUDA GPU")


@dataclass(frozen=True)
class OpTest:
    """An op's cases and the generic checks that apply to them.

    name: a label for reports. cases: a hypothesis strategy that draws `OpCase`s, or one `OpCase`.
    checks: names from `CHECKS`. examples: hypothesis' max_examples per check (others: the loaded
    profile's). options: keyword arguments per check, e.g. {"float32": {"float32_tol": 1e-3}} or
    {"torch": {"rtol_grad": 1e-12}}.
    """

    name: str
    cases: st.SearchStrategy[OpCase] | OpCase
    checks: tuple[str, ...] = NUMPY_CHECKS
    examples: Mapping[str, int] = field(default_factory=dict)
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.checks, str) or not isinstance(self.cases, (OpCase, st.SearchStrategy)):
            raise TypeError(f"OpTest {self.name!r}: cases must be an OpCase or a hypothesis strategy of them, "
                            f"checks a tuple of names (e.g. ('forward',)); got cases {type(self.cases).__name__}, "
                            f"checks {self.checks!r}")
        unknown = set(self.checks) | set(self.examples) | set(self.options)
        if unknown - set(CHECKS):
            raise ValueError(f"OpTest {self.name!r}: unknown checks {sorted(unknown - set(CHECKS))}; "
                             f"choose from {CHECKS}")

    def check(self, check: str, device: str | None = None) -> None:
        """Run one generic check on the fixed case, or on the cases hypothesis draws, on `device`
        ($MINITF_TEST_DEVICE, "cpu" by default); skip it (pytest) when it needs a missing GPU or PyTorch."""
        if check not in self.checks:
            raise ValueError(f"OpTest {self.name!r} does not declare the check {check!r}: {self.checks}")
        _skip_without(check)
        device = device or device_under_test()
        options = self.options.get(check, {})
        if isinstance(self.cases, OpCase):
            _run_check(self.cases, check, device, options)
            return

        def drawn(case: OpCase) -> None:
            _run_check(case, check, device, options)

        # its own name: hypothesis derives the derandomized seed and the example database key from it
        drawn.__name__ = drawn.__qualname__ = re.sub(r"\W", "_", f"{self.name}_{check}")
        test = given(case=self.cases)(drawn)
        if check in self.examples:
            test = settings(max_examples=self.examples[check])(test)
        test()


def op_tests(cases: Mapping[str, st.SearchStrategy[OpCase] | OpCase], **common: Any) -> list[OpTest]:
    """One `OpTest` per named entry of `cases`, all with the same `checks`, `examples` and `options`."""
    return [OpTest(name, strategy, **common) for name, strategy in sorted(cases.items())]
