"""Saving anything without pickle: `save(obj, path)` / `load(path)`, one safetensors file.

`obj` is a nested structure of dicts (str or int keys), lists, tuples, NumPy/CuPy arrays,
Tensors, NumPy scalars, Python numbers, bools, None and strings. The arrays are written as
safetensors tensors (CuPy arrays copied to the host) named by their key path joined with
dots: `save(model.state_dict(), "w.safetensors")` names each tensor after its parameter, so
PyTorch reads it with `safetensors.torch.load_file` (an array met twice, a tied weight, is
stored once, under its first name, as `safetensors.torch.save_model` does; `load` gives that one
array back under every name, and `safetensors.torch.load_model` fills the other names). Everything else goes as JSON in the
safetensors `__metadata__` ({"format": "minitf", "version": "1", "structure": ...}). A
safetensors file written by another program loads as a flat dict of NumPy arrays.

Reading is bounded: the header is checked before any array is read (its size; each field's
type; dtypes; shapes of at most MAX_DIMS non-negative integers; each array's [begin, end) in the
data exactly its size, the arrays in order without overlaps or holes and ending where the file
ends, as the safetensors format requires), and `open_file` lets a caller check shapes before
reading at all. A file that is not a safetensors file is a CheckpointError saying what it is.
"""
from __future__ import annotations

import errno
import json
import math
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from . import backend
from .atomic_file import atomic_write
from .autograd import Tensor
from .errors import UserError

FORMAT = "minitf"
VERSION = 1
MAX_HEADER_BYTES = 100 * 2**20  # safetensors' own limit on the JSON header
MAX_ENTRIES = 100_000  # arrays in one file
MAX_DEPTH = 64  # nesting of the saved structure
MAX_DIMS = 32  # dimensions of one array (NumPy 1.x holds at most 32)

DTYPES = {"BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "U16": np.uint16, "I16": np.int16,
          "U32": np.uint32, "I32": np.int32, "U64": np.uint64, "I64": np.int64, "F16": np.float16,
          "F32": np.float32, "F64": np.float64}
"""The safetensors dtypes that NumPy holds (bfloat16 and float8 it does not)."""
_CODES = {np.dtype(t): code for code, t in DTYPES.items()}


class CheckpointError(UserError, ValueError):
    """A saved file that is missing, corrupt, or not what the reader expects (the message says why)."""


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

@dataclass(frozen=True)
class ArrayRef:
    """An array in a file, not read yet: its name, dtype and shape, and how it was saved."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    kind: str = "array"  # "array", "tensor" or "scalar"
    requires_grad: bool = False

    @property
    def nbytes(self) -> int:
        return self.dtype.itemsize * math.prod(self.shape)


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


def _read_header(path: Path) -> tuple[dict[str, str], dict[str, tuple[ArrayRef, int]], int]:
    """(metadata, name -> (ArrayRef, offset in the data), where the data starts), all checked."""
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        if not 2 <= n <= min(size - 8, MAX_HEADER_BYTES):
            raise not_safetensors(path, head + f.read(56))
        text = f.read(n)
    if not text.startswith(b"{"):
        raise not_safetensors(path, head + text[:56])
    try:
        header = json.loads(text.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # ValueError: also an integer of over 4,300 digits
        raise CheckpointError(f"{path}: corrupt safetensors header ({exc})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupt safetensors header (not a JSON object)")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"{path}: corrupt safetensors header (__metadata__ is not a str -> str map)")
    if len(header) > MAX_ENTRIES:
        raise CheckpointError(f"{path} declares {len(header):,} arrays, more than the limit of {MAX_ENTRIES:,}")
    data_size = size - 8 - n
    arrays = {name: _entry(path, name, spec, data_size) for name, spec in header.items()}
    _check_layout(path, {name: offsets for name, (_, offsets) in arrays.items()}, data_size)
    entries = {name: (ref, offsets[0]) for name, (ref, offsets) in arrays.items()}
    return metadata, dict(sorted(entries.items(), key=lambda item: item[1][1])), 8 + n


def _entry(path: Path, name: str, spec: Any, data_size: int) -> tuple[ArrayRef, tuple[int, int]]:
    """The ArrayRef of one header entry and its [begin, end) in the data, every field checked."""
    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"{path}: array {_short(name)} {what}")

    if not isinstance(spec, dict):
        raise bad(f"has a header entry of type {type(spec).__name__}, expected an object")
    dtype, shape, offsets = spec.get("dtype"), spec.get("shape"), spec.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise bad(f"has dtype {_short(dtype)}; minitf reads {', '.join(DTYPES)}")
    if not (isinstance(shape, list) and all(_natural(d) for d in shape)):
        raise bad(f"has shape {_short(shape)}, expected a list of non-negative integers")
    if len(shape) > MAX_DIMS:
        raise bad(f"has {len(shape)} dimensions, more than the limit of {MAX_DIMS}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_natural(o) for o in offsets)):
        raise bad(f"has data_offsets {_short(offsets)}, expected [begin, end], two non-negative integers")
    itemsize = np.dtype(DTYPES[dtype]).itemsize
    if math.prod(d for d in shape if d) * itemsize > np.iinfo(np.intp).max:  # even an empty one
        raise bad(f"has shape {_short(shape)}, larger than any array can be")
    ref = ArrayRef(name, np.dtype(DTYPES[dtype]), tuple(shape))
    begin, end = offsets
    if end - begin != ref.nbytes or end > data_size:
        raise bad(f"of shape {tuple(shape)} and dtype {dtype} ({ref.nbytes:,} bytes) does not fit "
                  f"its data_offsets {_short(offsets)} in a file with {data_size:,} bytes of data")
    return ref, (begin, end)


def _check_layout(path: Path, offsets: dict[str, tuple[int, int]], data_size: int) -> None:
    """The arrays' byte ranges, in order, must tile the data exactly: no overlap, no hole, no tail.

    As the safetensors format requires (its reference reader's `Metadata::validate`): two
    arrays sharing bytes, or bytes that no array owns, mean a corrupt or crafted file.
    """
    position, previous = 0, None
    for name, (begin, end) in sorted(offsets.items(), key=lambda item: item[1]):
        if begin < position:
            raise CheckpointError(f"{path}: array {_short(name)} at data_offsets [{begin}, {end}] overlaps "
                                  f"array {_short(previous)}, which ends at {position}")
        if begin > position:
            raise CheckpointError(f"{path}: array {_short(name)} at data_offsets [{begin}, {end}] leaves "
                                  f"{begin - position:,} bytes before it that no array holds")
        position, previous = end, name
    if position != data_size:
        raise CheckpointError(f"{path}: {data_size - position:,} bytes after the last array"
                              f"{f' ({_short(previous)})' if previous else ''} that no array holds")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _natural(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


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


# ---- what a file is -----------------------------------------------------------------------

def describe(head: bytes) -> str:
    """What a file whose first bytes are `head` looks like, for error messages."""
    if not head:
        return "empty"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "a zip/npz archive"
    if head.startswith(b"\x93NUMPY"):
        return "a NumPy .npy array"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a pickle"
    if head.startswith(b"\x1f\x8b"):
        return "a gzip file"
    if head.startswith(b"\x89HDF"):
        return "an HDF5 file"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not merely a character cut at the end
            return "binary data of an unknown format"
        text = head[:exc.start].decode("utf-8")
    if text.lstrip().startswith(("{", "[")):
        return "JSON text"
    return "text" if all(c.isprintable() or c.isspace() for c in text) else "binary data of an unknown format"


def not_safetensors(path: Path, head: bytes) -> CheckpointError:
    if len(head) > 9 and head[8:10] == b'{"':
        return CheckpointError(f"{path}: a truncated or corrupt safetensors file (its header length "
                               f"{struct.unpack('<Q', head[:8])[0]:,} does not fit the file)")
    return CheckpointError(f"{path}: not a safetensors file: it is {describe(head)}")


def first_bytes(path: str | os.PathLike, n: int = 64) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


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
