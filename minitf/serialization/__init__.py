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

from .header import (DTYPES, MAX_DIMS, MAX_ENTRIES, MAX_HEADER_BYTES, ArrayRef, CheckpointError, describe,
                     first_bytes, not_safetensors)
from .store import StoredFile, iter_refs, load, open_file, save

__all__ = ["save", "load", "open_file", "StoredFile", "ArrayRef", "iter_refs", "CheckpointError", "DTYPES",
           "MAX_DIMS", "MAX_ENTRIES", "MAX_HEADER_BYTES", "describe", "first_bytes", "not_safetensors"]
