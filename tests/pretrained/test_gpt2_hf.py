"""GPT-2 against Hugging Face transformers: random GPT2LMHeadModels saved with save_pretrained load with
load_gpt2 and give the same logits, padded logits, greedy generations and token ids (skipped without
transformers; no download: every model and tokenizer is built here)."""
import os

import numpy as np
import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
torch = pytest.importorskip("torch", reason="pip install torch to compare with transformers")
transformers = pytest.importorskip("transformers", reason="pip install transformers to compare with it")
tokenizers = pytest.importorskip("tokenizers", reason="pip install tokenizers to build a reference tokenizer")

from minitf.pretrained import load_gpt2, positions_from_mask  # noqa: E402

SIZES = [
    dict(vocab_size=300, n_positions=32, n_embd=16, n_layer=2, n_head=4),
    dict(vocab_size=280, n_positions=40, n_embd=24, n_layer=3, n_head=3, n_inner=40, activation_function="gelu",
         layer_norm_epsilon=1e-6, scale_attn_by_inverse_layer_idx=True),
    dict(vocab_size=257, n_positions=20, n_embd=8, n_layer=1, n_head=1, activation_function="relu",
         tie_word_embeddings=False),
]
TEXTS = ["Hello world! naïve café, crème brûlée.", "東京タワー and 🤗 emoji 👨‍👩‍👧‍👦", "a" * 300, "",
         "   spaces   and\n\n\nnewlines\t\ttabs  ", "It's 3.14159 — don't! we'll; (x+y)*z", "ÄÖÜ ß مرحبا नमस्ते"]


def corpus():
    rng = np.random.default_rng(0)
    words = ["the", "cat", "naïve", "café", "東京", "🤗", "don't", "I'll", "1234", "!!", "  ", "\n", "über"]
    return [" ".join(rng.choice(words, 12)) for _ in range(300)]


@pytest.fixture(scope="module")
def tokenizer_files(tmp_path_factory):
    """A ByteLevel BPE trained here, saved as tokenizer.json and as vocab.json + merges.txt."""
    tok = tokenizers.ByteLevelBPETokenizer()
    tok.train_from_iterator(corpus(), vocab_size=300, min_frequency=2, special_tokens=["<|endoftext|>"],
                            show_progress=False)
    folder = tmp_path_factory.mktemp("tok")
    tok.save(str(folder / "tokenizer.json"))
    tok.save_model(str(folder))
    return folder


def hf_folder(tmp_path, tokenizer_files, seed=0, dtype=torch.float32, with_json=True, **size):
    torch.manual_seed(seed)
    config = transformers.GPT2Config(**size, bos_token_id=0, eos_token_id=0, attn_implementation="eager")
    model = transformers.GPT2LMHeadModel(config).to(dtype).eval()
    model.save_pretrained(tmp_path)
    names = ["tokenizer.json"] if with_json else ["vocab.json", "merges.txt"]
    for name in names:
        (tmp_path / name).write_bytes((tokenizer_files / name).read_bytes())
    return model


def hf_logits(model, ids, **kwargs):
    with torch.no_grad():
        kwargs = {k: torch.tensor(np.asarray(v)) for k, v in kwargs.items()}
        return model(torch.tensor(ids), **kwargs).logits.numpy()


@pytest.mark.parametrize("size", SIZES)
def test_logits_equal_transformers_in_float32_and_float64(tmp_path, tokenizer_files, size):
    ids = np.random.default_rng(1).integers(0, size["vocab_size"], (2, 11))
    hf = hf_folder(tmp_path, tokenizer_files, **size)
    model, _ = load_gpt2(tmp_path)
    np.testing.assert_allclose(model(ids).data, hf_logits(hf, ids), rtol=1e-5, atol=1e-5)
    double, _ = load_gpt2(tmp_path, dtype=np.float64)
    np.testing.assert_allclose(double(ids).data, hf_logits(hf.double(), ids), rtol=1e-10, atol=1e-10)


def test_padded_batches_equal_transformers_on_the_real_tokens(tmp_path, tokenizer_files):
    hf = hf_folder(tmp_path, tokenizer_files, dtype=torch.float64, **SIZES[0])
    model, _ = load_gpt2(tmp_path, dtype=np.float64)
    ids = np.random.default_rng(2).integers(0, 300, (3, 8))
    right = np.array([[1] * 8, [1] * 5 + [0] * 3, [1] * 2 + [0] * 6])
    ours, theirs = model(ids, attention_mask=right).data, hf_logits(hf, ids, attention_mask=right)
    real = right.astype(bool)
    np.testing.assert_allclose(ours[real], theirs[real], rtol=1e-10, atol=1e-10)
    left = right[:, ::-1].copy()
    positions = positions_from_mask(left)
    ours = model(ids, attention_mask=left, position_ids=positions).data
    theirs = hf_logits(hf, ids, attention_mask=left, position_ids=positions)
    np.testing.assert_allclose(ours[left.astype(bool)], theirs[left.astype(bool)], rtol=1e-10, atol=1e-10)
    ours = model(ids, attention_mask=left).data  # HF's forward default: positions 0.. whatever the padding
    theirs = hf_logits(hf, ids, attention_mask=left)
    np.testing.assert_allclose(ours[left.astype(bool)], theirs[left.astype(bool)], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("size", SIZES[:2])
def test_greedy_generation_equals_transformers_generate(tmp_path, tokenizer_files, size):
    hf = hf_folder(tmp_path, tokenizer_files, seed=3, **size)
    model, _ = load_gpt2(tmp_path)
    ids = np.random.default_rng(4).integers(1, size["vocab_size"], (3, 6))
    mask = np.array([[1] * 6, [0, 0] + [1] * 4, [0] * 5 + [1]])
    with torch.no_grad():
        expected = hf.generate(torch.tensor(ids), attention_mask=torch.tensor(mask), max_new_tokens=12,
                               do_sample=False, eos_token_id=None, pad_token_id=0).numpy()
    np.testing.assert_array_equal(model.generate(ids, 12, attention_mask=mask), expected)
    eos = int(expected[1, 8])  # an id the model makes: rows stop there and are padded
    with torch.no_grad():
        expected = hf.generate(torch.tensor(ids), attention_mask=torch.tensor(mask), max_new_tokens=12,
                               do_sample=False, eos_token_id=eos, pad_token_id=5).numpy()
    np.testing.assert_array_equal(model.generate(ids, 12, attention_mask=mask, eos_token_id=eos,
                                                 pad_token_id=5), expected)


@pytest.mark.parametrize("with_json", [True, False])
def test_the_folders_tokenizer_gives_transformers_ids(tmp_path, tokenizer_files, with_json):
    hf_folder(tmp_path, tokenizer_files, with_json=with_json, **SIZES[0])
    _, tokenizer = load_gpt2(tmp_path)
    reference = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    for text in TEXTS + ["two <|endoftext|> documents"]:
        assert tokenizer.encode(text, allowed_special="all") == reference(text)["input_ids"], text
        assert tokenizer.decode(tokenizer.encode(text)) == text
