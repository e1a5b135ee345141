"""`save(obj, path)` / `load(path)`: a nested structure as one safetensors file, its arrays as
tensors and the rest as JSON in the header's metadata (see the package's docstring)."""
from __future__ import annotations

import errno
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .. import backend
from ..atomic_file import atomic_write
from ..autograd import Tensor
from .header import (_CODES, DTYPES, FORMAT, MAX_DEPTH, VERSION, ArrayRef, CheckpointError, _read_header, _short)

# ---- saving -------------------------------------------------------------------------------

def save(obj: Any, path: str | os.PathLike) -> Path:
    """Write `obj` to `path` atomically as one safetensors file; returns the path.

    A failed write (e.g. a full disk) raises OSError naming `path` and leaves the old file as it was.
    """
    from safetensors import SafetensorError  # noqa: PLC0415 (only needed to write)
    from safetensors.numpy import save_file  # noqa: PLC0415

    arrays: dict[str, np.ndarray] = {}
    structure = _encode(obj, (), arrays)
    metadata = {"format": FORMAT, "version": str(VERSION), "structure": json.dumps(structure)}

    def write(tmp: Path) -> None:
        try:
            save_file(arrays, str(tmp), metadata=metadata)
        except SafetensorError as exc:
            error = _io_error(exc, path)
            if error is None:  # not the disk or the file system: a bug
                raise
            raise error from exc
    return atomic_write(path, write)


def _io_error(exc: Exception, path: str | os.PathLike) -> OSError | None:
    """The OSError that a safetensors write error stands for (it wraps them as text), or None."""
    message = str(exc)
    code = re.search(r"\(os error (\d+)\)", message)
    if code:
        return OSError(int(code.group(1)), os.strerror(int(code.group(1))), str(path))
    if "I/O error" in message:
        return OSError(errno.EIO, message, str(path))
    return None


def _encode(obj: Any, keys: tuple, arrays: dict[str, np.ndarray], shared: dict[int, Any] | None = None) -> Any:
    """The JSON node of `obj`; arrays go into `arrays` under a name made of `keys`, an array
    met again (a tied weight under two names) once: `shared` maps id -> (array, name)."""
    shared = {} if shared is None else shared
    if len(keys) > MAX_DEPTH:
        raise TypeError(f"minitf.save: {_path(keys)} is nested more than {MAX_DEPTH} levels deep "
                        "(a structure that contains itself?)")
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.generic):  # before float: np.float64 is a float subclass
        return {"scalar": _add_array(np.asarray(obj), keys, arrays, shared)}
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"float": repr(obj)}
    if isinstance(obj, dict):
        for key in obj:
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise TypeError(f"minitf.save: key {key!r} of {_path(keys)} is a {type(key).__name__}; "
                                "keys must be str or int")
        return {"dict": [[k, _encode(v, keys + (k,), arrays, shared)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {kind: [_encode(v, keys + (i,), arrays, shared) for i, v in enumerate(obj)]}
    if isinstance(obj, Tensor):
        return {"tensor": _add_array(obj.data, keys, arrays, shared), "requires_grad": obj.requires_grad}
    if isinstance(obj, np.ndarray) or backend.is_cupy_array(obj):
        return {"array": _add_array(obj, keys, arrays, shared)}
    raise TypeError(f"minitf.save: cannot save {_path(keys)} of type {type(obj).__module__}."
                    f"{type(obj).__qualname__}; supported: dict, list, tuple, arrays, Tensors, numbers, "
                    "bools, None and strings")


def _add_array(array: Any, keys: tuple, arrays: dict[str, np.ndarray], shared: dict[int, Any]) -> str:
    if id(array) in shared:  # safetensors holds each buffer once; the structure names it twice
        return shared[id(array)][1]
    host = np.asarray(backend.to_device(array, "cpu"))
    if not host.flags.c_contiguous:  # (np.ascontiguousarray would turn a 0-d array into 1-d)
        host = host.copy(order="C")
    if host.dtype.newbyteorder("=") in _CODES and host.dtype.byteorder == ">":
        host = host.astype(host.dtype.newbyteorder("<"))
    if host.dtype not in _CODES:
        raise TypeError(f"minitf.save: {_path(keys)} has dtype {host.dtype}, which safetensors cannot "
                        f"hold; supported: {', '.join(str(np.dtype(t)) for t in DTYPES.values())}")
    name = ".".join(str(k) for k in keys) or "array"
    unique, n = name, 1
    while unique in arrays:  # e.g. {"a.b": x, "a": {"b": y}}: the structure records which is which
        n += 1
        unique = f"{name}#{n}"
    arrays[unique] = host
    shared[id(array)] = (array, unique)  # the array kept alive, so that its id is not reused
    return unique


def _path(keys: tuple) -> str:
    return "obj" + "".join(f"[{k!r}]" for k in keys)


# ---- loading ------------------------------------------------------------------------------

class StoredFile:
    """A checked safetensors header: `metadata`, `arrays` (name -> ArrayRef), and reading on demand."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.metadata, entries, self._data_start = _read_header(self.path)
        self.arrays = {name: ref for name, (ref, _) in entries.items()}
        self._offsets = {name: offset for name, (_, offset) in entries.items()}
        self._loaded: dict[str, np.ndarray] = {}  # what materialize has read, by array name

    @property
    def is_minitf(self) -> bool:
        return self.metadata.get("format") == FORMAT

    def structure(self) -> Any:
        """The saved structure with ArrayRef leaves (a flat dict of them for a foreign file)."""
        if not self.is_minitf:
            return dict(self.arrays)
        if self.metadata.get("version") != str(VERSION):
            raise CheckpointError(f"{self.path} is minitf file version {self.metadata.get('version')}; "
                                  f"this minitf reads version {VERSION}")
        try:
            node = json.loads(self.metadata.get("structure", ""))
        except (ValueError, RecursionError) as exc:  # ValueError: also an integer of over 4,300 digits
            raise CheckpointError(f"{self.path}: the saved structure is not valid JSON ({exc})") from None
        return _decode(node, self, ())

    def read(self, ref: ArrayRef) -> Any:
        """The array (or Tensor, or NumPy scalar) that `ref` names, read from the file."""
        return _wrap(self._read_array(ref), ref)

    def _read_array(self, ref: ArrayRef) -> np.ndarray:
        with open(self.path, "rb") as f:
            f.seek(self._data_start + self._offsets[ref.name])
            array = np.fromfile(f, dtype=ref.dtype.newbyteorder("<"), count=math.prod(ref.shape))
        if array.size != math.prod(ref.shape):
            raise CheckpointError(f"{self.path}: array {ref.name!r} is truncated")
        return array.astype(ref.dtype, copy=False).reshape(ref.shape)

    def materialize(self, tree: Any) -> Any:
        """`tree` with each ArrayRef replaced by what it names. Each stored array is read once, however
        many references name it (a tied weight; a crafted file naming one array thousands of times):
        all of them get that one array (Tensor references one Tensor of it)."""
        wrapped: dict[tuple, Any] = {}

        def fill(node: Any) -> Any:
            if isinstance(node, ArrayRef):
                if node.name not in self._loaded:
                    self._loaded[node.name] = self._read_array(node)
                key = (node.name, node.kind, node.requires_grad)
                if key not in wrapped:
                    wrapped[key] = _wrap(self._loaded[node.name], node)
                return wrapped[key]
            if isinstance(node, dict):
                return {k: fill(v) for k, v in node.items()}
            if isinstance(node, (list, tuple)):
                return type(node)(fill(v) for v in node)
            return node
        return fill(tree)


def _wrap(array: np.ndarray, ref: ArrayRef) -> Any:
    """What `ref` names, made of its stored `array`: the array, a Tensor of it, or a NumPy scalar."""
    if ref.kind == "tensor":
        return Tensor(array, requires_grad=ref.requires_grad)
    return array[()] if ref.kind == "scalar" else array


def open_file(path: str | os.PathLike) -> StoredFile:
    """Check the header of the safetensors file at `path` without reading any array."""
    return StoredFile(path)


def load(path: str | os.PathLike) -> Any:
    """Read what `save` wrote (arrays as NumPy, Tensors on the CPU), or any safetensors file as a
    flat dict of NumPy arrays. CheckpointError says what is wrong, or what the file is instead."""
    stored = open_file(path)
    return stored.materialize(stored.structure())


def _decode(node: Any, stored: StoredFile, keys: tuple) -> Any:
    """The structure that JSON `node` describes, with ArrayRef leaves; CheckpointError names the key."""
    if len(keys) > MAX_DEPTH:
        raise CheckpointError(f"{stored.path}: the structure is nested deeper than {MAX_DEPTH} levels")
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, dict) and len(node) in (1, 2):
        (tag, value), *rest = node.items()
        if tag == "dict" and isinstance(value, list) and all(_is_key(e) for e in value):
            return {k: _decode(v, stored, keys + (k,)) for k, v in value}
        if tag in ("list", "tuple") and isinstance(value, list):
            items = [_decode(v, stored, keys + (i,)) for i, v in enumerate(value)]
            return items if tag == "list" else tuple(items)
        if tag == "float" and value in ("nan", "inf", "-inf"):
            return float(value)
        if tag in ("array", "tensor", "scalar") and isinstance(value, str):
            if value not in stored.arrays:
                raise CheckpointError(f"{stored.path}: {_path(keys)[:200]} names array {_short(value)}, which the file "
                                     "does not hold")
            ref = stored.arrays[value]
            grad = bool(rest and rest[0][0] == "requires_grad" and rest[0][1] is True)
            if grad and ref.dtype.kind != "f":
                raise CheckpointError(f"{stored.path}: {_path(keys)[:200]} is a tensor of dtype {ref.dtype} that "
                                      "requires grad; only floating-point tensors can")
            return ArrayRef(ref.name, ref.dtype, ref.shape, tag, grad)
    raise CheckpointError(f"{stored.path}: {_path(keys)[:200]} has an unknown structure node {str(node)[:80]}")


def _is_key(entry: Any) -> bool:
    return (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], (str, int))
            and not isinstance(entry[0], bool))


def iter_refs(tree: Any) -> Iterator[ArrayRef]:
    """Every ArrayRef in a structure, depth first."""
    if isinstance(tree, ArrayRef):
        yield tree
    elif isinstance(tree, dict):
        for v in tree.values():
            yield from iter_refs(v)
    elif isinstance(tree, (list, tuple)):
        for v in tree:
            yield from iter_refs(v)
