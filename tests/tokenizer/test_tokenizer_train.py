"""BPETokenizer.train on files and streams: reading rules, errors, memory, determinism."""

import gzip
import random
import sys
import tracemalloc
from collections import Counter

import pytest
import regex
from hypothesis import given, settings, strategies as st

from minitf.tokenizer import BPETokenizer
from minitf.tokenizer.patterns import GPT4_PATTERN, make_splitter, splits_at_spaces
from minitf.tokenizer.train import count_chunks

WORDS = ("der die das ein eine Hund Katze läuft springt über unter Wiese Straße "
         "the a dog cat runs jumps over under meadow street 1 23 456 7890 , . ! ?").split()


def sentences(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12))) for _ in range(count)]


def merges_as_bytes(tok):
    return [(tok.id_to_bytes(a), tok.id_to_bytes(b)) for a, b, _ in tok.merges]


def test_same_input_same_merges():
    texts = sentences(400)
    first = BPETokenizer.train(texts, 400)
    assert BPETokenizer.train(texts, 400).merges == first.merges
    assert len(first.merges) > 50  # (min_frequency ends it before vocab_size)


def test_input_order_does_not_matter():
    texts = sentences(400)
    shuffled = texts[:]
    random.Random(1).shuffle(shuffled)
    assert BPETokenizer.train(shuffled, 400).merges == BPETokenizer.train(texts, 400).merges


def test_files_plain_and_gz_equal_in_memory_texts(tmp_path):
    texts = sentences(300)
    plain, packed = tmp_path / "a.txt", tmp_path / "b.txt.gz"
    plain.write_text("\n".join(texts[:150]) + "\n", encoding="utf-8")
    with gzip.open(packed, "wt", encoding="utf-8", newline="") as f:
        f.write("\r\n".join(texts[150:]))  # CRLF, no final newline
    from_files = BPETokenizer.train([plain, packed], 350)
    assert from_files.merges == BPETokenizer.train(texts, 350).merges
    mixed = BPETokenizer.train([plain, *texts[150:]], 350)  # paths and texts together
    assert mixed.merges == from_files.merges
    assert BPETokenizer.train(plain, 300).merges == BPETokenizer.train(texts[:150], 300).merges


def test_a_str_is_always_text_never_a_file_name(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("zzzzzzzz zzzzzzzz\n" * 10, encoding="utf-8")
    tok = BPETokenizer.train([str(path)] * 3, 300)
    assert all(b"z" not in tok.id_to_bytes(new) for _, _, new in tok.merges)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.txt"):
        BPETokenizer.train([tmp_path / "nothere.txt"], 300)


def test_not_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("fine\nstill fine\nGrüße\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.txt: line 3 is not valid UTF-8"):
        BPETokenizer.train([path], 300)
    packed = tmp_path / "latin1.txt.gz"
    packed.write_bytes(gzip.compress(b"ok\n\xff\n"))
    with pytest.raises(ValueError, match=r"latin1.txt.gz: line 2 is not valid UTF-8"):
        BPETokenizer.train([packed], 300)


def test_broken_gz_file(tmp_path):
    path = tmp_path / "plain.txt.gz"
    path.write_bytes(b"not compressed at all\n")
    with pytest.raises(ValueError, match="plain.txt.gz: corrupt or not gzip"):
        BPETokenizer.train([path], 300)
    cut = tmp_path / "cut.gz"
    cut.write_bytes(gzip.compress(b"line\n" * 10000)[:-12])
    with pytest.raises(ValueError, match="cut.gz: corrupt"):
        BPETokenizer.train([cut], 300)


def test_wrong_item_type():
    with pytest.raises(TypeError, match="pathlib.Path"):
        BPETokenizer.train([b"bytes"], 300)


def test_progress_bars_do_not_change_the_result(capsys):
    texts = sentences(100)
    assert BPETokenizer.train(texts, 300, progress=True).merges == \
        BPETokenizer.train(texts, 300).merges
    assert "merges" in capsys.readouterr().err


@pytest.mark.slow
def test_streaming_a_large_gz_file_keeps_memory_bounded(tmp_path):
    # ~20 MB of text in lines of long words (few chunks per MB keeps tracemalloc quick)
    rng = random.Random(4)
    words = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyzäöü", k=rng.randint(12, 30)))
             for _ in range(100)]
    pool = [" ".join(rng.choices(words, k=12)).encode() for _ in range(1000)]
    path, size = tmp_path / "big.txt.gz", 0
    with gzip.open(path, "wb", compresslevel=1) as f:
        while size < 20_000_000:
            block = b"\n".join(rng.choices(pool, k=2000)) + b"\n"
            f.write(block)
            size += len(block)
    tracemalloc.start()
    try:
        tok = BPETokenizer.train([path], 300)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(tok.merges) == 300 - 256
    # only the ~200 unique chunks and their pair index stay in memory (~1 MB)
    assert peak < size / 10, f"peak {peak} bytes while reading {size} bytes"


# ---------------------------------------------------------------- counting chunks word by word
# whitespace next to a space and runs of spaces are where cutting at spaces would go wrong
PIECES = ["a", "Zu", "é", "ß", "1", "234", " ", " ", " ", "  ", "   ", "\t", "\t ", " \t", "\n",
          "\r\n", " \n", "\xa0", "\u3000 ", "\x1c", "\x85", "'s", "'LL", "'", ".", "!?", "(",
          "\u200d", "🤗", "東京", "\xad", "x2"]
REGULAR_WORDS = ["a", "Zug", "über", "A", "'s", "don't", "12", "3456", "x2", "...", "(", "é!", "🤗"]

any_texts = st.lists(st.lists(st.sampled_from(PIECES), max_size=10).map("".join), max_size=80)
printable_texts = st.lists(st.lists(st.sampled_from(["a", "Zu", " ", "  ", "   ", ".", "'s", "1"]),
                                   max_size=10).map("".join), max_size=80)
regular_texts = st.lists(st.lists(st.sampled_from(REGULAR_WORDS), max_size=8).map(" ".join),
                         max_size=80)


@pytest.mark.parametrize("pattern", ["gpt4", "gpt2"])
@settings(max_examples=150, deadline=None)
@given(texts=st.one_of(any_texts, printable_texts, regular_texts, st.tuples(regular_texts, any_texts).map(
    lambda pair: pair[0] + pair[1])))
def test_counting_word_by_word_finds_the_chunks_of_splitting_every_text(pattern, texts):
    # the built-in patterns cut at single spaces, so counting distinct words first must give
    # exactly the chunk counts of running the regex over each text
    split = make_splitter(pattern)
    assert splits_at_spaces(pattern)
    expected = Counter(chunk for text in texts for chunk in split(text))
    assert count_chunks(iter(texts), split, at_spaces=True) == expected


def test_only_the_built_in_patterns_count_word_by_word():
    assert splits_at_spaces(GPT4_PATTERN) and splits_at_spaces("gpt2")
    assert not splits_at_spaces(r"\S+ ?|\s+")  # a match can take in the space after a word


def test_every_whitespace_but_space_is_caught_by_isprintable():
    # _count_words sends a batch of texts down the fast path when str.isprintable() is true;
    # that must rule out every character the regex module calls whitespace, except " "
    every = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    spaces = regex.findall(r"\s", every)
    assert " " in spaces and "\u3000" in spaces
    assert [c for c in spaces if c != " " and c.isprintable()] == []


def test_training_switches_the_cycle_collector_back_as_it_was():
    import gc
    assert gc.isenabled()
    BPETokenizer.train(sentences(20), 300)
    assert gc.isenabled()
    with pytest.raises(ValueError, match="empty corpus"):
        BPETokenizer.train([""], 300)
    assert gc.isenabled()
    gc.disable()
    try:
        BPETokenizer.train(sentences(20), 300)
        assert not gc.isenabled()
    finally:
        gc.enable()
