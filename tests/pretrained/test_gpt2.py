"""GPT-2 without PyTorch: a NumPy reference forward, the KV cache, padding, generation, loading a folder
written by minitf itself, and the errors of bad folders."""
import json
import math

import numpy as np
import pytest

import minitf
from minitf.pretrained import GPT2Config, GPT2LMHeadModel, load_gpt2, positions_from_mask
from minitf.serialization import CheckpointError
from hf_files import hf_file

TINY = dict(vocab_size=259, n_positions=24, n_embd=16, n_layer=2, n_head=4)


def tiny_model(seed=0, dtype=np.float64, **changes):
    minitf.manual_seed(seed)
    model = GPT2LMHeadModel(GPT2Config(**{**TINY, **changes})).to(dtype).eval()
    rng = np.random.default_rng(seed)
    for name, p in model.named_parameters():  # biases and norms away from 0 and 1, so a mix-up shows
        if name.endswith("bias") or name.endswith("ln_f.weight"):
            p.data = (p.data + rng.normal(0, 0.1, p.shape)).astype(dtype)
    return model


def reference_logits(model, ids):
    """The GPT-2 forward in plain NumPy float64, read off the state dict (HF's names and layouts)."""
    c, s = model.config, {k: v.astype(np.float64) for k, v in model.state_dict().items()}
    t, e, heads = ids.shape[1], c.n_embd, c.n_head

    def norm(x, name):
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + c.layer_norm_epsilon) * s[name + ".weight"] + s[name + ".bias"]

    def conv1d(x, name):  # (in, out) weights
        return x @ s[name + ".weight"] + s[name + ".bias"]

    x = s["transformer.wte.weight"][ids] + s["transformer.wpe.weight"][np.arange(t)]
    for i in range(c.n_layer):
        p = f"transformer.h.{i}."
        q, k, v = np.split(conv1d(norm(x, p + "ln_1"), p + "attn.c_attn"), 3, axis=-1)
        q, k, v = (a.reshape(len(ids), t, heads, e // heads).transpose(0, 2, 1, 3) for a in (q, k, v))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(e // heads)
        scores = np.where(np.tril(np.ones((t, t), bool)), scores, -np.inf)
        w = np.exp(scores - scores.max(-1, keepdims=True))
        att = (w / w.sum(-1, keepdims=True)) @ v
        x = x + conv1d(att.transpose(0, 2, 1, 3).reshape(len(ids), t, e), p + "attn.c_proj")
        h = conv1d(norm(x, p + "ln_2"), p + "mlp.c_fc")
        h = 0.5 * h * (1 + np.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h ** 3)))
        x = x + conv1d(h, p + "mlp.c_proj")
    return norm(x, "transformer.ln_f") @ s["lm_head.weight"].T


def test_the_forward_equals_a_numpy_reference_and_the_names_and_layouts_are_hfs():
    model = tiny_model()
    ids = np.random.default_rng(1).integers(0, 259, (2, 9))
    np.testing.assert_allclose(model(ids).data, reference_logits(model, ids), rtol=1e-10, atol=1e-12)
    state = model.state_dict()
    assert state["transformer.h.0.attn.c_attn.weight"].shape == (16, 48)  # Conv1D: (in, out)
    assert state["transformer.h.1.mlp.c_proj.weight"].shape == (64, 16)
    assert model.lm_head.weight is model.transformer.wte.weight  # tied
    assert "lm_head.weight" not in model.state_dict(remove_duplicate=True)


def test_the_backward_matches_central_differences_through_the_whole_model():
    model = tiny_model(n_layer=1, n_embd=8, n_head=2)
    ids = np.array([[3, 70, 200, 5, 70]])
    rng = np.random.default_rng(2)
    cotangent = rng.normal(size=(1, 5, 259))

    def loss():
        return (model(ids) * cotangent).sum()

    loss().backward()
    for name, p in model.named_parameters():  # each parameter in one random direction u
        u = rng.normal(size=p.shape)
        expected = float((p.grad * u).sum())
        p.data += 1e-6 * u
        up = float(loss().data)
        p.data -= 2e-6 * u
        down = float(loss().data)
        p.data += 1e-6 * u
        assert (up - down) / 2e-6 == pytest.approx(expected, rel=1e-3, abs=1e-5), name


def test_cached_steps_give_the_uncached_forwards_logits():
    model = tiny_model()
    ids = np.random.default_rng(3).integers(0, 259, (2, 10))
    full = model(ids).data
    cache = model.new_cache()
    pieces = [model(ids[:, :4], cache=cache).data]  # a prompt of 4, then 1, then 2, 3 at a time
    for lo, hi in ((4, 5), (5, 7), (7, 10)):
        pieces.append(model(ids[:, lo:hi], cache=cache).data)
    assert cache.length == 10
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), full, rtol=1e-10, atol=1e-12)


def test_padded_rows_give_the_logits_of_each_row_alone():
    model = tiny_model()
    rng = np.random.default_rng(4)
    a, b = rng.integers(0, 259, 7), rng.integers(0, 259, 4)
    alone_a, alone_b = model(a[None]).data[0], model(b[None]).data[0]
    right = np.stack([a, np.concatenate([b, [0, 0, 0]])])
    out = model(right, attention_mask=(right * 0 + [[1] * 7, [1] * 4 + [0] * 3])).data
    np.testing.assert_allclose(out[0], alone_a, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out[1, :4], alone_b, rtol=1e-10, atol=1e-12)
    left_mask = np.array([[1] * 7, [0] * 3 + [1] * 4])
    left = np.stack([a, np.concatenate([[0, 0, 0], b])])
    positions = positions_from_mask(left_mask)
    assert positions.tolist() == [[0, 1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 1, 2, 3]]
    out = model(left, attention_mask=left_mask, position_ids=positions).data
    np.testing.assert_allclose(out[1, 3:], alone_b, rtol=1e-10, atol=1e-12)
    assert np.isfinite(out).all()  # padding queries that see no key give zeros, never NaN


def naive_greedy(model, ids, n):
    for _ in range(n):
        ids = np.concatenate([ids, model(ids).data[:, -1].argmax(-1)[:, None]], axis=1)
    return ids


def test_greedy_generation_equals_argmax_of_uncached_forwards_and_stops_at_eos():
    model = tiny_model()
    ids = np.random.default_rng(5).integers(0, 259, (3, 5))
    expected = naive_greedy(model, ids, 8)
    np.testing.assert_array_equal(model.generate(ids, 8), expected)
    eos = int(expected[0, 7])  # row 0 makes it at step 3: then pads with it
    out = model.generate(ids, 8, eos_token_id=eos, pad_token_id=1)
    for row, full in zip(out, expected):
        new = full[5:]
        stop = list(new).index(eos) + 1 if eos in new else len(new)
        assert list(row[5:5 + stop]) == list(new[:stop])
        assert set(row[5 + stop:]) <= {1}
    assert model.generate(ids, 0).tolist() == ids.tolist()


def test_left_padded_generation_continues_each_row_as_it_would_alone():
    model = tiny_model()
    short = np.array([[7, 8, 9]])
    padded = np.array([[5, 6, 7, 8, 9], [0, 0, 7, 8, 9]])
    out = model.generate(padded, 6, attention_mask=[[1] * 5, [0, 0, 1, 1, 1]])
    np.testing.assert_array_equal(out[1, 2:], model.generate(short, 6)[0])
    with pytest.raises(ValueError, match="left-padded"):
        model.generate(padded, 2, attention_mask=[[1] * 5, [1, 1, 1, 0, 0]])


def test_sampling_is_reproducible_and_respects_top_k_and_top_p():
    model = tiny_model()
    ids = np.random.default_rng(6).integers(0, 259, (2, 4))
    a = model.generate(ids, 6, do_sample=True, seed=3)
    np.testing.assert_array_equal(a, model.generate(ids, 6, do_sample=True, generator=np.random.default_rng(3)))
    assert not np.array_equal(a, model.generate(ids, 6, do_sample=True, seed=4))
    greedy = model.generate(ids, 6)
    np.testing.assert_array_equal(model.generate(ids, 6, do_sample=True, top_k=1, seed=9), greedy)
    np.testing.assert_array_equal(model.generate(ids, 6, do_sample=True, top_p=1e-9, seed=9), greedy)
    np.testing.assert_array_equal(model.generate(ids, 6, do_sample=True, temperature=1e-6, seed=9), greedy)
    out = model.generate(ids, 1, do_sample=True, top_k=3, seed=0)
    top3 = np.argsort(-model(ids).data[:, -1], axis=-1)[:, :3]
    assert all(out[r, -1] in top3[r] for r in range(2))


@pytest.mark.parametrize("options, message", [
    (dict(max_new_tokens=-1), "max_new_tokens"), (dict(temperature=0.0), "temperature"),
    (dict(top_k=0), "top_k"), (dict(top_p=1.5), "top_p"), (dict(eos_token_id=-2), "eos_token_id"),
    (dict(max_new_tokens=30), "n_positions")])
def test_generate_refuses_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        tiny_model().generate(np.array([[1, 2]]), **{"max_new_tokens": 2, **options})


def test_the_forward_refuses_bad_inputs():
    model = tiny_model()
    with pytest.raises(ValueError, match="shape \\(batch, length\\)"):
        model(np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model(np.array([[1, 259]]))
    with pytest.raises(ValueError, match="n_positions"):
        model(np.zeros((1, 25), dtype=np.int64))
    with pytest.raises(ValueError, match="token id -3 is outside the vocabulary of"):
        model(np.array([[1, -3, 300]]))  # the negative one is named, though 300 is out too
    with pytest.raises(ValueError, match=r"position -1 is outside the model's n_positions \d+$"):
        model(np.array([[1, 2]]), position_ids=np.array([[0, -1]]))
    with pytest.raises(ValueError, match="attention_mask must have shape \\(1, 3\\)"):
        model(np.array([[1, 2, 3]]), attention_mask=[[1, 1]])
    with pytest.raises(ValueError, match="1 \\(real token\\) and 0"):
        model(np.array([[1, 2, 3]]), attention_mask=[[1, 2, 1]])


@pytest.mark.parametrize("change, message", [
    (dict(n_layer=0), "n_layer must be a positive integer"), (dict(n_embd="16"), "n_embd must be a positive"),
    (dict(n_inner=True), "n_inner must be a positive"), (dict(layer_norm_epsilon=0), "layer_norm_epsilon"),
    (dict(initializer_range=-1.0), "initializer_range"), (dict(eos_token_id=-1), "eos_token_id"),
    (dict(tie_word_embeddings="yes"), "tie_word_embeddings must be true or false")])
def test_the_config_refuses_bad_values(change, message):
    with pytest.raises(ValueError, match=message):
        GPT2Config(**{**TINY, **change})


def test_the_config_round_trips_hf_keys_and_ignores_the_ones_that_change_nothing():
    config = GPT2Config(**TINY, n_inner=40, activation_function="gelu_pytorch_tanh", eos_token_id=3)
    data = dict(config.to_dict(), resid_pdrop=0.1, architectures=["GPT2LMHeadModel"], n_ctx=24)
    assert data["model_type"] == "gpt2" and GPT2Config.from_dict(data) == config


# ---- loading a folder -----------------------------------------------------------------------

def write_folder(tmp_path, model, config=None, state=None):
    """config.json, model.safetensors (written by minitf) and a tokenizer.json in tmp_path."""
    (tmp_path / "config.json").write_text(json.dumps(config or model.config.to_dict()))
    minitf.save(state if state is not None else model.state_dict(remove_duplicate=True),
                tmp_path / "model.safetensors")
    hf_file(tmp_path)
    return tmp_path


def test_a_folder_written_by_minitf_loads_back_with_the_same_logits(tmp_path):
    model = tiny_model(dtype=np.float32)
    loaded, tokenizer = load_gpt2(write_folder(tmp_path, model))
    ids = np.random.default_rng(7).integers(0, 259, (2, 6))
    assert loaded.config == model.config and loaded.transformer.wte.weight.dtype == np.float32
    np.testing.assert_array_equal(loaded(ids).data, model(ids).data)
    assert loaded.lm_head.weight is loaded.transformer.wte.weight and not loaded.training
    assert tokenizer.encode("ab") == [258]
    double, _ = load_gpt2(tmp_path, dtype=np.float64)
    assert double(ids).dtype == np.float64
    np.testing.assert_allclose(double(ids).data, model.to(np.float64)(ids).data, rtol=1e-12, atol=1e-12)


def test_a_float64_file_loads_exactly_in_float64(tmp_path):
    model = tiny_model(dtype=np.float64)
    loaded, _ = load_gpt2(write_folder(tmp_path, model), dtype=np.float64)
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[name], array, err_msg=name)
    ids = np.array([[1, 2, 3]])
    np.testing.assert_array_equal(loaded(ids).data, model(ids).data)


def test_untied_heads_and_hf_keys_without_the_transformer_prefix_load(tmp_path):
    model = tiny_model(dtype=np.float32, tie_word_embeddings=False, activation_function="gelu")
    assert model.lm_head.weight is not model.transformer.wte.weight
    state = {k.removeprefix("transformer."): v for k, v in model.state_dict().items()}
    state["h.0.attn.bias"] = np.tril(np.ones((1, 1, 24, 24), np.float32))  # old checkpoints' mask buffer
    loaded, _ = load_gpt2(write_folder(tmp_path, model, state=state))
    ids = np.array([[4, 5, 6]])
    np.testing.assert_array_equal(loaded(ids).data, model(ids).data)


def test_a_tied_head_stored_with_other_values_is_refused(tmp_path):
    model = tiny_model(dtype=np.float32)
    state = dict(model.state_dict(remove_duplicate=True), **{"lm_head.weight": np.zeros((259, 16), np.float32)})
    with pytest.raises(CheckpointError, match="lm_head.weight differs"):
        load_gpt2(write_folder(tmp_path, model, state=state))


@pytest.mark.parametrize("change, error, message", [
    (lambda c, s: c.pop("n_head"), ValueError, "missing key\\(s\\) n_head"),
    (lambda c, s: c.update(activation_function="swish"), ValueError, "activation_function 'swish'"),
    (lambda c, s: c.update(model_type="llama"), ValueError, "model_type 'llama'"),
    (lambda c, s: c.update(add_cross_attention=True), ValueError, "add_cross_attention"),
    (lambda c, s: c.update(n_embd=18), ValueError, "not divisible by n_head"),
    (lambda c, s: s.pop("transformer.h.1.mlp.c_fc.bias"), CheckpointError,
     "missing key\\(s\\) transformer.h.1.mlp.c_fc.bias"),
    (lambda c, s: s.update({"transformer.h.0.attn.c_attn.weight": np.zeros((48, 16), np.float32)}),
     CheckpointError, "'transformer.h.0.attn.c_attn.weight' has shape \\(48, 16\\), but config.json gives \\(16, 48\\)"),
    (lambda c, s: s.update({"score.weight": np.zeros(3, np.float32)}), CheckpointError, "unexpected key\\(s\\) score.weight"),
    (lambda c, s: s.update({"transformer.ln_f.bias": np.zeros(16, np.int32)}), CheckpointError, "floating-point"),
])
def test_bad_folders_name_what_is_wrong(tmp_path, change, error, message):
    model = tiny_model(dtype=np.float32)
    config, state = model.config.to_dict(), model.state_dict(remove_duplicate=True)
    change(config, state)
    with pytest.raises(error, match=message):
        load_gpt2(write_folder(tmp_path, model, config=config, state=state))


@pytest.mark.parametrize("missing, message", [
    ("config.json", "config.json not found"), ("model.safetensors", "model.safetensors not found"),
    ("tokenizer.json", "no tokenizer")])
def test_missing_files_are_named(tmp_path, missing, message):
    write_folder(tmp_path, tiny_model(dtype=np.float32))
    (tmp_path / missing).unlink()
    with pytest.raises(FileNotFoundError, match=message):
        load_gpt2(tmp_path)


def test_a_pickle_is_never_read_and_folders_must_be_folders(tmp_path):
    write_folder(tmp_path, tiny_model(dtype=np.float32))
    (tmp_path / "model.safetensors").rename(tmp_path / "pytorch_model.bin")
    with pytest.raises(FileNotFoundError, match="pickle and is not read"):
        load_gpt2(tmp_path)
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        load_gpt2(tmp_path / "nowhere")
    with pytest.raises(NotADirectoryError):
        load_gpt2(tmp_path / "config.json")
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="expected a JSON object"):
        load_gpt2(tmp_path)


def test_the_cupy_path_keeps_device_arrays_and_equals_the_cpu(fake_gpu):
    """On the NumPy stand-in for CuPy (tests/fake_gpu.py): padded logits, cached steps and greedy
    generation on device arrays equal the CPU's."""
    from fake_gpu import FakeCupyArray

    model = tiny_model()
    ids, mask = np.array([[5, 6, 7, 8], [0, 0, 7, 8]]), np.array([[1, 1, 1, 1], [0, 0, 1, 1]])
    on_cpu = model(ids, attention_mask=mask).data, model.generate(ids, 5, attention_mask=mask)
    for p in model.parameters():
        p.data = fake_gpu(p.data)
    logits = model(ids, attention_mask=mask)
    assert isinstance(logits.data, FakeCupyArray)
    np.testing.assert_allclose(np.asarray(logits.data), on_cpu[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(model.generate(ids, 5, attention_mask=mask), on_cpu[1])
