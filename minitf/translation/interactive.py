"""`minitf translate` at a terminal: the lines a person types, one at a time, as each is entered.

Read with readline (not by iterating a buffered stream, which may wait for more than one line),
so that each line can be translated and printed before the next is typed.
"""
from __future__ import annotations

from typing import Callable, Iterator, TextIO

from ..errors import UserError

HINT = "minitf: type a sentence and press Enter to translate it; Ctrl-D to end"


def is_terminal(stream) -> bool:
    """Whether `stream` (standard input) is a terminal; False for a stand-in without isatty, or closed."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def typed_lines(stdin: TextIO, to_text: Callable[[bytes, int], str],
                on_error: Callable[[UserError], None]) -> Iterator[tuple[int, str]]:
    """(line number from 1, text) for each line entered on `stdin` until end of input (Ctrl-D).

    `to_text(raw, number)` turns a line's bytes (without "\\n" or "\\r\\n") into text or raises a
    UserError (not UTF-8, a NUL byte): that line goes to `on_error` and is skipped; the session goes on.
    """
    stream = getattr(stdin, "buffer", None)  # None: stdin was replaced by a text stream
    readline = stream.readline if stream is not None else (
        lambda: stdin.readline().encode("utf-8", "surrogateescape"))
    number = 0
    while True:
        raw = readline()
        if not raw:
            return
        number += 1
        raw = raw.removesuffix(b"\n").removesuffix(b"\r")
        if number == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")  # a BOM, as in batch mode
        try:
            line = to_text(raw, number)
        except UserError as exc:
            on_error(exc)
            continue
        yield number, line
