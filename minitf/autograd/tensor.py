"""The Tensor and the graph it records.

A Tensor wraps one backend array (`.data`, NumPy or CuPy). An op that has an input
requiring grad returns a Tensor that remembers its inputs (`_parents`) and a closure
(`_backward`) mapping the output's gradient to one gradient per input. The ops
themselves live next to their backward passes in `ops_*.py`; `minitf.autograd`
binds them to this class (op_table.py). graph.py walks the graph backward,
grad_mode.py says whether ops record it, hooks.py keeps the leaves' gradient hooks.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .. import backend
from ..backend import Device
from . import graph, versions
from .axes import normalize_axis
from .grad_mode import mode
from .hooks import HookHandle

Array = Any  # a numpy.ndarray or cupy.ndarray
BackwardFn = Callable[[Array], Sequence[Any]]
HigherFn = Callable[[Any, Any], Sequence[Any]]  # (g: Tensor, out: Tensor) -> a Tensor (or None) per parent
SAME_RULE = graph.SAME_RULE


class Size(int):
    """`Tensor.size`: an int, the element count, as NumPy's `size`; calling it is torch's
    `size()`: `t.size()` is the shape and `t.size(dim)` the length of axis `dim`."""

    def __new__(cls, count: int, shape: tuple[int, ...]) -> "Size":
        size = super().__new__(cls, count)
        size.shape = tuple(shape)
        return size

    def __getnewargs__(self) -> tuple[int, tuple[int, ...]]:  # pickle and copy
        return int(self), self.shape

    def __call__(self, dim: int | None = None) -> Any:
        if dim is None:
            return self.shape
        return self.shape[normalize_axis(dim, len(self.shape), "size")]


class Tensor:
    """An n-dimensional array on one device, with reverse-mode autograd.

    Create one with `minitf.tensor(...)`. Integer and boolean tensors (ids, targets,
    masks) never require grad.
    """

    __slots__ = ("data", "grad", "requires_grad", "_parents", "_backward", "_higher", "_made_at", "__weakref__")
    __array_ufunc__ = None  # make `ndarray * Tensor` defer to Tensor.__rmul__

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None,
                 device: str | Device | None = None) -> None:
        array = as_array(data, dtype)
        if device is not None:
            array = backend.to_device(array, device)
        if requires_grad and array.dtype.kind != "f":
            raise TypeError(
                f"only floating-point tensors can require grad; this one has dtype {array.dtype}"
            )
        self.data = array
        self.grad: Array | None = None
        self.requires_grad = bool(requires_grad)
        self._parents: tuple[Tensor, ...] = ()
        self._backward: BackwardFn | None = None
        self._higher: HigherFn | None = None

    # ---- properties -------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> "Size":
        """The element count (NumPy's `size`), also callable as torch's `size()` (the shape) and
        `size(dim)` (one axis's length, dim negative allowed)."""
        return Size(self.data.size, self.data.shape)

    def numel(self) -> int:
        """The element count (torch's numel)."""
        return self.data.size

    def dim(self) -> int:
        """The number of axes (torch's dim; ndim)."""
        return self.data.ndim

    @property
    def device(self) -> Device:
        return backend.device_of(self.data)

    @property
    def is_leaf(self) -> bool:
        return self._backward is None

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        device = "" if self.device.kind == "cpu" else f", device='{self.device}'"
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(")
        return f"tensor({body}, dtype={self.dtype}{device}{grad})"

    # ---- conversions ------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (copied from the GPU when needed)."""
        return backend.to_device(self.data, "cpu")

    def item(self) -> Any:
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, this one has shape {self.shape}")
        return self.data.item()

    def tolist(self) -> Any:
        return self.numpy().tolist()

    def _one_element(self, kind: str) -> Any:
        if self.data.size != 1:
            raise TypeError(f"{kind}() needs a tensor with one element, this one has shape {self.shape}")
        return self.data.item()

    def __float__(self) -> float:
        return float(self._one_element("float"))

    def __int__(self) -> int:
        return int(self._one_element("int"))

    def __bool__(self) -> bool:
        return bool(self._one_element("bool"))

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """NumPy 2's array protocol: `np.asarray(t)` is the data on the host (copied from a GPU)."""
        on_host = isinstance(self.data, np.ndarray)
        if copy is False and (not on_host or (dtype is not None and np.dtype(dtype) != self.dtype)):
            raise ValueError("np.asarray(tensor, copy=False): the tensor's data cannot be used without "
                             f"a copy (device {self.device}, dtype {self.dtype}, asked for {dtype})")
        array = self.numpy()
        if dtype is not None:
            array = array.astype(dtype, copy=False)
        return array.copy() if copy and array is self.data else array

    def detach(self) -> "Tensor":
        """The same data, cut from the graph."""
        return Tensor.from_op(self.data)

    def requires_grad_(self, flag: bool = True) -> "Tensor":
        if flag and self.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require grad, not {self.dtype}")
        self.requires_grad = flag
        return self

    def zero_grad(self) -> None:
        self.grad = None

    def register_post_accumulate_grad_hook(self, hook: Callable[["Tensor"], None]) -> "HookHandle":
        """Call `hook(self)` during backward() each time this leaf's `.grad` is complete.

        "Complete" means every path of the graph has contributed: the hook sees the final
        `.grad` of this backward pass (already added to any earlier gradient), so it may
        read, scale or send it, e.g. to start an all-reduce while the rest of the
        backward pass runs. Returns a handle whose `remove()` unregisters the hook.
        """
        if not self.is_leaf:
            raise RuntimeError("post-accumulate-grad hooks can only be registered on leaf tensors")
        return HookHandle(self, hook)

    # ---- graph construction -----------------------------------------------------------
    @staticmethod
    def from_op(data: Array, parents: tuple["Tensor", ...] = (),
                backward: BackwardFn | None = None, higher: HigherFn | None = None) -> "Tensor":
        """Wrap an op's output array `data` computed from the tensors `parents`.

        `backward(g)` maps the output's gradient `g` (an array of data's shape) to one gradient
        array per parent, or None for a parent that needs none; broadcasting is summed back by
        the engine. `higher(g, out)` is the same rule written with Tensor ops on the Tensor `g`
        (and the output tensor `out`, when the rule needs it), so that the gradient it returns is
        itself differentiable: backward(create_graph=True) and autograd.grad use it. An op
        without `higher` refuses create_graph with a clear error (`higher=SAME_RULE`: the backward
        itself works on a Tensor `g`). The graph is recorded only if
        some parent requires grad.
        """
        t = Tensor.__new__(Tensor)
        if isinstance(data, np.generic):  # NumPy reductions of 0-d arrays give scalars
            data = np.asarray(data)
        t.data = data
        t.grad = None
        if backward is not None and mode.enabled and _any_requires_grad(parents):
            t.requires_grad = True
            t._parents = parents
            t._backward = backward
            t._higher = higher
            t._made_at = versions.clock
        else:
            t.requires_grad = False
            t._parents = ()
            t._backward = None
            t._higher = None
        return t

    # ---- backward ---------------------------------------------------------------------
    def backward(self, grad: Any = None, retain_graph: bool | None = None, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into `.grad` of every leaf that requires grad.

        `grad` is the cotangent of `self` (same shape); it may be omitted for a one-element
        tensor. Saved arrays are released unless `retain_graph` (default: `create_graph`).
        With `create_graph=True` the gradients are Tensors with a graph of their own (each
        leaf's `.grad` too), so that they can be differentiated again.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad (no graph was recorded)")
        seed = self._seed_gradient(grad)
        if create_graph:
            seed = (grad.astype(self.dtype) if grad.dtype != self.dtype else grad) if isinstance(grad, Tensor) \
                else Tensor.from_op(seed)
        retain = create_graph if retain_graph is None else retain_graph
        graph.backward([self], [seed], {id(seed)} if grad is not None else set(), retain, create_graph)

    def _seed_gradient(self, grad: Any) -> Array:
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a one-element output, but this tensor has "
                    f"shape {self.shape}; pass grad= with that shape (for example the cotangent)"
                )
            xp = backend.get_array_module(self.data)
            return xp.ones_like(self.data)
        g = grad.data if isinstance(grad, Tensor) else grad
        if hasattr(g, "shape"):
            backend.check_same_device("backward", self.data, g)
        xp = backend.get_array_module(self.data)
        g = xp.asarray(g, dtype=self.dtype)
        if g.shape != self.shape:
            raise ValueError(f"backward(): grad has shape {g.shape} but the tensor has shape {self.shape}")
        return g


def _any_requires_grad(parents: tuple[Tensor, ...]) -> bool:
    for p in parents:
        if p.requires_grad:
            return True
    return False


# ---- creating tensors -------------------------------------------------------------------

def as_array(data: Any, dtype: Any = None) -> Array:
    """Backend array from data: float64 arrays stay float64, Python floats become float32.

    Only bool, integer and floating-point dtypes are supported (a TypeError names any other);
    an array in non-native byte order ('>f4' on x86) is converted to native order (a copy)."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        xp = backend.get_array_module(data)
        array = xp.asarray(data, dtype=dtype)
    elif isinstance(data, np.ndarray) or backend.is_cupy_array(data):
        array = data
    elif isinstance(data, np.generic):
        array = np.asarray(data)
    else:
        array = np.asarray(data)
        if array.dtype == np.float64:  # came from Python floats
            array = array.astype(np.float32)
    return _supported(array)


def _supported(array: Array) -> Array:
    if array.dtype.kind not in "biuf":
        raise TypeError(f"cannot make a tensor of dtype {array.dtype}: minitf supports bool, "
                        "integer and floating-point dtypes")
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    return array


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None,
           device: str | Device = "cpu") -> Tensor:
    """Make a tensor from a list, scalar or array, on `device` ("cpu", "cuda" or "cuda:N").

    NumPy/CuPy arrays keep their dtype; Python floats and lists of them become float32;
    integers and booleans stay integer and boolean. The data is always copied, as
    torch.tensor, so later writes to the array do not reach the tensor (or a gradient made
    from it); `minitf.from_numpy` and `minitf.as_tensor` share the memory instead.
    """
    source = data.data if isinstance(data, Tensor) else data
    t = Tensor(source, requires_grad=requires_grad, dtype=dtype, device=device)
    if _shares_memory(t.data, source):
        t.data = t.data.copy()
    return t


def _shares_memory(array: Array, source: Any) -> bool:
    """Whether the backend array made from `source` may use `source`'s memory."""
    if backend.is_cupy_array(array) or backend.is_cupy_array(source):
        return versions.owner(array) is versions.owner(source)
    if isinstance(source, (list, tuple)) or np.isscalar(source):
        return False
    return bool(np.may_share_memory(array, source))


__all__ = ["Tensor", "Size", "tensor", "as_array"]
