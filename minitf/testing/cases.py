"""`OpCase`: one call of an op on concrete inputs, with the generic checks that any op should pass.

A case holds the float inputs (whose gradients are checked), any integer or boolean inputs
(ids, targets, masks), how to call the op, and what it should equal: a float64 NumPy
reference, a PyTorch counterpart, or both. Each `check_*` method is one property; `OpTest`
(in `minitf.testing.optest`) runs them on hypothesis-drawn cases.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .. import backend
from ..autograd import Tensor, grad
from ..gradcheck import gradcheck, gradgradcheck


@dataclass
class OpCase:
    """`call(*float_tensors, *aux_tensors)` should equal `reference(*floats, *aux)` and
    `torch(*floats_as_torch, *aux_as_torch)`.

    floats: float64 NumPy arrays, the differentiable inputs (the order `call` takes them).
    reference: a float64 NumPy function of the same arrays (None: no reference).
    aux: integer or boolean arrays (ids, targets, masks) or None, passed after the floats.
    torch: the PyTorch function of the same inputs as torch tensors (None: no counterpart).
    """

    call: Callable[..., Tensor]
    floats: tuple[np.ndarray, ...]
    reference: Callable[..., np.ndarray] | None = None
    aux: tuple[Any, ...] = field(default=())
    torch: Callable[..., Any] | None = None

    def __post_init__(self) -> None:
        """TypeError for arguments that would fail later with an unrelated message."""
        if not callable(self.call):
            raise TypeError(f"OpCase: call must be the op (a function), got {type(self.call).__name__}")
        if not isinstance(self.floats, (tuple, list)) or not all(hasattr(a, "astype") for a in self.floats):
            raise TypeError(f"OpCase: floats must be a tuple of NumPy arrays (the op's float inputs, e.g. (x,)), "
                            f"got {type(self.floats).__name__}")
        self.floats, self.aux = tuple(self.floats), tuple(self.aux)
        for name in ("reference", "torch"):
            if getattr(self, name) is not None and not callable(getattr(self, name)):
                raise TypeError(f"OpCase: {name} must be a function or None, got {type(getattr(self, name)).__name__}")

    def _needs(self, name: str, checks: str) -> Callable[..., Any]:
        if getattr(self, name) is None:
            raise ValueError(f"OpCase of {getattr(self.call, '__name__', self.call)!r} has no {name}, which the "
                             f"{checks} compare with: give OpCase(..., {name}=...)")
        return getattr(self, name)

    def tensors(self, device: str, dtype: Any = np.float64) -> tuple[list[Tensor], list[Any]]:
        """The floats as `dtype` tensors that require grad, and the aux as tensors, on `device`."""
        floats = [Tensor(a.astype(dtype), requires_grad=True, device=device) for a in self.floats]
        aux = [None if a is None else Tensor(a, device=device) for a in self.aux]
        return floats, aux

    def run(self, device: str, dtype: Any = np.float64) -> tuple[Tensor, list[Tensor]]:
        """The op's output and its float input tensors."""
        floats, aux = self.tensors(device, dtype)
        out = self.call(*floats, *aux)
        if not isinstance(out, Tensor):
            raise TypeError(f"OpCase: the op must return a minitf Tensor, got {type(out).__name__}")
        return out, floats

    def expected(self) -> np.ndarray:
        """The reference's output, in float64."""
        reference = self._needs("reference", "forward, float32 and float64 checks")
        return np.asarray(reference(*self.floats, *self.aux), dtype=np.float64)

    def check_forward(self, device: str, rtol: float = 1e-10, atol: float = 1e-12) -> None:
        """The float64 output against the reference: same shape, equal up to rounding."""
        expected = self.expected()
        out, _ = self.run(device)
        assert out.shape == expected.shape, f"output shape {out.shape}, the reference's {expected.shape}"
        np.testing.assert_allclose(out.numpy(), expected, rtol=rtol, atol=atol)

    def check_gradient(self, device: str) -> None:
        """Every float input's gradient against central differences in float64 (random cotangent)."""
        floats, aux = self.tensors(device)
        assert gradcheck(lambda *t: self.call(*t, *aux), floats)

    def check_gradgrad(self, device: str, fast: bool = True) -> None:
        """Second derivatives: the first-order vjp's gradients against central differences in
        float64 (gradgradcheck; `fast`: random projections, two evaluations per input)."""
        floats, aux = self.tensors(device)
        assert gradgradcheck(lambda *t: self.call(*t, *aux), floats, fast=fast)

    def check_no_gradient(self, device: str) -> None:
        """The output of an op that is not differentiable (an index, a count) keeps no graph to its
        inputs, although they require grad: a backward through it is an error, never a silent zero."""
        out, _ = self.run(device)
        assert not out.requires_grad and out.is_leaf, "the output of a non-differentiable op requires grad"

    def check_dtype(self, dtype: Any, device: str, float32_tol: float = 1e-4) -> None:
        """The output and every gradient keep `dtype`, the device and their shapes; the output is
        close to the reference (to `float32_tol` in float32)."""
        out, inputs = self.run(device, dtype)
        on = backend.parse_device(device)
        assert out.dtype == dtype and out.device == on
        tol = float32_tol if dtype == np.float32 else 1e-10
        np.testing.assert_allclose(out.numpy(), self.expected(), rtol=tol, atol=tol)
        cotangent = np.random.default_rng(0).standard_normal(out.shape).astype(dtype)
        out.backward(Tensor(cotangent, device=device))
        for x in inputs:
            assert x.grad is not None
            assert x.grad.shape == x.shape and x.grad.dtype == dtype
            assert backend.device_of(x.grad) == on

    def check_cupy_matches_numpy(self) -> None:
        """Output and gradients on CuPy equal those on NumPy up to rounding (needs a GPU)."""
        results = []
        for device in ("cpu", "cuda"):
            out, inputs = self.run(device)
            assert out.device.kind == device
            cotangent = np.random.default_rng(0).standard_normal(out.shape)
            out.backward(Tensor(cotangent, device=device))
            results.append([out.numpy()] + [backend.to_device(x.grad, "cpu") for x in inputs])
        for on_cpu, on_gpu in zip(*results):
            np.testing.assert_allclose(on_gpu, on_cpu, rtol=1e-9, atol=1e-12)

    def check_matches_torch(self, rtol_out: float = 1e-10, rtol_grad: float = 1e-9, second_order: bool = True) -> None:
        """Forward in float64 on the CPU and every float input's gradient, for the same random
        cotangent, against the `torch` counterpart (needs PyTorch); with `second_order`, the double
        backward too (the gradient of a random projection of the first-order gradients)."""
        counterpart = self._needs("torch", "torch check")
        import torch

        mine, aux = self.tensors("cpu")
        reference = [torch.tensor(a, requires_grad=True) for a in self.floats]
        out = self.call(*mine, *aux)
        expected = counterpart(*reference, *[None if a is None else torch.as_tensor(a) for a in self.aux])
        assert out.shape == tuple(expected.shape) and out.dtype == np.float64
        np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=rtol_out, atol=1e-12)
        cotangent = np.random.default_rng(9).standard_normal(out.shape)
        if second_order:
            _compare_second_order(out, mine, expected, reference, cotangent, rtol_grad)
        out.backward(Tensor(cotangent))
        expected.backward(torch.tensor(cotangent))
        for i, (x, t) in enumerate(zip(mine, reference)):
            np.testing.assert_allclose(x.grad, t.grad.numpy(), rtol=rtol_grad, atol=1e-12, err_msg=f"input {i}")


def _compare_second_order(out: Tensor, mine: list[Tensor], expected: Any, reference: list[Any], cotangent: Any,
                          rtol: float) -> None:
    """The double backward against PyTorch's: the gradient of u . (v^T J) with respect to every float
    input, for random v (the cotangent) and u (a direction per input)."""
    import torch

    rng = np.random.default_rng(10)
    directions = [rng.standard_normal(x.shape) for x in mine]
    firsts = grad([out], mine, [cotangent], retain_graph=True, create_graph=True, allow_unused=True)
    terms = [(g * u).sum() for g, u in zip(firsts, directions) if g is not None and g.requires_grad]
    seconds = grad(terms, mine, retain_graph=True, allow_unused=True) if terms else [None] * len(mine)
    t_firsts = torch.autograd.grad(expected, reference, torch.tensor(cotangent), retain_graph=True,
                                   create_graph=True, allow_unused=True)
    t_terms = [(g * torch.tensor(u)).sum() for g, u in zip(t_firsts, directions) if g is not None and g.requires_grad]
    t_seconds = torch.autograd.grad(t_terms, reference, retain_graph=True, allow_unused=True) if t_terms \
        else [None] * len(mine)
    for i, (h, t) in enumerate(zip(seconds, t_seconds)):
        h = np.zeros(mine[i].shape) if h is None else h.numpy()
        t = np.zeros(mine[i].shape) if t is None else t.numpy(force=True)  # (PyTorch may give a ZeroTensor)
        np.testing.assert_allclose(h, t, rtol=rtol, atol=1e-10, err_msg=f"second derivatives, input {i}")
