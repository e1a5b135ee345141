"""The dtype rule of the ops and layers with parameters, as PyTorch's: the input is floating
point and has its parameters' dtype (no silent promotion of a float32 layer to float64)."""
from __future__ import annotations

from typing import Any


def check_dtypes(op: str, x: Any, hint: str = "", **params: Any) -> None:
    """A TypeError naming `op` and both dtypes unless x (a Tensor or array) and every parameter
    given (a Tensor, array or None) share one floating-point dtype. The first parameter given
    sets the dtype; `hint` is added to the suggested fix for the input."""
    given = [(name, p) for name, p in params.items() if p is not None]
    if not given:
        return
    name, reference = given[0]
    want = reference.dtype
    if want.kind != "f":
        raise TypeError(f"{op}: {name} must be floating point, got dtype {want}")
    if x.dtype != want:
        raise TypeError(f"{op}: input dtype {x.dtype} does not match {name} dtype {want}; "
                        f"convert with x.astype(np.{want}){hint}")
    for other, p in given[1:]:
        if p.dtype != want:
            raise TypeError(f"{op}: {other} dtype {p.dtype} does not match {name} dtype {want}")
