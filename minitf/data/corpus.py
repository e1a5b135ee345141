"""Readers for parallel corpora: line-aligned file pairs (plain or .gz) and TSV files.

Every error names the file, and the 1-based line number where there is one.
"""

from __future__ import annotations

import errno
import gzip
import itertools
import os
import unicodedata
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from minitf.errors import UserError  # the bottom layer: no imports of its own

PathLike = str | os.PathLike


class CorpusFormatError(UserError, ValueError):
    """A corpus file is malformed; ``path`` and (when known) ``line`` (1-based) say where."""

    def __init__(self, path: PathLike, message: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        where = self.path if line is None else f"{self.path}, line {line}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class ParallelCorpus:
    """Aligned (source, target) sentence pairs and where they came from.

    Attributes:
        pairs: the (source, target) pairs, in file order.
        source_path: file the sources were read from.
        target_path: file the targets were read from (the same file for TSV).
        n_skipped_empty: pairs dropped because a side was empty (``skip_empty=True``).
    """

    pairs: list[tuple[str, str]]
    source_path: str
    target_path: str
    n_skipped_empty: int = 0

    def __len__(self) -> int:
        return len(self.pairs)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.pairs)

    def __getitem__(self, index: int) -> tuple[str, str]:
        return self.pairs[index]

    @property
    def sources(self) -> list[str]:
        """The source sentences, in order."""
        return [src for src, _ in self.pairs]

    @property
    def targets(self) -> list[str]:
        """The target sentences, in order."""
        return [tgt for _, tgt in self.pairs]


MAX_LINE_BYTES = 1 << 16
"""The longest line a corpus may hold (bytes, without its terminator): far more than any sentence,
so that a wrong file (/dev/zero, a binary, one huge line) stops at once instead of filling memory."""


def _raw_lines(path: Path) -> Iterator[bytes]:
    """Each line's bytes without "\\n" or "\\r\\n", read one line at a time (gunzipped as they
    are read if the name ends in ".gz"); a line longer than MAX_LINE_BYTES raises
    CorpusFormatError naming it, without reading the rest of it."""
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "corpus file not found", str(path))
    with open(path, "rb") as raw:
        f = gzip.GzipFile(fileobj=raw, mode="rb") if path.suffix == ".gz" else raw
        try:
            for number in itertools.count(1):
                data = f.readline(MAX_LINE_BYTES + 2)  # room for the longest line and its "\r\n"
                if not data:
                    return
                line = data.removesuffix(b"\n").removesuffix(b"\r")
                if len(line) > MAX_LINE_BYTES:
                    raise CorpusFormatError(path, f"the line is longer than {MAX_LINE_BYTES:,} bytes, the "
                                            "limit for one sentence (is this a text file?)", number)
                yield line
        except (OSError, EOFError, zlib.error) as err:
            if f is raw:
                raise
            raise CorpusFormatError(path, f"not a valid gzip file ({err})") from err


def _decode(path: Path, line: bytes, number: int) -> str:
    """Decode one line as UTF-8, naming the line and byte of the first invalid byte on failure."""
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as err:
        message = f"invalid UTF-8 byte 0x{line[err.start]:02x} at byte {err.start + 1} of the line"
        raise CorpusFormatError(path, message, number) from err


def iter_lines(path: PathLike) -> Iterator[str]:
    """The lines of a UTF-8 text file (gzipped if the name ends in ".gz"), read one at a time.

    Only the line terminator ("\\n" or "\\r\\n") is removed, and a UTF-8 byte-order
    mark at the start of the file; a final newline does not make an extra empty line.

    Raises:
        FileNotFoundError: the file does not exist (the message names it).
        CorpusFormatError: invalid UTF-8 (names the file and 1-based line) or gzip, or a
            line longer than MAX_LINE_BYTES (names the file and line).
    """
    path = Path(path)
    for number, raw in enumerate(_raw_lines(path), start=1):
        line = _decode(path, raw, number)
        yield line.removeprefix("\ufeff") if number == 1 else line


def read_lines(path: PathLike) -> list[str]:
    """iter_lines(path) as a list."""
    return list(iter_lines(path))


INVISIBLE_CATEGORIES = frozenset({"Cf", "Zs", "Zl", "Zp", "Cc"})
"""Unicode categories of characters that show nothing: format (U+200B, U+FEFF ...), separators, controls."""


def is_blank(text: str) -> bool:
    """True if `text` has no visible character: only whitespace and INVISIBLE_CATEGORIES.

    The one blank rule of the corpus readers and the translator: a line of zero-width spaces is
    as empty as a line of spaces (the model would make a translation up).
    """
    return all(c.isspace() or unicodedata.category(c) in INVISIBLE_CATEGORIES for c in text)


def _collect_pairs(
    rows: Iterator[tuple[str, str]], paths: tuple[str, str], skip_empty: bool
) -> tuple[list[tuple[str, str]], int]:
    """Drop (and count) pairs with a blank side, or raise naming file and line."""
    pairs: list[tuple[str, str]] = []
    n_skipped = 0
    for number, (src, tgt) in enumerate(rows, start=1):
        blank = [path for path, text in zip(paths, (src, tgt)) if is_blank(text)]
        if not blank:
            pairs.append((src, tgt))
        elif skip_empty:
            n_skipped += 1
        else:
            # the advice a command-line user can follow (there is no flag for skip_empty)
            fix = "delete the line" if paths[0] == paths[1] else f"delete line {number} from both files"
            raise CorpusFormatError(blank[0], f"empty line; {fix}, or read the corpus in Python with "
                                    "skip_empty=True to drop such pairs", number)
    return pairs, n_skipped


def nul_byte_problem(line: str) -> str | None:
    """What is wrong with a line of text that holds a NUL character (binary data, not text), or
    None: one rule for training data and for the lines `minitf translate` reads."""
    at = line.find("\0")
    if at < 0:
        return None
    return f"a NUL byte at byte {len(line[:at].encode('utf-8', 'surrogateescape')) + 1} of the line"


def _text_lines(path: PathLike) -> Iterator[str]:
    """iter_lines, and CorpusFormatError naming the file and line of a NUL byte (not text)."""
    for number, line in enumerate(iter_lines(path), start=1):
        problem = nul_byte_problem(line)
        if problem:
            raise CorpusFormatError(path, f"{problem}; a text file holds no NUL bytes", number)
        yield line


def _in_step(src_path: PathLike, tgt_path: PathLike) -> Iterator[tuple[str, str]]:
    """The lines of two files side by side, read together: where one file ends before the other,
    CorpusFormatError names both and the line, without reading the rest of the longer one."""
    paths, streams = (src_path, tgt_path), (_text_lines(src_path), _text_lines(tgt_path))
    end = object()
    for number in itertools.count(1):
        src, tgt = (next(stream, end) for stream in streams)
        if src is end and tgt is end:
            return
        if src is end or tgt is end:
            short, long = paths if src is end else paths[::-1]
            raise CorpusFormatError(long, f"parallel files differ in length: {short} has {number - 1} lines, "
                                    f"{long} more", number)
        yield src, tgt


def read_parallel(
    src_path: PathLike, tgt_path: PathLike, *, skip_empty: bool = False
) -> ParallelCorpus:
    """Read line-aligned source and target files into a :class:`ParallelCorpus`.

    Line i of ``src_path`` translates to line i of ``tgt_path``; the two are read in step, so a
    file far longer than the other is refused at the first line past the shorter one's end. A pair
    where either side is empty or blank raises, unless ``skip_empty`` is true, in which case it is
    dropped and counted in ``n_skipped_empty``.

    Raises:
        FileNotFoundError: a file does not exist.
        CorpusFormatError: the files have different line counts (names both files, the shorter
            one's count and the longer one's first extra line).
        CorpusFormatError: invalid UTF-8 / gzip, a NUL byte or an empty line (names file and line).
    """
    paths = (str(src_path), str(tgt_path))
    pairs, n_skipped = _collect_pairs(_in_step(src_path, tgt_path), paths, skip_empty)
    return ParallelCorpus(pairs, paths[0], paths[1], n_skipped)


def _split_tsv_line(path: PathLike, line: str, number: int) -> tuple[str, str]:
    """Split one TSV line into its two columns."""
    n_tabs = line.count("\t")
    if n_tabs != 1:
        raise CorpusFormatError(
            path, f"expected 2 tab-separated columns, found {n_tabs + 1}", number
        )
    src, tgt = line.split("\t")
    return src, tgt


def read_tsv(path: PathLike, *, skip_empty: bool = False) -> ParallelCorpus:
    """Read a file of "source<TAB>target" lines (plain or .gz) into a :class:`ParallelCorpus`.

    A blank line, or a line with a blank column, raises unless ``skip_empty`` is
    true, in which case it is dropped and counted in ``n_skipped_empty``.

    Raises:
        FileNotFoundError: the file does not exist.
        CorpusFormatError: a line without exactly one tab, an empty line or column,
            or invalid UTF-8 / gzip; names the file and the 1-based line.
    """
    rows = (
        ("", "") if is_blank(line) else _split_tsv_line(path, line, number)
        for number, line in enumerate(_text_lines(path), start=1)
    )
    pairs, n_skipped = _collect_pairs(rows, (str(path), str(path)), skip_empty)
    return ParallelCorpus(pairs, str(path), str(path), n_skipped)
