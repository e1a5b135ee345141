"""The BERT encoder: a tiny random folder written here against a NumPy reference (no extra packages),
its checks on bad folders and inputs, and parity with transformers' BertModel and
sentence-transformers on the all-MiniLM-L6-v2 package (each skipped without its packages)."""
import json
import math
import os
import shutil

import numpy as np
import pytest

from bert_files import TINY_CONFIG, minilm_folder, tiny_bert_folder
from minitf.pretrained.bert import BertModel, load_bert
from minitf.serialization import CheckpointError, load, save

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
TINY_TEXTS = ["the cat sat!", "Café NAÏVE, unbelievably", "中文 cat", "", "the cats sat on the cat, the cat sat",
              "x" * 9, "$10?"]
TINY_PAIRS = ["cat", "", "the sat", "$10?"]
_erf = np.vectorize(math.erf)


def reference(folder, ids, mask, types):
    """(hidden states of every layer, attention probabilities, pooler output) in float64 NumPy."""
    w = {k: v.astype(np.float64) for k, v in load(folder / "model.safetensors").items()}
    heads = TINY_CONFIG["num_attention_heads"]

    def norm(x, p):
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-12) * w[p + ".weight"] + w[p + ".bias"]

    def dense(x, p):
        return x @ w[p + ".weight"].T + w[p + ".bias"]

    b, length = ids.shape
    x = norm(w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:length]
             + w["embeddings.token_type_embeddings.weight"][types], "embeddings.LayerNorm")
    states, probs = [x], []
    for i in range(TINY_CONFIG["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q, k, v = (dense(x, p + "attention.self." + n).reshape(b, length, heads, -1).transpose(0, 2, 1, 3)
                   for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(q.shape[-1]) + np.where(mask[:, None, None, :] > 0, 0, -np.inf)
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        context = (weights @ v).transpose(0, 2, 1, 3).reshape(b, length, -1)
        a = norm(dense(context, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        inner = dense(a, p + "intermediate.dense")
        x = norm(dense(0.5 * inner * (1 + _erf(inner / math.sqrt(2))), p + "output.dense") + a, p + "output.LayerNorm")
        states.append(x)
        probs.append(weights)
    return states, probs, np.tanh(dense(x[:, 0], "pooler.dense"))


def batch(tokenizer, texts, pairs=None):
    tokenizer.enable_padding()
    encodings = tokenizer.encode_batch(list(zip(texts, pairs)) if pairs else texts)
    return [np.array([getattr(e, f) for e in encodings]) for f in ("ids", "attention_mask", "type_ids")]


@pytest.fixture
def tiny(tmp_path):
    return tiny_bert_folder(tmp_path / "tiny")


def test_a_tiny_bert_equals_a_numpy_reference(tiny):
    model, tokenizer = load_bert(tiny)
    model.double()
    ids, mask, types = batch(tokenizer, TINY_TEXTS[:4], TINY_PAIRS)
    out = model(ids, mask, types, output_hidden_states=True, output_attentions=True)
    states, probs, pooled = reference(tiny, ids, mask, types)
    assert len(out.hidden_states) == len(states) == 3 and len(out.attentions) == 2
    for ours, theirs in zip(out.hidden_states, states):
        np.testing.assert_allclose(ours.data, theirs, rtol=1e-10, atol=1e-10)
    for ours, theirs in zip(out.attentions, probs):
        np.testing.assert_allclose(ours.data, theirs, rtol=1e-10, atol=1e-12)
        assert np.all(ours.data[:, :, :, mask[0] == 0][0] == 0)  # padding is never attended
    np.testing.assert_allclose(out.last_hidden_state.data, states[-1], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(out.pooler_output.data, pooled, rtol=1e-10, atol=1e-10)
    assert model(ids, mask, types).hidden_states is None


@pytest.mark.parametrize("mode, normalize", [("mean_tokens", True), ("mean_tokens", False), ("cls_token", True),
                                             ("max_tokens", False), ("mean_sqrt_len_tokens", True)])
def test_encode_pools_as_the_folder_says(tmp_path, mode, normalize):
    folder = tiny_bert_folder(tmp_path / "tiny", pooling=mode, normalize=normalize)
    model, tokenizer = load_bert(folder)
    model.double()
    got = model.encode(TINY_TEXTS, batch_size=3)
    tokenizer.enable_truncation(12)  # sentence_bert_config.json's max_seq_length
    ids, mask, types = batch(tokenizer, TINY_TEXTS)
    states = reference(folder, ids, mask, types)[0][-1]
    m = mask[:, :, None]
    expected = {"mean_tokens": (states * m).sum(1) / m.sum(1), "cls_token": states[:, 0],
                "max_tokens": np.where(m > 0, states, -np.inf).max(1),
                "mean_sqrt_len_tokens": (states * m).sum(1) / np.sqrt(m.sum(1))}[mode]
    if normalize:
        expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert got.shape == (len(TINY_TEXTS), TINY_CONFIG["hidden_size"]) and isinstance(got, np.ndarray)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    assert ids.shape[1] == 12  # the long text was cut


def test_a_sentence_encodes_the_same_alone_or_in_a_padded_batch(tiny):
    model, _ = load_bert(tiny)
    alone = np.concatenate([model.encode([t]) for t in TINY_TEXTS])
    together = model.encode(TINY_TEXTS, batch_size=len(TINY_TEXTS))
    np.testing.assert_allclose(alone, together, rtol=1e-5, atol=1e-6)
    assert together.dtype == np.float32


def test_prefixed_keys_a_minitf_saved_state_and_a_folder_without_pooler_load(tmp_path, tiny):
    prefixed = tiny_bert_folder(tmp_path / "prefixed", prefix="bert.")
    a, b = load_bert(tiny)[0], load_bert(prefixed)[0]
    np.testing.assert_array_equal(a.encode(TINY_TEXTS), b.encode(TINY_TEXTS))
    names = set(a.state_dict())
    assert "encoder.layer.1.attention.self.query.weight" in names and "pooler.dense.bias" in names
    assert "embeddings.LayerNorm.weight" in names and len(names) == 5 + 2 * 16 + 2
    copy = shutil.copytree(tiny, tmp_path / "copy")  # its state dict saved by minitf loads back the same
    save(a.state_dict(), copy / "model.safetensors")
    np.testing.assert_array_equal(load_bert(copy)[0].encode(TINY_TEXTS), a.encode(TINY_TEXTS))
    no_pooler = tiny_bert_folder(tmp_path / "nopool", drop="pooler.dense.weight")
    model = load_bert(no_pooler)[0]
    assert "pooler.dense.weight" not in model.state_dict() and model([[2, 3]]).pooler_output is None


@pytest.mark.parametrize("config, message", [
    ({"hidden_act": "relu"}, "hidden_act='relu' is not supported"),
    ({"position_embedding_type": "relative_key"}, "position_embedding_type='relative_key' is not supported"),
    ({"model_type": "roberta"}, "model_type='roberta' is not supported"),
    ({"is_decoder": True}, "is_decoder=True is not supported"),
    ({"num_attention_heads": 3}, "hidden_size 8 is not a multiple of num_attention_heads 3"),
    ({"hidden_size": "8"}, "hidden_size must be an integer in 1 .. 1048576, got '8'"),
    ({"layer_norm_eps": 0}, "layer_norm_eps must be a number in (0, 1)"),
    ({"vocab_size": 20}, "has token id 33, beyond the model's vocab_size 20"),
    ({"hidden_size": 16}, "weight 'embeddings.word_embeddings.weight' has shape (36, 8); config.json implies (36, 16)"),
])
def test_unsupported_or_mismatched_configs_are_named(tiny, config, message):
    (tiny / "config.json").write_text(json.dumps({**TINY_CONFIG, **config}))
    with pytest.raises(ValueError) as info:
        load_bert(tiny)
    assert message in str(info.value)


def test_a_missing_weight_and_unsupported_pooling_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="missing weight 'bert.encoder.layer.1.output.dense.bias'"):
        load_bert(tiny_bert_folder(tmp_path / "a", prefix="bert.", drop="encoder.layer.1.output.dense.bias"))
    folder = tiny_bert_folder(tmp_path / "b")
    for modes in ({"pooling_mode_weightedmean_tokens": True}, {"pooling_mode_cls_token": True,
                                                                "pooling_mode_mean_tokens": True}):
        (folder / "1_Pooling" / "config.json").write_text(json.dumps(modes))
        with pytest.raises(ValueError, match="pooling modes .* are not supported"):
            load_bert(folder)


def test_a_mis_shaped_weight_a_missing_file_and_unknown_modules_are_named(tmp_path, tiny):
    from safetensors.numpy import save_file
    weights = load(tiny / "model.safetensors")
    weights["encoder.layer.0.intermediate.dense.weight"] = np.zeros((5, 8), np.float32)
    save_file(weights, str(tiny / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"'encoder.layer.0.intermediate.dense.weight' has shape \(5, 8\).*\(12, 8\)"):
        load_bert(tiny)
    (tiny / "model.safetensors").unlink()
    (tiny / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(FileNotFoundError, match="model.safetensors not found.*pickle files are never read"):
        load_bert(tiny)
    with pytest.raises(FileNotFoundError, match="model folder"):
        load_bert(tmp_path / "nowhere")
    other = tiny_bert_folder(tmp_path / "other")
    (other / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="config.json not found"):
        load_bert(other)
    (tiny_bert_folder(tmp_path / "untokenized") / "tokenizer.json").unlink()
    with pytest.raises(FileNotFoundError, match="tokenizer.json not found"):
        load_bert(tmp_path / "untokenized")
    dense = tiny_bert_folder(tmp_path / "dense")
    (dense / "modules.json").write_text(json.dumps([{"path": "", "type": "sentence_transformers.models.Transformer"},
                                                    {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                                                    {"path": "2_Dense", "type": "sentence_transformers.models.Dense"}]))
    with pytest.raises(ValueError, match="unknown .*models.Dense"):
        load_bert(dense)


def test_bad_inputs_are_named(tiny):
    model, _ = load_bert(tiny)
    with pytest.raises(ValueError, match="more than max_position_embeddings 16"):
        model(np.zeros((1, 17), np.int64))
    with pytest.raises(ValueError, match="integer array"):
        model(np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match="attention_mask has shape"):
        model(np.zeros((2, 3), np.int64), np.ones((2, 4)))
    with pytest.raises(ValueError, match="token_type_ids must be in 0 .. 1"):
        model(np.zeros((1, 3), np.int64), None, np.full((1, 3), 2))
    with pytest.raises(TypeError, match="list of strings"):
        model.encode("one text")
    with pytest.raises(ValueError, match="needs a tokenizer"):
        BertModel(model.config).encode(["a"])


# ---- against transformers and sentence-transformers --------------------------------------------

def test_hidden_states_and_attentions_equal_transformers(tmp_path):
    torch = pytest.importorskip("torch", reason="install torch to compare with transformers")
    transformers = pytest.importorskip("transformers", reason="install transformers to compare")
    torch.manual_seed(0)
    config = {k: v for k, v in TINY_CONFIG.items() if k not in ("model_type", "architectures")}
    reference_model = transformers.BertModel(transformers.BertConfig(**config, attn_implementation="eager")).eval()
    folder = tmp_path / "hf"
    reference_model.save_pretrained(folder)
    tiny_bert_folder(tmp_path / "scratch")
    for name in ("tokenizer.json", "modules.json", "sentence_bert_config.json", "1_Pooling"):
        (shutil.copytree if name == "1_Pooling" else shutil.copy)(tmp_path / "scratch" / name, folder / name)
    model, tokenizer = load_bert(folder)
    ids, mask, types = batch(tokenizer, TINY_TEXTS[:4], TINY_PAIRS)
    model.double()
    reference_model.double()
    with torch.no_grad():
        theirs = reference_model(torch.tensor(ids), torch.tensor(mask), torch.tensor(types),
                                 output_hidden_states=True, output_attentions=True)
    ours = model(ids, mask, types, output_hidden_states=True, output_attentions=True)
    for a, b in zip(ours.hidden_states, theirs.hidden_states, strict=True):
        np.testing.assert_allclose(a.data, b.numpy(), rtol=1e-10, atol=1e-10)
    for a, b in zip(ours.attentions, theirs.attentions, strict=True):
        np.testing.assert_allclose(a.data, b.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.pooler_output.data, theirs.pooler_output.numpy(), rtol=1e-10, atol=1e-10)


SENTENCES = [
    "The lighthouse keeper counted ships until dawn.", "A lighthouse guided the fishing boats home at night.",
    "My grandmother bakes bread every Sunday morning.", "Fresh loaves come out of the oven on weekends.",
    "The stock market fell sharply after the announcement.", "Share prices dropped when the news broke.",
    "Can you recommend a quiet café near the station?", "Où se trouve la gare, s'il vous plaît ?",
    "北京今天下雨了。", "🌧️ Rain again... bring an umbrella!!!", "", "ok", "A",
    "Quantum entanglement links particles across great distances.",
    "He plays the cello; she plays the violin — together they rehearse.",
    "naïve Ångström coöperation façade résumé", "  leading and trailing whitespace  \n\t",
    "The quick brown fox " * 40, "[MASK] tokens inside [SEP] a sentence",
    "Tokenizers split unbelievably long words into wordpieces.", "12345 67.89 $1,000,000 50% off",
    "Dogs chase cats.", "Cats are chased by dogs.", "The weather is lovely today.",
]


@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    folder = minilm_folder(tmp_path_factory)
    return folder, load_bert(folder)[0]


def test_minilm_embeddings_equal_sentence_transformers(minilm):
    st = pytest.importorskip("sentence_transformers", reason="install sentence-transformers to compare")
    folder, model = minilm
    theirs = st.SentenceTransformer(str(folder), device="cpu").encode(SENTENCES, batch_size=8)
    ours = model.encode(SENTENCES, batch_size=8)
    assert ours.shape == theirs.shape == (len(SENTENCES), 384) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-6)


def test_minilm_hidden_states_equal_transformers(minilm):
    """float32 agrees to rounding (which grows to ~1e-4 in the layers' large outlier features);
    float64 shows the computations are the same."""
    torch = pytest.importorskip("torch", reason="install torch to compare with transformers")
    transformers = pytest.importorskip("transformers", reason="install transformers to compare")
    folder, model = minilm
    reference_model = transformers.BertModel.from_pretrained(str(folder), attn_implementation="eager").eval()
    ids, mask, types = batch(load_bert(folder)[1], SENTENCES[:6], SENTENCES[6:12])
    for dtype, atol in (("float32", 3e-4), ("float64", 1e-10)):
        if dtype == "float64":
            model, reference_model = load_bert(folder)[0].double(), reference_model.double()
        with torch.no_grad():
            theirs = reference_model(torch.tensor(ids), torch.tensor(mask), torch.tensor(types),
                                     output_hidden_states=True, output_attentions=True)
        ours = model(ids, mask, types, output_hidden_states=True, output_attentions=True)
        assert ours.last_hidden_state.dtype == dtype
        for layer in range(7):
            np.testing.assert_allclose(ours.hidden_states[layer].data, theirs.hidden_states[layer].numpy(),
                                       atol=atol, rtol=0, err_msg=f"{dtype} layer {layer}")
        np.testing.assert_allclose(ours.attentions[2].data, theirs.attentions[2].numpy(), atol=atol / 10, rtol=0)


def test_the_device_path_keeps_device_arrays_and_equals_the_cpu(tiny, fake_gpu):
    """On the NumPy stand-in for CuPy (tests/fake_gpu.py): states stay device arrays, NumPy ids are
    moved to the device, and encode gives the CPU's embeddings back as a NumPy array."""
    from fake_gpu import FakeCupyArray
    model, tokenizer = load_bert(tiny)
    on_cpu = model.encode(TINY_TEXTS)
    ids, mask, types = batch(tokenizer, TINY_TEXTS[:3])
    cpu_states = model(ids, mask, types).last_hidden_state.data
    for p in model.parameters():
        p.data = fake_gpu(p.data)
    out = model(ids, mask, types, output_attentions=True)
    assert isinstance(out.last_hidden_state.data, FakeCupyArray) and isinstance(out.attentions[0].data, FakeCupyArray)
    np.testing.assert_allclose(np.asarray(out.last_hidden_state.data), cpu_states, rtol=1e-5, atol=1e-6)
    on_device = model.encode(TINY_TEXTS)
    assert type(on_device) is np.ndarray
    np.testing.assert_allclose(on_device, on_cpu, rtol=1e-5, atol=1e-6)


def test_dropout_acts_in_train_mode_only(tmp_path):
    """Hugging Face's dropout (hidden and attention probabilities, from config.json) in train mode;
    evaluation and encode() are deterministic."""
    model, tokenizer = load_bert(tiny_bert_folder(tmp_path / "tiny"))
    ids = np.array([tokenizer.encode("the cat sat").ids])
    model.eval()
    first = model(ids).last_hidden_state.numpy()
    np.testing.assert_array_equal(first, model(ids).last_hidden_state.numpy())
    model.train()
    assert model.config.hidden_dropout_prob > 0
    assert not np.allclose(model(ids).last_hidden_state.numpy(), first)
