"""Streaming the training corpus: strings as they come, files line by line.

Rule: in the iterable given to :meth:`BPETokenizer.train`, every ``str`` is a text
and every path object (``pathlib.Path`` or any other ``os.PathLike``) is a file to
read.  A ``str`` is never taken for a file name, so no text is misread as a path.

Files are plain UTF-8 text, or gzip-compressed when the name ends in ``.gz``.  Each
line is one text, its terminator (``\\n`` or ``\\r\\n``) removed, as for a corpus of
one sentence per line.  Lines are read one at a time, so a file larger than memory
can be counted.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, Union

TextSource = Union[str, "os.PathLike[str]"]


def iter_texts(texts: Iterable[TextSource] | TextSource) -> Iterator[str]:
    """Yield every text of ``texts``: strings as they are, the lines of path objects."""
    if isinstance(texts, (str, os.PathLike)):
        texts = [texts]
    for item in texts:
        if isinstance(item, str):
            yield item
        elif isinstance(item, os.PathLike):
            yield from read_lines(Path(item))
        else:
            raise TypeError("training texts must be str (a text) or pathlib.Path (a file), "
                            f"got {type(item).__name__}")


def read_lines(path: Path) -> Iterator[str]:
    """Yield the lines of a plain or ``.gz`` UTF-8 file without their terminators.

    Raises FileNotFoundError for a missing file, and ValueError naming the file for a
    broken ``.gz`` file or, with the (1-based) line number, for bytes that are not UTF-8.
    """
    if not path.is_file():
        raise FileNotFoundError(f"training file not found: {path}")
    number = 0
    try:
        with _open_binary(path) as stream:
            for number, raw in enumerate(stream, start=1):
                yield _decode_line(raw, path, number)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: corrupt or not gzip-compressed after line {number} "
                         f"({exc})") from None


def _open_binary(path: Path) -> BinaryIO:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _decode_line(raw: bytes, path: Path, number: int) -> str:
    if raw.endswith(b"\n"):
        raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: line {number} is not valid UTF-8 "
                         f"(byte 0x{raw[exc.start]:02x} at column {exc.start + 1})") from None
