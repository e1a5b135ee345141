"""BPE-dropout in BPETokenizer.encode: p = 0 is the plain encoding, skipped merges worked by hand,
determinism given the generator, lossless round trips, specials, bad probabilities."""

import math
import random
import statistics

import pytest
from hypothesis import given, strategies as st

from minitf.tokenizer import BPETokenizer
from minitf.tokenizer.dropout import _merge_long, _merge_short

SAMPLE = ("Ein alter Hund schläft vor der Tür, während zwei Katzen im Garten spielen. An old dog sleeps "
          "by the door while two cats play in the garden. Eine Frau liest ein Buch und trinkt Tee am "
          "Fenster. 12345 naïve café 東京 🤗\n")
SPECIALS = ["<pad>", "<bos>", "<eos>"]
probabilities = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)


def encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@pytest.fixture(scope="module")
def tok() -> BPETokenizer:
    return BPETokenizer.train([SAMPLE] * 3 + SAMPLE.split(), 450, special_tokens=SPECIALS)


@pytest.fixture(scope="module")
def aaab() -> BPETokenizer:
    tok = BPETokenizer.train(["aaab"] * 3, 300, min_frequency=1)
    assert tok.merges == [(97, 97, 256), (97, 98, 257), (256, 257, 258)]
    return tok


class Scripted:
    """A generator that returns the given draws in order (and fails if asked for more)."""

    def __init__(self, *draws: float) -> None:
        self.draws = list(draws)

    def random(self) -> float:
        return self.draws.pop(0)


# ---------------------------------------------------------------- the rule, by hand

@pytest.mark.parametrize("merge", [_merge_short, _merge_long])
def test_skipped_merges_worked_by_hand(aaab, merge):
    vocab = aaab._vocab

    def run(text, *draws):
        rng = Scripted(*draws)
        ids = merge([aaab.byte_ids[b] for b in text.encode()], vocab.ranks, vocab.merged_ids, 0.1, rng.random)
        assert rng.draws == [], "fewer draws than scripted"
        return ids

    # candidates by rank, then leftmost: (a,a)@0 skipped, (a,a)@1 kept; then no merge applies
    assert run("aaab", 0.0, 0.5) == [97, 256, 98]
    # every candidate skipped in a row: the chunk stays as it is
    assert run("aaab", 0.0, 0.0, 0.0) == [97, 97, 97, 98]
    # a skipped candidate comes back after the next merge: (a,a)@0 skipped, (a,a)@3 kept, then @0 again
    assert run("aabaa", 0.0, 0.5, 0.5) == [256, 98, 256]
    # nothing skipped: the deterministic merges
    assert run("aaab", 0.5, 0.5, 0.5) == [258] == aaab.encode("aaab")


def test_encode_draws_from_the_given_generator(aaab):
    assert aaab.encode("aabaa", dropout=0.1, rng=Scripted(0.0, 0.5, 0.5)) == [256, 98, 256]
    assert aaab.encode("aabaa", dropout=0.99, rng=Scripted(0.0, 0.995, 0.0, 0.0)) == [97, 97, 98, 256]


@given(st.binary(min_size=2, max_size=200), probabilities, st.integers(0, 2**32))
def test_short_and_long_loops_draw_alike(tok, data, p, seed):
    tokens, vocab = [tok.byte_ids[b] for b in data], tok._vocab
    assert _merge_short(list(tokens), vocab.ranks, vocab.merged_ids, p, random.Random(seed).random) == \
        _merge_long(list(tokens), vocab.ranks, vocab.merged_ids, p, random.Random(seed).random)


# ---------------------------------------------------------------- p = 0 and p > 0

@given(st.text().filter(encodable))
def test_p_0_is_the_plain_encoding(tok, text):
    rng = random.Random(1)
    state = rng.getstate()
    assert tok.encode(text, dropout=0.0, rng=rng) == tok.encode(text)
    assert tok.encode(text, "all", dropout=0, rng=rng) == tok.encode(text, "all")
    assert rng.getstate() == state  # nothing drawn


def test_dropout_segments_finer_and_differently_by_seed(tok):
    plain = tok.encode(SAMPLE)
    runs = [tok.encode(SAMPLE, dropout=0.1, rng=random.Random(seed)) for seed in range(20)]
    assert statistics.mean(map(len, runs)) > len(plain) * 1.05
    assert len({tuple(ids) for ids in runs}) == len(runs)
    coarse = statistics.mean(map(len, runs))
    finer = statistics.mean(len(tok.encode(SAMPLE, dropout=0.5, rng=random.Random(s))) for s in range(20))
    assert finer > coarse
    assert all(tok.decode(ids) == SAMPLE for ids in runs)


def test_same_generator_state_same_ids(tok):
    first = tok.encode(SAMPLE, dropout=0.2, rng=random.Random(7))
    assert tok.encode(SAMPLE, dropout=0.2, rng=random.Random(7)) == first
    assert tok.encode_batch([SAMPLE, SAMPLE], dropout=0.2, rng=random.Random(7))[0] == first
    shared = random.Random(7)
    one_by_one = [tok.encode(SAMPLE, dropout=0.2, rng=shared) for _ in range(2)]
    assert tok.encode_batch([SAMPLE] * 2, dropout=0.2, rng=random.Random(7)) == one_by_one
    assert one_by_one[1] != first  # the generator moved on


def test_repeated_chunks_draw_anew(tok):
    # the plain encoding caches chunks; with dropout each occurrence is segmented on its own
    ids = tok.encode(" Männer" * 200, dropout=0.3, rng=random.Random(0))
    plain = tok.encode(" Männer")
    pieces = tok.decode_bytes(ids)
    assert pieces == " Männer".encode() * 200
    assert len(ids) > 200 * len(plain)


# ---------------------------------------------------------------- lossless, specials

@given(st.text().filter(encodable), probabilities, st.integers(0, 2**32))
def test_round_trip_arbitrary_text(tok, text, p, seed):
    assert tok.decode(tok.encode(text, dropout=p, rng=random.Random(seed))) == text
    assert tok.decode(tok.encode(text, "all", dropout=p, rng=random.Random(seed))) == text


@pytest.mark.parametrize("text", ["", " ", "a" * 5000, "é" * 300, "🤗" * 50, SAMPLE * 5, "\r\n\t" * 100])
@pytest.mark.parametrize("p", [0.01, 0.5, 0.999])
def test_round_trip_edge_cases(tok, text, p):
    assert tok.decode(tok.encode(text, dropout=p, rng=random.Random(3))) == text


def test_special_tokens_are_never_split(tok):
    text = "<bos>Zwei Männer<eos><pad>"
    for seed in range(10):
        ids = tok.encode(text, allowed_special="all", dropout=0.9, rng=random.Random(seed))
        assert ids[0] == tok.special_id("<bos>") and ids[-2:] == [tok.special_id("<eos>"), tok.special_id("<pad>")]
        assert tok.decode(ids) == text
    # not allowed: the names are ordinary text, and may be split like it
    ids = tok.encode(text, dropout=0.9, rng=random.Random(0))
    assert not set(ids) & set(tok.special_tokens.values()) and tok.decode(ids) == text


def test_lone_surrogate_raises_with_dropout(tok):
    with pytest.raises(ValueError, match="surrogate"):
        tok.encode("ok \udfff ok", dropout=0.1, rng=random.Random(0))


# ---------------------------------------------------------------- bad probabilities

@pytest.mark.parametrize("p", [-0.1, 1, 1.0, 1.5, math.nan, math.inf, True, "0.1", None])
def test_bad_dropout_is_refused(tok, p):
    with pytest.raises(ValueError, match=r"BPE dropout must be a number in \[0, 1\).*got"):
        tok.encode("Zwei Männer", dropout=p, rng=random.Random(0))
    with pytest.raises(ValueError, match="BPE dropout"):
        tok.encode_batch(["Zwei Männer"], dropout=p)
