"""Cross-check with Hugging Face ``tokenizers``: same merges, same ids (skipped without it)."""

import json
import os

import pytest
from hypothesis import given, strategies as st

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
tokenizers = pytest.importorskip("tokenizers")
from tokenizers import Regex, decoders, models, normalizers, pre_tokenizers, trainers  # noqa: E402

from minitf.tokenizer import GPT4_PATTERN, BPETokenizer  # noqa: E402

SPECIALS = ["<pad>", "<eos>"]
SUBJECTS = ["A man", "Two women", "The little girl", "Ein Hund", "Zwei Männer", "Die Frau",
            "Un garçon", "Les enfants", "A group of 12 people", "Der 3-jährige Junge"]
VERBS = ["is riding", "are playing", "läuft über", "spielt mit", "joue avec", "isn't eating",
         "they'll watch", "we've seen", "I'd like", "SHE'S holding"]
OBJECTS = ["a red bicycle.", "the ball!", "die Straße, schnell.", "einen Fußball?",
           "le chat noir...", "$1,234.56 worth of food", "東京タワー and 🤗 emoji",
           "naïve café — crème brûlée", "a tab\tand  two spaces", "the end\n\nnew paragraph"]
SENTENCES = [f"{s} {v} {o}" for s in SUBJECTS for v in VERBS for o in OBJECTS]
CHECK = ["A dog's toy; isn't it? 1234567 rock'n'roll", "  leading spaces and trailing  ",
         "line one\r\nline two\n\n\tindented", "ÄÖÜ äöü ß ẞ Ǆ ǅ", "مرحبا بالعالم", "नमस्ते",
         "e\u0301 combining", "👨‍👩‍👧‍👦 family", "<eos> in <pad> text", "", " ", "\n"]


def hf_pre_tokenizer(style: str):
    if style == "gpt4":
        return pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(GPT4_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    return pre_tokenizers.ByteLevel(add_prefix_space=False)


def train_hf(style: str, vocab_size: int = 450, alphabet: bool = True, specials=SPECIALS):
    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = hf_pre_tokenizer(style)
    tok.decoder = decoders.ByteLevel()
    extra = {"initial_alphabet": pre_tokenizers.ByteLevel.alphabet()} if alphabet else {}
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  special_tokens=list(specials), **extra)
    tok.train_from_iterator(SENTENCES, trainer)
    return tok


@pytest.fixture(scope="module", params=["gpt4", "gpt2"])
def pair(request, tmp_path_factory):
    """(style, Hugging Face tokenizer, path of its tokenizer.json, ours loaded from it)."""
    hf = train_hf(request.param)
    path = tmp_path_factory.mktemp("hf") / "tokenizer.json"
    hf.save(str(path))
    return request.param, hf, path, BPETokenizer.from_huggingface(path)


def hf_ids(hf, text):
    return hf.encode(text, add_special_tokens=False).ids


def test_training_learns_the_same_merges_and_ids(pair):
    style, hf, path, imported = pair
    ours = BPETokenizer.train(SENTENCES, 450, special_tokens=SPECIALS, pattern=style)
    assert len(ours.merges) == 450 - 256 - 2
    assert [ours.id_to_bytes(n) for _, _, n in ours.merges] == \
        [imported.id_to_bytes(n) for _, _, n in imported.merges]
    # merged tokens and specials get the same ids; only the 256 byte ids are ordered
    # differently (Hugging Face sorts them by their GPT-2 table characters)
    assert [n for _, _, n in ours.merges] == [n for _, _, n in imported.merges]
    assert ours.special_tokens == imported.special_tokens == {"<pad>": 0, "<eos>": 1}
    for text in SENTENCES[::17] + CHECK:
        assert [ours.id_to_bytes(i) for i in ours.encode(text)] == \
            [imported.id_to_bytes(i) for i in imported.encode(text)]


def test_imported_tokenizer_encodes_like_hugging_face(pair):
    _, hf, _, imported = pair
    for text in SENTENCES + CHECK:
        assert imported.encode(text, allowed_special="all") == hf_ids(hf, text), text
        ids = hf_ids(hf, text)
        assert imported.decode(ids) == hf.decode(ids, skip_special_tokens=False) == text


def encodable(text: str) -> bool:
    return not any("\ud800" <= c <= "\udfff" for c in text)


@given(st.text(max_size=60).filter(encodable))
def test_imported_tokenizer_matches_on_drawn_text(pair, text):
    _, hf, _, imported = pair
    assert imported.encode(text, allowed_special="all") == hf_ids(hf, text)


@given(st.lists(st.sampled_from(["Two", " women", "'s", " 123", "4", "\n", " ", "ü", "<eos>",
                                 "🤗", "!!", "é", "\t", "'LL", "東"]), max_size=20).map("".join))
def test_imported_tokenizer_matches_on_drawn_word_soup(pair, text):
    _, hf, _, imported = pair
    assert imported.encode(text, allowed_special="all") == hf_ids(hf, text)


def test_old_style_merge_strings_are_read(pair, tmp_path):
    _, hf, path, imported = pair
    data = json.loads(path.read_text(encoding="utf-8"))
    data["model"]["merges"] = [" ".join(m) for m in data["model"]["merges"]]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data), encoding="utf-8")
    assert BPETokenizer.from_huggingface(old).merges == imported.merges


def test_imported_tokenizer_saves_and_loads(pair, tmp_path):
    _, hf, _, imported = pair
    imported.save(tmp_path / "ours.json")
    again = BPETokenizer.load(tmp_path / "ours.json")
    for text in CHECK:
        assert again.encode(text, allowed_special="all") == hf_ids(hf, text)


def save(tok, tmp_path, name="t.json"):
    path = tmp_path / name
    tok.save(str(path))
    return path


def test_unsupported_files_raise_clear_errors(tmp_path):
    no_alphabet = save(train_hf("gpt4", 400, alphabet=False), tmp_path, "a.json")
    with pytest.raises(ValueError, match="a.json: the vocabulary lacks .* byte tokens"):
        BPETokenizer.from_huggingface(no_alphabet)

    wordpiece = tokenizers.Tokenizer(models.WordPiece({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    with pytest.raises(ValueError, match="model type 'WordPiece' is not supported"):
        BPETokenizer.from_huggingface(save(wordpiece, tmp_path, "wp.json"))

    normalized = train_hf("gpt2", 300)
    normalized.normalizer = normalizers.NFC()
    with pytest.raises(ValueError, match="normalizer 'NFC' is not supported"):
        BPETokenizer.from_huggingface(save(normalized, tmp_path, "n.json"))

    whitespace = train_hf("gpt2", 300)
    whitespace.pre_tokenizer = pre_tokenizers.Whitespace()
    with pytest.raises(ValueError, match="pre_tokenizer 'Whitespace' is not supported"):
        BPETokenizer.from_huggingface(save(whitespace, tmp_path, "w.json"))

    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.json: not valid JSON"):
        BPETokenizer.from_huggingface(bad)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        BPETokenizer.from_huggingface(tmp_path / "missing.json")
