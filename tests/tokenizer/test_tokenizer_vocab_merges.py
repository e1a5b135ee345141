"""GPT-2's vocab.json + merges.txt: files written by hand (no dependency), and the ids of Hugging Face
``tokenizers`` / ``transformers`` on a tokenizer trained here (skipped without them)."""
import json
import os

import numpy as np
import pytest

from minitf.tokenizer import BPETokenizer, TokenizerFileError, from_vocab_merges
from minitf.tokenizer.byte_level import BYTE_TO_CHAR

TEXTS = ["Hello world! naïve café, crème brûlée.", "東京タワー and 🤗 emoji 👨‍👩‍👧‍👦 family", "a" * 500,
         "x" + "é" * 200, "", " ", "\n", "   spaces   and\n\n\nnewlines\t\ttabs  \r\n", "It's 3.14159 — don't!",
         "we'll; (x+y)*z = 42", "ÄÖÜ ß ẞ Ǆ", "مرحبا بالعالم", "नमस्ते", "e\u0301 combining", "the cat's café",
         "🤗🤗🤗" * 30, "über über   über", "  leading and trailing  ", "$1,234.56", "<|endoftext|>x"]


def write_files(tmp_path, merges=("a b", "ab c"), extra=None, header="#version: 0.2\n"):
    vocab = {BYTE_TO_CHAR[b]: b for b in range(256)}
    for i, token in enumerate(["ab", "abc", "<|endoftext|>"] + list(extra or [])):
        vocab[token] = 256 + i
    (tmp_path / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (tmp_path / "merges.txt").write_text(header + "\n".join(merges) + "\n", encoding="utf-8")
    return tmp_path / "vocab.json", tmp_path / "merges.txt"


def test_hand_written_files_load_with_their_ids_and_the_unreachable_entry_as_a_special(tmp_path):
    tok = from_vocab_merges(*write_files(tmp_path))
    assert tok.encode("abc ab") == [257, ord(" "), 256]
    assert tok.special_tokens == {"<|endoftext|>": 258}
    assert tok.encode("x<|endoftext|>", allowed_special="all") == [ord("x"), 258]
    assert tok.decode(tok.encode("naïve 🤗")) == "naïve 🤗"
    no_header = from_vocab_merges(*write_files(tmp_path, header=""))
    assert no_header.encode("abc") == [257]


@pytest.mark.parametrize("merges, message", [
    (("a q",), "merge 0 \\('a', 'q'\\) uses 'aq', which is not in the vocabulary"),
    (("a b c",), "merge 0 is not a pair"),
])
def test_bad_merges_name_the_file_and_the_merge(tmp_path, merges, message):
    vocab, merges_path = write_files(tmp_path, merges=merges)
    with pytest.raises(TokenizerFileError, match="merges.txt: " + message):
        from_vocab_merges(vocab, merges_path)


def test_bad_vocabularies_and_missing_files_are_named(tmp_path):
    vocab, merges = write_files(tmp_path)
    data = json.loads(vocab.read_text())
    del data[BYTE_TO_CHAR[0x41]]
    vocab.write_text(json.dumps(data))
    with pytest.raises(TokenizerFileError, match="vocab.json: the vocabulary lacks 1 of the 256 byte tokens \\(0x41\\)"):
        from_vocab_merges(vocab, merges)
    vocab.write_text(json.dumps({"a": "one"}))
    with pytest.raises(TokenizerFileError, match="vocab.json: the vocabulary\\['a'\\] must be an integer id"):
        from_vocab_merges(vocab, merges)
    with pytest.raises(FileNotFoundError, match="merges.txt not found"):
        from_vocab_merges(*write_files(tmp_path)[:1], tmp_path / "none.txt")
    with pytest.raises(FileNotFoundError, match="vocab.json not found"):
        from_vocab_merges(tmp_path / "none.json", merges)


def corpus():
    rng = np.random.default_rng(0)
    words = ["the", "cat", "naïve", "café", "東京", "🤗", "don't", "I'll", "1234", "!!", "  ", "\n", "über", "aaaa"]
    return [" ".join(rng.choice(words, 12)) for _ in range(300)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(tokenizers' ByteLevelBPETokenizer trained here, the folder of its tokenizer.json, vocab.json, merges.txt)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    tokenizers = pytest.importorskip("tokenizers", reason="pip install tokenizers to compare with it")
    tok = tokenizers.ByteLevelBPETokenizer()
    tok.train_from_iterator(corpus(), vocab_size=400, min_frequency=2, special_tokens=["<|endoftext|>"],
                            show_progress=False)
    folder = tmp_path_factory.mktemp("gpt2tok")
    tok.save(str(folder / "tokenizer.json"))
    tok.save_model(str(folder))
    return tok, folder


def test_both_formats_give_the_ids_of_tokenizers(trained):
    tok, folder = trained
    ours_json = BPETokenizer.from_huggingface(folder / "tokenizer.json")
    ours_files = from_vocab_merges(folder / "vocab.json", folder / "merges.txt")
    for text in TEXTS:
        expected = tok.encode(text).ids
        assert ours_files.encode(text, allowed_special="all") == expected, text
        assert ours_json.encode(text, allowed_special="all") == expected, text


def test_vocab_and_merges_give_the_ids_of_transformers_gpt2_tokenizer(trained):
    transformers = pytest.importorskip("transformers", reason="pip install transformers to compare with it")
    _, folder = trained
    only_files = folder / "files"
    only_files.mkdir(exist_ok=True)
    for name in ("vocab.json", "merges.txt"):
        (only_files / name).write_bytes((folder / name).read_bytes())
    reference = transformers.GPT2TokenizerFast.from_pretrained(str(only_files))
    ours = from_vocab_merges(only_files / "vocab.json", only_files / "merges.txt")
    for text in TEXTS:
        assert ours.encode(text, allowed_special="all") == reference(text)["input_ids"], text
