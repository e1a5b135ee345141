"""The safetensors layer: the file format's dtypes and limits, the header read and checked before any
array is (its size; each field's type; dtypes; shapes of at most MAX_DIMS non-negative integers; each
array's [begin, end) in the data exactly its size, the arrays in order without overlaps or holes and
ending where the file ends, as the safetensors format requires), and what a file is when it is not one.
"""
from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError

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
