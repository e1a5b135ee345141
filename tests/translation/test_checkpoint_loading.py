"""Loading checkpoints and saved files as translate and resume do: float16/float64 weights are cast
to the model's float32, crafted structures are one CheckpointError naming file and key, and each
stored array is read once however often the file refers to it (translating reads no optimizer)."""
from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest

import minitf
from minitf.nn import Seq2SeqTransformer
from minitf.serialization import CheckpointError
from minitf.translation import Trainer
from minitf.translation.checkpoint import FORMAT, VERSION, load_checkpoint, save_checkpoint
from minitf.translation.translator import Translator
from legacy_checkpoints import save_v1
from tiny_runs import TINY_MODEL_CONFIG, TINY_TOKENIZER, quiet, tiny_config

META = {"model_config": TINY_MODEL_CONFIG.to_dict(), "tokenizer": TINY_TOKENIZER.to_dict()}


@pytest.fixture(scope="module")
def model():
    return Seq2SeqTransformer(TINY_MODEL_CONFIG)


def weights(model, dtype):
    return {name: array.astype(dtype) for name, array in model.state_dict(remove_duplicate=True).items()}


def assert_loaded(translator, model):
    for name, value in translator.model.state_dict().items():
        assert value.dtype == np.float32, name
        np.testing.assert_allclose(value, model.state_dict()[name], rtol=1e-3, atol=1e-3, err_msg=name)


@pytest.mark.parametrize("dtype", [np.float64, np.float16])
def test_translate_casts_float16_and_float64_weights_to_the_models_float32(model, tmp_path, dtype):
    path = save_checkpoint(tmp_path / "w.safetensors", weights(model, dtype), META)
    translator = Translator.from_checkpoint(str(path))
    assert_loaded(translator, model)
    if dtype == np.float64:  # exactly the float32 model's weights (float16 rounds them)
        assert translator.translate(["one two"]) == Translator(model, TINY_TOKENIZER).translate(["one two"])


def test_translate_casts_a_version_1_npz_holding_one_float64_parameter(model, tmp_path):
    state = weights(model, np.float32)
    state["encoder_norm.weight"] = state["encoder_norm.weight"].astype(np.float64)
    translator = Translator.from_checkpoint(str(save_v1(tmp_path / "w.npz", state, META)))
    assert_loaded(translator, model)


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """(model state, meta, optimizer state) of a tiny trainer after two steps."""
    trainer = Trainer(tiny_config(tmp_path_factory.mktemp("run"), max_steps=2), log=quiet)
    for indices in trainer.batcher.plan(0)[:2]:
        trainer.train_step(trainer.batcher.batch(indices))
        trainer.progress.step += 1
    return load_checkpoint(trainer.save("last"))


def test_resume_casts_float64_weights_and_optimizer_state(real, tmp_path):
    model_state, meta, optimizer = real
    as64 = {"state": {i: {k: v.astype(np.float64) if isinstance(v, np.ndarray) else v for k, v in s.items()}
                      for i, s in optimizer["state"].items()}, "param_groups": optimizer["param_groups"]}
    meta = {k: v for k, v in meta.items() if k not in ("format", "version")}
    path = save_checkpoint(tmp_path / "last.safetensors", {n: a.astype(np.float64) for n, a in model_state.items()},
                           meta, as64)
    trainer = Trainer.from_checkpoint(str(path), log=quiet)
    for name, value in trainer.model.state_dict(remove_duplicate=True).items():
        assert value.dtype == np.float32 and np.array_equal(value, model_state[name]), name
    moments = [v for s in trainer.optimizer.state.values() for v in s.values() if hasattr(v, "dtype")]
    assert moments and all(v.dtype == np.float32 for v in moments)


def test_an_integer_tensor_that_requires_grad_is_a_checkpoint_error_naming_file_and_key(tmp_path):
    path = minitf.save({"opt": {"m": minitf.Tensor(np.zeros(3), requires_grad=True)}}, tmp_path / "x.safetensors")
    raw = bytearray(path.read_bytes())
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    header["opt.m"]["dtype"] = "I64"  # same size: the bytes still fit
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + bytes(raw[8 + n:]))
    with pytest.raises(CheckpointError, match=r"\['opt'\]\['m'\] is a tensor of dtype int64 that requires grad") as err:
        minitf.load(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("save", [lambda path, state: save_checkpoint(path.with_suffix(".safetensors"), state, META),
                                  lambda path, state: save_v1(path.with_suffix(".npz"), state, META)],
                         ids=["safetensors", "npz"])
def test_tied_embeddings_stored_separately_with_different_values_are_refused_naming_both(model, tmp_path, save):
    state = weights(model, np.float32)
    state["src_embed.weight"] = state["tgt_embed.weight"] + 1.0
    path = save(tmp_path / "w", state)
    for load in (load_checkpoint, Translator.from_checkpoint):
        with pytest.raises(CheckpointError, match="'tgt_embed.weight' and 'src_embed.weight' are one tied") as err:
            load(str(path))
        assert str(path) in str(err.value)
    state["src_embed.weight"] = state["tgt_embed.weight"].copy()  # equal values: one parameter, fine
    assert_loaded(Translator.from_checkpoint(str(save(tmp_path / "same", state))), model)


def peak_while(function):
    tracemalloc.start()
    try:
        result = function()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_an_array_referred_to_many_times_is_read_once(tmp_path):
    array = np.arange(2**17, dtype=np.float64)  # 1 MiB
    path = minitf.save({"a": array, "again": [array] * 300, "t": minitf.Tensor(array)}, tmp_path / "x.safetensors")
    assert path.stat().st_size < 2**20 + 2**16
    loaded, peak = peak_while(lambda: minitf.load(path))
    assert all(x is loaded["a"] for x in loaded["again"]) and loaded["t"].data is loaded["a"]
    np.testing.assert_array_equal(loaded["a"], array)
    assert peak < 3 * 2**20, f"peak {peak / 2**20:.0f} MiB for a 1 MiB file"


def test_translating_does_not_read_the_optimizer_state(model, tmp_path):
    state = weights(model, np.float32)
    path = save_checkpoint(tmp_path / "w.safetensors", state, META, {"m": [state["tgt_embed.weight"]] * 3000})
    copies = 3000 * state["tgt_embed.weight"].nbytes  # 12 MiB, were each reference read again
    (_, _, optimizer), peak = peak_while(lambda: load_checkpoint(path, with_optimizer=False))
    assert optimizer is None and peak < copies / 4, f"peak {peak / 2**20:.1f} MiB"
    _, peak = peak_while(lambda: Translator.from_checkpoint(str(path)))
    assert peak < copies / 4, f"peak {peak / 2**20:.1f} MiB"
    (loaded, _, optimizer), peak = peak_while(lambda: load_checkpoint(path))  # 3000 entries, one array
    assert all(m is loaded["tgt_embed.weight"] for m in optimizer["m"]) and peak < copies / 4


def test_a_weight_saved_as_a_tensor_loads_as_its_array(model, tmp_path):
    state = weights(model, np.float32)
    state["tgt_embed.weight"] = minitf.Tensor(state["tgt_embed.weight"], requires_grad=True)
    path = minitf.save({"format": FORMAT, "version": VERSION, **META, "model": state}, tmp_path / "t.safetensors")
    loaded = load_checkpoint(path)[0]["tgt_embed.weight"]
    assert isinstance(loaded, np.ndarray) and np.array_equal(loaded, state["tgt_embed.weight"].numpy())
    assert_loaded(Translator.from_checkpoint(str(path)), model)


# The state-dict keys of TINY_MODEL_CONFIG's model as minitf wrote them while the model was nn.Transformer
# (before 2026-12-07, when it became nn.Seq2SeqTransformer and PyTorch's module took the name).
_ATTENTION = ("in_proj_weight", "in_proj_bias", "out_proj_weight", "out_proj_bias")
_FF_NORMS = ("ff.linear1.weight", "ff.linear1.bias", "ff.linear2.weight", "ff.linear2.bias",
             "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias")
KEYS_BEFORE_THE_RENAME = (
    ["tgt_embed.weight"] + [f"encoder_layers.0.self_attn.{k}" for k in _ATTENTION]
    + [f"encoder_layers.0.{k}" for k in _FF_NORMS]
    + [f"decoder_layers.0.{a}.{k}" for a in ("self_attn", "cross_attn") for k in _ATTENTION]
    + [f"decoder_layers.0.{k}" for k in _FF_NORMS + ("norm3.weight", "norm3.bias")]
    + ["encoder_norm.weight", "encoder_norm.bias", "decoder_norm.weight", "decoder_norm.bias"])


@pytest.mark.parametrize("version", [1, 2])
def test_a_checkpoint_written_before_the_rename_to_seq2seq_transformer_loads(model, tmp_path, version):
    state = weights(model, np.float32)
    assert list(state) == KEYS_BEFORE_THE_RENAME
    path = save_v1(tmp_path / "old.npz", state, META) if version == 1 else \
        save_checkpoint(tmp_path / "old.safetensors", state, META)
    translator = Translator.from_checkpoint(str(path))
    assert type(translator.model) is Seq2SeqTransformer
    assert_loaded(translator, model)
