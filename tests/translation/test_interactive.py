"""`minitf translate` when standard input is a terminal: each line translated as it is entered."""
from __future__ import annotations

import io
import sys

import pytest

from minitf.cli import main
from minitf.translation.interactive import HINT, is_terminal, typed_lines
from tiny_runs import tiny_trainer

LINES = ["one hundred and two", "", "seven", "forty one"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    trainer = tiny_trainer(tmp_path_factory.mktemp("run"), epochs=1, max_steps=3)
    trainer.fit()
    return str(trainer.out_dir / "last.safetensors")


class Terminal:
    """A stdin at a terminal: yields `lines` (bytes) one readline at a time and, before giving the
    next, checks that the previous line's output (`expect(n)` lines on stdout) has been written."""

    def __init__(self, lines, capsys, expect=lambda n: n):
        self.buffer, self.lines, self.capsys, self.expect = self, list(lines), capsys, expect
        self.given, self.out, self.err = 0, "", ""

    def isatty(self):
        return True

    def readline(self):
        out, err = self.capsys.readouterr()  # what the previous line printed, flushed already
        self.out, self.err = self.out + out, self.err + err
        assert self.out.count("\n") == self.expect(self.given), (self.given, self.out)
        if not self.lines:
            return b""
        self.given += 1
        line = self.lines.pop(0)
        if isinstance(line, BaseException):
            raise line
        return line


def run(argv, stdin, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", stdin)
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, stdin.out + out, stdin.err + err


def piped(argv, text, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode()), encoding="utf-8"))
    assert main([str(a) for a in argv]) == 0
    return capsys.readouterr()


@pytest.mark.parametrize("flags", [[], ["--beam", 3], ["--sample", "--seed", 1]])
def test_each_line_is_translated_and_printed_before_the_next_is_read(checkpoint, flags, monkeypatch, capsys):
    argv = ["translate", "--checkpoint", checkpoint, *flags]
    terminal = Terminal([(line + "\n").encode() for line in LINES], capsys)
    code, out, err = run(argv, terminal, monkeypatch, capsys)
    assert code == 0 and terminal.given == len(LINES)
    assert err.startswith(HINT + "\n")
    assert "minitf: warning: line 2 is empty; its translation is left empty" in err  # and the session went on
    # each line alone, piped (sampling: each sentence is drawn as the first of its input)
    alone = [piped(argv, line + "\n", monkeypatch, capsys).out for line in LINES]
    assert out == "".join(alone)
    if not flags:  # greedy: the same as all lines piped at once
        assert out == piped(argv, "".join(line + "\n" for line in LINES), monkeypatch, capsys).out


def test_nbest_lists_number_the_lines_as_typed(checkpoint, monkeypatch, capsys):
    argv = ["translate", "--checkpoint", checkpoint, "--beam", 3, "--nbest", 2]
    terminal = Terminal([(line + "\n").encode() for line in LINES], capsys, expect=lambda n: 2 * n - 2 * (n >= 2))
    code, out, err = run(argv, terminal, monkeypatch, capsys)
    assert code == 0
    batch = piped(argv, "".join(line + "\n" for line in LINES), monkeypatch, capsys).out
    fields = [line.split(" ||| ") for line in out.splitlines()]
    assert [f[:2] for f in fields] == [line.split(" ||| ")[:2] for line in batch.splitlines()]  # scores: batch rounding
    assert [f[0] for f in fields] == ["0", "0", "2", "2", "3", "3"]


def test_a_line_that_is_not_text_is_an_error_and_the_session_goes_on(checkpoint, monkeypatch, capsys):
    terminal = Terminal([b"\xef\xbb\xbfseven\n", b"bad \xff\n", b"a\x00b\n", b"eight\r\n"], capsys,
                        expect=lambda n: min(n, 1) + (n >= 4))
    code, out, err = run(["translate", "--checkpoint", checkpoint], terminal, monkeypatch, capsys)
    assert code == 0 and len(out.splitlines()) == 2
    assert ("minitf: error: standard input, line 2: not UTF-8 text (byte 0xff at byte 5 of the line); "
            "binary input cannot be translated\n") in err
    assert "minitf: error: standard input, line 3: a NUL byte" in err
    assert out == "".join(piped(["translate", "--checkpoint", checkpoint], line, monkeypatch, capsys).out
                          for line in ("seven\n", "eight\n"))  # a leading BOM and "\r\n" dropped as when piped


def test_ctrl_c_ends_the_session_with_exit_130(checkpoint, monkeypatch, capsys):
    terminal = Terminal([b"seven\n", KeyboardInterrupt()], capsys)
    code, out, err = run(["translate", "--checkpoint", checkpoint], terminal, monkeypatch, capsys)
    assert code == 130 and len(out.splitlines()) == 1
    assert err.endswith("minitf: interrupted\n")


def test_piped_input_is_read_whole_without_a_hint(checkpoint, monkeypatch, capsys):
    out, err = piped(["translate", "--checkpoint", checkpoint], "seven\n\neight\n", monkeypatch, capsys)
    assert len(out.splitlines()) == 3 and HINT not in err


def test_typed_lines_reads_a_text_stream_too():
    errors = []
    stdin = io.StringIO("one\ntwo\r\n")
    assert list(typed_lines(stdin, lambda raw, n: raw.decode(), errors.append)) == [(1, "one"), (2, "two")]
    assert errors == []


def test_each_translation_is_flushed_when_stdout_is_buffered(checkpoint, monkeypatch, capsys):
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding="utf-8"))  # buffered, like a file or a pipe
    lines = iter([b"seven\n", b"eight\n", b""])
    given = []

    def readline():
        assert raw.getvalue().count(b"\n") == len(given)  # the previous line's translation reached the bytes
        given.append(next(lines))
        return given[-1]

    terminal = type("Tty", (), {"isatty": lambda self: True, "readline": staticmethod(readline)})()
    terminal.buffer = terminal
    monkeypatch.setattr(sys, "stdin", terminal)
    assert main(["translate", "--checkpoint", checkpoint]) == 0 and len(given) == 3


def test_is_terminal_is_false_for_files_stand_ins_and_closed_streams():
    closed = io.StringIO()
    closed.close()
    assert not any(is_terminal(stream) for stream in (io.BytesIO(), object(), closed))
