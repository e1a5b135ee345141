"""Corpus readers: plain/gz lines, parallel files, TSV, and their error messages."""

import gzip
import re

import pytest

from minitf.data import CorpusFormatError, ParallelCorpus, read_lines, read_parallel, read_tsv
from minitf.data.corpus import is_blank


def write(path, data: bytes):
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def test_read_lines_strips_only_the_line_terminator(tmp_path):
    path = write(tmp_path / "a.txt", b"  hello  \r\nw\xc3\xb6rld\t\n\nlast")
    assert read_lines(path) == ["  hello  ", "wörld\t", "", "last"]


def test_read_lines_final_newline_adds_no_line(tmp_path):
    assert read_lines(write(tmp_path / "a.txt", b"a\nb\n")) == ["a", "b"]
    assert read_lines(write(tmp_path / "e.txt", b"")) == []
    assert read_lines(write(tmp_path / "n.txt", b"\n")) == [""]


def test_read_lines_does_not_split_on_unicode_line_separators(tmp_path):
    path = write(tmp_path / "a.txt", "a\u2028b\x0cc\n".encode())
    assert read_lines(path) == ["a\u2028b\x0cc"]


def test_read_lines_drops_a_byte_order_mark(tmp_path):
    assert read_lines(write(tmp_path / "a.txt", b"\xef\xbb\xbfhi\n")) == ["hi"]


def test_read_lines_gz(tmp_path):
    path = write(tmp_path / "a.de.gz", "Straße\nzwei\n".encode())
    assert read_lines(path) == ["Straße", "zwei"]


def test_read_lines_gz_by_suffix_only(tmp_path):
    # A plain file named .gz is not gzip: reported as such, naming the file.
    path = tmp_path / "plain.gz"
    path.write_bytes(b"not gzip\n")
    with pytest.raises(CorpusFormatError, match="plain.gz.*gzip"):
        read_lines(path)


def test_read_lines_missing_file_names_it(tmp_path):
    missing = tmp_path / "nope.en"
    with pytest.raises(FileNotFoundError, match="nope.en") as info:
        read_lines(missing)
    assert info.value.filename == str(missing)


@pytest.mark.parametrize("name", ["bad.txt", "bad.txt.gz"])
def test_read_lines_non_utf8_names_file_and_line(tmp_path, name):
    path = write(tmp_path / name, b"ok\nfine \xc3\xa4\nbro\xffken\n")
    with pytest.raises(CorpusFormatError) as info:
        read_lines(path)
    error = info.value
    assert error.line == 3 and error.path == str(path)
    assert f"{path}, line 3" in str(error)
    assert "0xff" in str(error) and "byte 4" in str(error)


def test_read_lines_non_utf8_on_first_line(tmp_path):
    with pytest.raises(CorpusFormatError, match="line 1:"):
        read_lines(write(tmp_path / "a.txt", b"\x80abc\nok\n"))


@pytest.mark.parametrize("reader", ["parallel", "tsv"])
def test_a_nul_byte_is_refused_naming_file_line_and_byte(tmp_path, reader):
    bad = tmp_path / "bad.txt"
    bad.write_bytes("a\tb\nä\tx\x00y\n".encode("utf-8") if reader == "tsv" else "a\nä x\x00y\n".encode("utf-8"))
    good = tmp_path / "good.txt"
    good.write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(CorpusFormatError, match=re.escape(f"{bad}, line 2: a NUL byte at byte 5 of the line")):
        read_tsv(bad) if reader == "tsv" else read_parallel(good, bad)


def test_read_parallel_pairs_lines(tmp_path):
    src = write(tmp_path / "t.en", b"a dog\nthe cat\n")
    tgt = write(tmp_path / "t.de.gz", "ein Hund\ndie Katze\n".encode())
    corpus = read_parallel(src, tgt)
    assert isinstance(corpus, ParallelCorpus)
    assert corpus.pairs == [("a dog", "ein Hund"), ("the cat", "die Katze")]
    assert len(corpus) == 2 and list(corpus) == corpus.pairs
    assert corpus[1] == ("the cat", "die Katze")
    assert corpus.sources == ["a dog", "the cat"] and corpus.targets == ["ein Hund", "die Katze"]
    assert corpus.n_skipped_empty == 0
    assert corpus.source_path == str(src) and corpus.target_path == str(tgt)


def test_read_parallel_mismatched_counts_names_both_files_and_counts(tmp_path):
    src = write(tmp_path / "m.en", b"1\n2\n3\n")
    tgt = write(tmp_path / "m.de", b"1\n2\n")
    with pytest.raises(CorpusFormatError) as info:  # the error class the CLI reports in one line
        read_parallel(src, tgt)
    assert str(info.value) == f"{src}, line 3: parallel files differ in length: {tgt} has 2 lines, {src} more"


@pytest.mark.parametrize("long_side", ["src", "tgt"])
def test_read_parallel_reads_both_files_in_step_and_stops_where_one_ends(tmp_path, long_side):
    # The long file is a gzip stream cut off before its end: read whole it fails as "not a valid
    # gzip file"; read in step with the 3-line file it is refused at its 4th line.
    body = gzip.compress(b"ab\n" * 1_000_000)
    long = tmp_path / "bomb.gz"
    long.write_bytes(body[: len(body) // 2])
    short = write(tmp_path / "t.txt", b"x\ny\nz\n")
    src, tgt = (long, short) if long_side == "src" else (short, long)
    with pytest.raises(CorpusFormatError) as info:
        read_parallel(src, tgt)
    assert info.value.line == 4 and info.value.path == str(long)
    assert f"{short} has 3 lines, {long} more" in str(info.value)


def test_the_empty_line_error_says_what_a_command_line_user_can_do(tmp_path):
    src, tgt = write(tmp_path / "e.en", b"a\n\n"), write(tmp_path / "e.de", b"x\ny\n")
    with pytest.raises(CorpusFormatError, match="delete line 2 from both files"):
        read_parallel(src, tgt)
    with pytest.raises(CorpusFormatError, match="empty line; delete the line"):
        read_tsv(write(tmp_path / "e.tsv", b"a\tb\n\n"))


@pytest.mark.parametrize("side", ["src", "tgt"])
def test_read_parallel_empty_line_names_file_and_line(tmp_path, side):
    lines = {"src": b"a\nb\nc\n", "tgt": b"x\ny\nz\n"}
    lines[side] = lines[side].replace(b"b" if side == "src" else b"y", b"  \t")
    src, tgt = write(tmp_path / "e.en", lines["src"]), write(tmp_path / "e.de", lines["tgt"])
    with pytest.raises(CorpusFormatError, match="empty line") as info:
        read_parallel(src, tgt)
    assert info.value.line == 2
    assert info.value.path == str(src if side == "src" else tgt)


@pytest.mark.parametrize("invisible", ["\u200b", "\u200c\u200d", "\ufeff", " \u2060\u3000", "\u00ad\x07"])
def test_a_line_of_invisible_characters_is_blank_in_read_parallel_and_read_tsv(tmp_path, invisible):
    assert is_blank(invisible) and not is_blank(invisible + "a") and not is_blank("\u200bb")
    raw = invisible.encode()
    src, tgt = write(tmp_path / "z.en", b"a\n" + raw + b"\nc\n"), write(tmp_path / "z.de", b"x\ny\nz\n")
    with pytest.raises(CorpusFormatError, match="empty line") as info:
        read_parallel(src, tgt)
    assert info.value.line == 2
    assert read_parallel(src, tgt, skip_empty=True).pairs == [("a", "x"), ("c", "z")]
    tsv = write(tmp_path / "z.tsv", b"one\teins\n" + raw + b"\ttwo\n")
    assert read_tsv(tsv, skip_empty=True).pairs == [("one", "eins")]


def test_read_parallel_skip_empty_drops_and_counts(tmp_path):
    src = write(tmp_path / "s.en", b"a\n\nc\nd\n \n")
    tgt = write(tmp_path / "s.de", b"x\ny\n\nw\nv\n")
    corpus = read_parallel(src, tgt, skip_empty=True)
    assert corpus.pairs == [("a", "x"), ("d", "w")]
    assert corpus.n_skipped_empty == 3


def test_read_parallel_missing_target(tmp_path):
    src = write(tmp_path / "s.en", b"a\n")
    with pytest.raises(FileNotFoundError, match="s.de"):
        read_parallel(src, tmp_path / "s.de")


def test_read_tsv(tmp_path):
    path = write(tmp_path / "p.tsv", b"one\teins\r\ntwo words\tzwei W\xc3\xb6rter\n")
    corpus = read_tsv(path)
    assert corpus.pairs == [("one", "eins"), ("two words", "zwei Wörter")]
    assert corpus.source_path == corpus.target_path == str(path)


def test_read_tsv_gz(tmp_path):
    assert read_tsv(write(tmp_path / "p.tsv.gz", b"a\tb\n")).pairs == [("a", "b")]


@pytest.mark.parametrize("bad, found", [(b"no tab here", 1), (b"a\tb\tc", 3)])
def test_read_tsv_wrong_column_count_names_file_and_line(tmp_path, bad, found):
    path = write(tmp_path / "p.tsv", b"a\tb\n" + bad + b"\nc\td\n")
    with pytest.raises(CorpusFormatError, match=f"found {found}") as info:
        read_tsv(path)
    assert info.value.line == 2 and str(path) in str(info.value)


def test_read_tsv_empty_columns(tmp_path):
    path = write(tmp_path / "p.tsv", b"a\tb\n\n \tx\ny\t\nc\td\n")
    with pytest.raises(CorpusFormatError, match="empty line") as info:
        read_tsv(path)
    assert info.value.line == 2
    corpus = read_tsv(path, skip_empty=True)
    assert corpus.pairs == [("a", "b"), ("c", "d")]
    assert corpus.n_skipped_empty == 3


def test_read_tsv_wrong_column_count_raises_even_with_skip_empty(tmp_path):
    path = write(tmp_path / "p.tsv", b"a\tb\nbroken\n")
    with pytest.raises(CorpusFormatError, match="line 2"):
        read_tsv(path, skip_empty=True)


# ---- limits: a line longer than MAX_LINE_BYTES stops the reading at once -------------------

@pytest.mark.parametrize("name", ["long.txt", "long.txt.gz"])
def test_a_line_longer_than_the_limit_names_file_and_line(tmp_path, name):
    from minitf.data.corpus import MAX_LINE_BYTES
    fits = b"x" * MAX_LINE_BYTES
    path = write(tmp_path / name, b"ok\r\n" + fits + b"\r\n" + fits + b"\n" + fits + b"y\nlast\n")
    with pytest.raises(CorpusFormatError, match=f"line 4: the line is longer than {MAX_LINE_BYTES:,} bytes"):
        read_lines(path)
    assert read_lines(write(tmp_path / f"fits{path.suffix}", fits + b"\r\n" + fits)) == [fits.decode()] * 2


def test_dev_zero_is_refused_within_a_second():
    import os
    import time
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    started = time.perf_counter()
    with pytest.raises(CorpusFormatError, match="/dev/zero, line 1: the line is longer"):
        read_parallel("/dev/zero", "/dev/zero")
    assert time.perf_counter() - started < 1.0


def test_a_gzip_bomb_of_one_line_stops_at_the_limit(tmp_path):
    import tracemalloc
    path = tmp_path / "bomb.txt.gz"
    path.write_bytes(gzip.compress(b"a" * (16 << 20), compresslevel=1))  # 16 MiB from about 70 KiB
    tracemalloc.start()
    try:
        with pytest.raises(CorpusFormatError, match="line 1: the line is longer"):
            read_tsv(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 << 20, f"{peak:,} bytes allocated to refuse one long line"
