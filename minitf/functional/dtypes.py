"""The dtype rule of the ops and layers with parameters, as PyTorch's: the input is floating
point and has its parameters' dtype (no silent promotion of a float32 layer to float64).
Dtypes are compared by kind and size, so a big-endian '>f4' array counts as float32."""
from __future__ import annotations

from typing import Any



class DtypeMismatchError(TypeError):
    """An input's dtype breaks the rule (gradcheck catches it to say: convert the module)."""


def same_dtype(a: Any, b: Any) -> bool:
    """Whether dtypes a and b hold the same numbers (byte order aside)."""
    return a.kind == b.kind and a.itemsize == b.itemsize


def check_dtypes(op: str, x: Any, hint: str = "", input_name: str = "input", **params: Any) -> None:
    """A DtypeMismatchError (a TypeError) naming `op` and both dtypes unless x (a Tensor or array)
    and every parameter given (a Tensor, array or None) share one floating-point dtype. The first
    parameter given sets the dtype; `hint` is added to the suggested fix for a floating input."""
    given = [(name, p) for name, p in params.items() if p is not None]
    if not given:
        return
    name, reference = given[0]
    want = reference.dtype
    if want.kind != "f":
        raise DtypeMismatchError(f"{op}: {name} must be floating point, got dtype {want}")
    if x.dtype.kind != "f":
        raise DtypeMismatchError(f"{op}: expects a floating {input_name}, got dtype {x.dtype}; "
                                 f"convert with x.astype(np.{want.name})")
    if not same_dtype(x.dtype, want):
        raise DtypeMismatchError(f"{op}: {input_name} dtype {x.dtype} does not match {name} dtype "
                                 f"{want}; convert with x.astype(np.{want.name}){hint}")
    for other, p in given[1:]:
        if not same_dtype(p.dtype, want):
            raise DtypeMismatchError(f"{op}: {other} dtype {p.dtype} does not match {name} dtype {want}")
