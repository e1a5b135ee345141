"""BPETokenizer: hand-worked merges, lossless round trips, specials, lookups, errors."""


import random
from collections import Counter

import pytest
from hypothesis import given, settings, strategies as st

from minitf.tokenizer import BPETokenizer
from minitf.tokenizer.train import _chunks_to_words, _MergeState
from minitf.tokenizer.bpe import _merge_long, _merge_short

SAMPLE = (
    "The quick brown fox jumps over the lazy dog. Der schnelle braune Fuchs springt über "
    "den faulen Hund! 12345 6789 -- naïve café, 東京 タワー 🤗🚀 x2 y3\n"
    "  indented\tline with 'quotes' they're we'll I'd\r\nwindows line; ümlaut äöüß ÄÖÜ.\n"
)


def encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@pytest.fixture(scope="module")
def tok() -> BPETokenizer:
    return BPETokenizer.train([SAMPLE] * 3 + SAMPLE.split(), 400, special_tokens=["<eos>", "<pad>"])


def merges_as_bytes(tok: BPETokenizer) -> list:
    return [(tok.id_to_bytes(a), tok.id_to_bytes(b)) for a, b, _ in tok.merges]


# ---------------------------------------------------------------- hand-worked training

def test_aaab_merges_worked_by_hand():
    # chunk "aaab" x3: (a,a)=6 (a,b)=3 -> "aa"; then (aa,a)=3 and (a,b)=3 tie: byte pairs
    # come before pairs with merged tokens -> "ab"; then (aa,ab)=3 -> "aaab"; no pair left.
    tok = BPETokenizer.train(["aaab"] * 3, 300, min_frequency=1)
    assert tok.merges == [(97, 97, 256), (97, 98, 257), (256, 257, 258)]
    assert merges_as_bytes(tok) == [(b"a", b"a"), (b"a", b"b"), (b"aa", b"ab")]
    assert tok.vocab_size == 259
    assert tok.encode("aaab") == [258]
    assert tok.encode("aab") == [256, 98]  # (a,a) has the lower rank, so "aa"+"b"
    assert tok.encode("ab") == [257]


def test_runs_merge_left_to_right_without_overlap():
    tok = BPETokenizer.train(["aaaa"], 300, min_frequency=1)
    assert merges_as_bytes(tok) == [(b"a", b"a"), (b"aa", b"aa")]
    tok = BPETokenizer.train(["aaa"], 300, min_frequency=1)
    assert merges_as_bytes(tok) == [(b"a", b"a"), (b"aa", b"a")]
    # "aaaaa": (a,a) merges left to right -> aa aa a; then (aa,a) -> aa aaa
    assert tok.encode("aaaaa") == [tok.token_to_id("aa"), tok.token_to_id("aaa")]


def test_min_frequency_stops_training():
    texts = ["ab", "cd", "cd"]
    assert merges_as_bytes(BPETokenizer.train(texts, 300)) == [(b"c", b"d")]
    assert merges_as_bytes(BPETokenizer.train(texts, 300, min_frequency=1)) == \
        [(b"c", b"d"), (b"a", b"b")]
    assert BPETokenizer.train(texts, 300, min_frequency=3).merges == []


def test_vocab_size_counts_specials_and_bytes():
    texts = ["abcdef"] * 4
    tok = BPETokenizer.train(texts, 260, special_tokens=["<s>", "</s>"], min_frequency=1)
    assert len(tok.merges) == 2 and tok.vocab_size == 260
    assert tok.special_tokens == {"<s>": 0, "</s>": 1}
    assert tok.byte_ids == [2 + b for b in range(256)]
    assert [new for _, _, new in tok.merges] == [258, 259]


def test_ties_follow_the_gpt2_byte_table_order():
    # Both pairs occur once.  Space is not printable in the GPT-2 table (it sorts after
    # all printable bytes), so "xy" wins the tie although b" " < b"x".
    tok = BPETokenizer.train(["xy", " a"], 257, min_frequency=1)
    assert merges_as_bytes(tok) == [(b"x", b"y")]
    tok = BPETokenizer.train(["yx", "xy"], 257, min_frequency=1)
    assert merges_as_bytes(tok) == [(b"x", b"y")]


def test_chunks_never_merge_across_the_split():
    tok = BPETokenizer.train(["a b"] * 5, 300)  # gpt4 chunks: "a", " b"
    assert merges_as_bytes(tok) == [(b" ", b"b")]
    tok = BPETokenizer.train(["ab,cd"] * 5, 300, pattern=r"[a-z]+")  # "," is a gap chunk
    assert sorted(merges_as_bytes(tok)) == [(b"a", b"b"), (b"c", b"d")]
    assert tok.decode(tok.encode("ab,cd!")) == "ab,cd!"


def test_gpt2_pattern_splits_differently_from_gpt4():
    texts = ["12345 12345"] * 3
    gpt4 = BPETokenizer.train(texts, 300, pattern="gpt4")
    gpt2 = BPETokenizer.train(texts, 300, pattern="gpt2")
    assert (b"123", b"45") not in merges_as_bytes(gpt4)  # digits come in groups of 3
    assert any(a + b == b" 12345" for a, b in merges_as_bytes(gpt2))


def naive_merges(texts, num_tokens, min_frequency, pattern=r"\S+|\s+"):
    """Reference trainer: recount every pair after each merge."""
    import regex
    printable = [b for b in range(256) if 33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255]
    order = {bytes([b]): i for i, b in enumerate(printable + [b for b in range(256)
                                                             if b not in printable])}
    words = {}
    for text in texts:
        for chunk in regex.findall(pattern, text):
            word = tuple(bytes([b]) for b in chunk.encode())
            words[word] = words.get(word, 0) + 1
    merges = []
    while len(order) < num_tokens:
        counts = {}
        for word, n in words.items():
            for pair in zip(word, word[1:]):
                counts[pair] = counts.get(pair, 0) + n
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], order[p[0]], order[p[1]]))
        if counts[best] < min_frequency:
            break
        merges.append(best)
        order.setdefault(best[0] + best[1], len(order))
        words = {_merge(w, best): n for w, n in words.items()}
    return merges


def _merge(word, pair):
    out, i = [], 0
    while i < len(word):
        if word[i:i + 2] == pair:
            out.append(pair[0] + pair[1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


@given(st.lists(st.text(alphabet="aab c\n", max_size=12), max_size=12),
       st.integers(256, 300), st.integers(1, 3))
def test_incremental_training_matches_a_naive_reference(texts, vocab, min_frequency):
    texts = [t for t in texts if t] or ["a"]
    tok = BPETokenizer.train(texts, vocab, min_frequency=min_frequency, pattern=r"\S+|\s+")
    assert merges_as_bytes(tok) == naive_merges(texts, vocab, min_frequency)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(alphabet="aab", min_size=30, max_size=300), min_size=1, max_size=4),
       st.lists(st.text(alphabet="aab c", max_size=12), max_size=8), st.integers(1, 3))
def test_training_on_long_words_matches_the_naive_reference(long_words, texts, min_frequency):
    # long runs of one letter (overlapping pairs a a a) and merges that reuse a token's bytes
    texts = long_words + texts
    tok = BPETokenizer.train(texts, 330, min_frequency=min_frequency, pattern=r"\S+|\s+")
    assert merges_as_bytes(tok) == naive_merges(texts, 330, min_frequency)


@pytest.mark.parametrize("word", [
    "".join(random.Random(0).choices("abcdefghijklmnopqrstuvwxyz", k=40_000)),
    "a" * 40_000,  # overlapping occurrences: (a, a), then (aa, aa), ...
    "ab" * 20_000,
    "".join(random.Random(1).choices("ab", k=40_000)),
])
def test_merging_works_in_proportion_to_the_word_length(word):
    # The trainer keeps every word as a linked list and an index of where each pair occurs,
    # so all merges together look at most 3 times at each position of a word (its first pair
    # plus up to 2 pairs per merge there; never a scan or a rebuild of the word per merge).
    # Counted positions, not seconds: the quadratic trainer did O(length) work per merge.
    words, counts = _chunks_to_words(Counter({word: 3, "ba": 5}))
    state = _MergeState(words, counts, 2000)
    merged = sum(1 for _ in state.run(min_frequency=2))
    length = sum(map(len, words))
    applied = length - sum(t >= 0 for t in state.tok)  # occurrences merged away
    assert merged > 8 and applied > length // 2  # most of the word was merged
    assert applied <= state.visits <= 3 * length


def test_two_merges_may_spell_the_same_token_with_one_id():
    a, b, c = 97, 98, 99
    merges = [(a, b, 256), (b, c, 257), (256, c, 258), (a, 257, 258)]
    tok = BPETokenizer(merges, pattern=r"\S+")
    assert tok.vocab_size == 259 and tok.encode("abc") == [258]
    with pytest.raises(ValueError, match="already has id 258"):
        BPETokenizer(merges[:3] + [(a, 257, 259)])


def test_constructor_rejects_inconsistent_parts():
    with pytest.raises(ValueError, match="unknown left token id 300"):
        BPETokenizer([(300, 97, 256)])
    with pytest.raises(ValueError, match="repeats the pair"):
        BPETokenizer([(97, 97, 256), (97, 97, 257)])
    with pytest.raises(ValueError, match="already taken"):
        BPETokenizer([(97, 97, 98)])
    with pytest.raises(ValueError, match="256 ids"):
        BPETokenizer([], byte_ids=range(255))


# ---------------------------------------------------------------- round trips

@given(st.text().filter(encodable))
def test_round_trip_arbitrary_text(tok, text):
    assert tok.decode(tok.encode(text)) == text
    assert tok.decode(tok.encode(text, allowed_special="all")) == text


@given(st.lists(st.sampled_from(["<eos>", "<pad>", "<", ">", "e", " ", "é", "\n"])).map("".join))
def test_round_trip_with_special_names_in_text(tok, text):
    assert tok.decode(tok.encode(text)) == text
    assert tok.decode(tok.encode(text, allowed_special="all")) == text


@pytest.mark.parametrize("text", [
    "", " ", "\n", "\r\n\r\n", "\x00\x01\x7f", "e\u0301\u0302", "🤗" * 50, "東京タワー",
    "a" * 20000, " " * 5000, "1" * 3000, "é" * 3000, "\t \n" * 1000, "👨‍👩‍👧‍👦", "\ufeff\u200b",
    "\U0010ffff", SAMPLE * 20,
])
def test_round_trip_edge_cases(tok, text):
    assert tok.decode(tok.encode(text)) == text


def test_lone_surrogates_raise_value_error(tok):
    for text in ["\ud800", "ok \udfff ok", "a\ud83d"]:
        with pytest.raises(ValueError, match="surrogate"):
            tok.encode(text)


@given(st.binary(min_size=2, max_size=300))
def test_long_and_short_merge_loops_agree(tok, data):
    tokens = [tok.byte_ids[b] for b in data]
    vocab = tok._vocab
    assert _merge_long(list(tokens), vocab.ranks, vocab.merged_ids) == \
        _merge_short(list(tokens), vocab.ranks, vocab.merged_ids)


def test_encode_uses_the_merges(tok):
    ids = tok.encode("The quick brown fox")
    assert len(ids) < len("The quick brown fox") / 2
    assert tok.encode(SAMPLE) == tok.encode(SAMPLE)  # cached path gives the same ids
    tok._cache.clear()
    assert tok.encode_batch([SAMPLE, "fox"]) == [tok.encode(SAMPLE), tok.encode("fox")]


def test_cache_is_bounded():
    tok = BPETokenizer.train(["ab ab ab"], 260)
    tok._cache_size = 10
    for i in range(100):
        tok.encode(f"w{i}")
    assert len(tok._cache) <= 10


# ---------------------------------------------------------------- decoding

def test_decode_partial_utf8(tok):
    first_byte = tok.byte_ids["é".encode()[0]]
    with pytest.raises(ValueError, match="errors='replace'"):
        tok.decode([first_byte])
    assert tok.decode([first_byte], errors="replace") == "\ufffd"
    assert tok.decode([]) == ""


def test_decode_unknown_id(tok):
    for bad in [tok.vocab_size, -1, 10**9]:
        with pytest.raises(ValueError, match=f"unknown token id {bad}"):
            tok.decode([1, bad])


def test_decode_accepts_numpy_ids(tok):
    np = pytest.importorskip("numpy")
    ids = tok.encode(SAMPLE)
    assert tok.decode(np.array(ids)) == SAMPLE


# ---------------------------------------------------------------- special tokens

def test_special_tokens_are_plain_text_unless_allowed(tok):
    eos, pad = tok.special_id("<eos>"), tok.special_id("<pad>")
    assert (eos, pad) == (0, 1)
    text = "stop<eos> <pad>"
    assert eos not in tok.encode(text) and pad not in tok.encode(text)
    assert tok.encode(text) == tok.encode("stop") + tok.encode("<eos> <pad>")
    allowed = tok.encode(text, allowed_special="all")
    assert allowed == tok.encode("stop") + [eos] + tok.encode(" ") + [pad]
    only_eos = tok.encode(text, allowed_special={"<eos>"})
    assert eos in only_eos and pad not in only_eos
    assert tok.decode(allowed) == text


def test_longest_special_wins():
    tok = BPETokenizer.train(["hello"], 300, special_tokens=["<e>", "<e>x"])
    assert tok.encode("<e>x<e>", allowed_special="all") == [1, 0]


def test_allowed_special_validation(tok):
    with pytest.raises(ValueError, match="<nope>"):
        tok.encode("x", allowed_special={"<nope>"})
    with pytest.raises(ValueError, match="'all'"):
        tok.encode("x", allowed_special="<eos>")


def test_special_id_unknown(tok):
    with pytest.raises(KeyError, match="<unk>"):
        tok.special_id("<unk>")


# ---------------------------------------------------------------- lookups

def test_token_id_round_trip_over_the_whole_vocabulary(tok):
    for token_id in range(tok.vocab_size):
        assert tok.token_to_id(tok.id_to_token(token_id)) == token_id
        if token_id not in tok.special_tokens.values():  # bytes name ordinary tokens only
            assert tok.token_to_id(tok.id_to_bytes(token_id)) == token_id


def test_readable_byte_tokens(tok):
    assert tok.id_to_token(tok.byte_ids[ord("a")]) == "a"
    assert tok.id_to_token(tok.byte_ids[0xC3]) == "<0xC3>"
    assert tok.token_to_id("<0xC3>") == tok.byte_ids[0xC3]
    assert tok.id_to_token(0) == "<eos>"
    assert tok.token_to_id(" the") == tok.encode(" the")[0]
    with pytest.raises(KeyError, match="not in the vocabulary"):
        tok.token_to_id("definitely not a token")
    with pytest.raises(KeyError, match="unknown token id"):
        tok.id_to_token(tok.vocab_size)


# ---------------------------------------------------------------- bad input

def test_vocab_size_too_small():
    with pytest.raises(ValueError, match="at least 256.*= 258"):
        BPETokenizer.train(["abc"], 257, special_tokens=["<a>", "<b>"])


@pytest.mark.parametrize("texts", [[], [""], ["", ""], iter([])])
def test_empty_corpus(texts):
    with pytest.raises(ValueError, match="empty corpus"):
        BPETokenizer.train(texts, 300)


def test_duplicate_special_tokens():
    with pytest.raises(ValueError, match="duplicate special tokens: '<eos>'"):
        BPETokenizer.train(["abc"], 300, special_tokens=["<eos>", "<pad>", "<eos>"])


def test_pattern_that_does_not_compile():
    with pytest.raises(ValueError, match=r"pattern '\(\[a-z\]' does not compile: .*"):
        BPETokenizer.train(["abc"], 300, pattern="([a-z]")


def test_training_text_with_lone_surrogate():
    with pytest.raises(ValueError, match="surrogate"):
        BPETokenizer.train(["ab\ud800"], 300)


# ---------------------------------------------------------------- merges of frequent pairs in NumPy
def bulk_from(threshold: int):
    """Merge pairs indexed at ``threshold`` positions or more with NumPy (1: every merge)."""
    from unittest import mock

    from minitf.tokenizer import train
    return mock.patch.object(train, "_BULK", threshold)


@given(st.lists(st.text(alphabet="aab c\n", max_size=12), max_size=12),
       st.integers(256, 300), st.integers(1, 3))
def test_numpy_merges_match_the_naive_reference(texts, vocab, min_frequency):
    texts = [t for t in texts if t] or ["a"]
    with bulk_from(1):
        tok = BPETokenizer.train(texts, vocab, min_frequency=min_frequency, pattern=r"\S+|\s+")
    assert merges_as_bytes(tok) == naive_merges(texts, vocab, min_frequency)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(alphabet="aab", min_size=30, max_size=300), min_size=1, max_size=4),
       st.lists(st.text(alphabet="aab c", max_size=12), max_size=8), st.integers(1, 3),
       st.sampled_from([1, 2, 5]))
def test_numpy_merges_on_long_words_match_the_naive_reference(long_words, texts, min_frequency,
                                                               threshold):
    # runs a a a merged in one go, neighbouring merges in a word (a b a b), and thresholds
    # that mix NumPy and Python merges within one training run
    texts = long_words + texts
    with bulk_from(threshold):
        tok = BPETokenizer.train(texts, 330, min_frequency=min_frequency, pattern=r"\S+|\s+")
    assert merges_as_bytes(tok) == naive_merges(texts, 330, min_frequency)


def test_numpy_and_python_merges_agree_on_sentences():
    rng = random.Random(3)
    words = "der die das Hund läuft über the a dog runs over 1 23 456 , . ! aaaa abab".split()
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 12))) for _ in range(2000)]
    with bulk_from(10**9):
        python = BPETokenizer.train(texts, 600)
    with bulk_from(1):
        numpy = BPETokenizer.train(texts, 600)
    assert len(python.merges) > 40 and numpy.merges == python.merges


@pytest.mark.parametrize("word", ["a" * 4_000, "ab" * 2_000,
                                  "".join(random.Random(2).choices("ab", k=4_000))])
def test_numpy_merges_leave_the_state_of_python_merges(word):
    # same tokens, links and pair counts after every merge (zero counts left out)
    states = []
    for threshold in (1, 10**9):
        with bulk_from(threshold):
            words, counts = _chunks_to_words(Counter({word: 3, "ba": 5, "aab": 2}))
            state = _MergeState(words, counts, 400)
            trace = []
            for _ in state.run(min_frequency=2):
                trace.append((list(state.tok), list(state.next), list(state.prev),
                              {k: c for k, c in state.pair_counts.items() if c}))
            states.append(trace)
    assert len(states[0]) > 10 and states[0] == states[1]
