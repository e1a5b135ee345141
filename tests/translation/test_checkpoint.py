"""Checkpoint files: round trip, no pickle, atomic writes, old .npz files, and a clear CheckpointError
for bad or hostile files (checked and capped before anything is allocated)."""
from __future__ import annotations

import io
import json
import pickle
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest


import minitf
from minitf.nn import Parameter, Seq2SeqTransformer, TransformerConfig
from minitf.optim import Adam, AdamW
from minitf.translation.checkpoint import FORMAT, VERSION, CheckpointError, load_checkpoint, save_checkpoint
from minitf.translation.checkpoint.npz import adam_state_from_legacy, legacy_adam_state
from optim_steps import make_params, run
from legacy_checkpoints import save_v1

CONFIG = TransformerConfig(src_vocab_size=11, tgt_vocab_size=11, d_model=4, n_heads=2, n_encoder_layers=1,
                           n_decoder_layers=1, d_ff=6, max_len=8, dropout=0.0)
# each parameter once, as checkpoints hold them
MODEL_STATE = Seq2SeqTransformer(CONFIG).state_dict(remove_duplicate=True)
FIRST = "tgt_embed.weight"  # (11, 4)
OPTIMIZER_STATE = {"lr": 0.001, "betas": [0.9, 0.98], "eps": 1e-9, "weight_decay": 0.0, "t": 7, "m": [np.ones_like(a) for a in MODEL_STATE.values()][:-1] + [None],
                   "v": [np.full_like(a, 2.0) for a in MODEL_STATE.values()][:-1] + [None]}
META = {"model_config": CONFIG.to_dict(), "progress": {"step": 7, "epoch": 0, "batch": 7}}


@pytest.fixture
def checkpoint(tmp_path):
    return save_checkpoint(tmp_path / "run" / "last.safetensors", MODEL_STATE, META, OPTIMIZER_STATE)


def test_round_trip_keeps_weights_metadata_and_optimizer_state(checkpoint):
    model_state, meta, optimizer_state = load_checkpoint(checkpoint)
    assert list(model_state) == list(MODEL_STATE)
    for name, value in MODEL_STATE.items():
        assert model_state[name].dtype == value.dtype and np.array_equal(model_state[name], value)
    assert meta["format"] == FORMAT and meta["version"] == VERSION
    assert meta["model_config"] == META["model_config"] and meta["progress"] == META["progress"]
    assert optimizer_state["lr"] == 0.001 and optimizer_state["t"] == 7
    for key in ("m", "v"):
        assert optimizer_state[key][-1] is None
        assert all(np.array_equal(a, b) for a, b in zip(optimizer_state[key][:-1], OPTIMIZER_STATE[key][:-1]))


def test_file_is_safetensors_with_the_weights_under_their_names(checkpoint):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    arrays = safetensors_numpy.load_file(str(checkpoint))
    assert {n for n in arrays if n.startswith("model.")} == {"model." + n for n in MODEL_STATE}
    assert all(a.dtype != object for a in arrays.values())


def test_save_replaces_atomically_and_a_stale_temporary_file_is_ignored(checkpoint):
    stale = checkpoint.with_name(checkpoint.name + ".tmp")
    stale.write_bytes(b"half a checkpoint, left by a kill")
    assert list(load_checkpoint(checkpoint)[0]) == list(MODEL_STATE)  # the .tmp is never read
    save_checkpoint(checkpoint, MODEL_STATE, META)
    # each write has a temporary file of its own (another writer's may be in use): the stale one stays
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == ["last.safetensors", "last.safetensors.tmp"]
    assert stale.read_bytes() == b"half a checkpoint, left by a kill"
    assert load_checkpoint(checkpoint)[2] is None


# ---- version 1 (.npz) checkpoints -----------------------------------------------------------


@pytest.fixture
def old_checkpoint(tmp_path):
    return save_v1(tmp_path / "last.npz", MODEL_STATE, META, OPTIMIZER_STATE)


def test_version_1_npz_checkpoints_still_load(old_checkpoint):
    model_state, meta, optimizer_state = load_checkpoint(old_checkpoint)
    assert all(np.array_equal(model_state[n], a) for n, a in MODEL_STATE.items())
    # in torch.optim's layout, as version 2 holds it (version 1 held the first Adam's lists of moments)
    assert optimizer_state["param_groups"] == [{"lr": 0.001, "betas": (0.9, 0.98), "eps": 1e-9, "weight_decay": 0.0,
                                                "params": list(range(len(MODEL_STATE)))}]
    last = len(MODEL_STATE) - 1
    assert sorted(optimizer_state["state"]) == list(range(last))  # the last parameter had no moments yet
    assert all(entry["step"] == 7 for entry in optimizer_state["state"].values())
    assert np.array_equal(optimizer_state["state"][0]["exp_avg_sq"], OPTIMIZER_STATE["v"][0])
    assert np.array_equal(optimizer_state["state"][0]["exp_avg"], OPTIMIZER_STATE["m"][0])


# the optimizer state of version 1: the layout of minitf's first Adam

def old_layout_state(opt: Adam) -> dict:
    """The layout minitf's Adam wrote before parameter groups (version 1 checkpoints hold it)."""
    group = opt.param_groups[0]
    return {"t": 4, "lr": group["lr"], "betas": list(group["betas"]), "eps": group["eps"],
            "weight_decay": group["weight_decay"], "m": [a.copy() for a in opt.m], "v": [a.copy() for a in opt.v]}


@pytest.mark.parametrize("cls", [Adam, AdamW])
def test_old_layout_state_loads_and_resumes_exactly(cls):
    settings = dict(lr=0.03, betas=(0.85, 0.99), eps=1e-7, weight_decay=0.05)
    straight = make_params()
    run(cls(straight, **settings), straight, 10)
    first = make_params()
    opt = cls(first, **settings)
    run(opt, first, 4)
    old = old_layout_state(opt)
    resumed = [Parameter(p.numpy().copy()) for p in first]
    opt2 = cls(resumed, lr=1.0)
    opt2.load_state_dict(adam_state_from_legacy(old))
    assert opt2.param_groups[0]["betas"] == (0.85, 0.99) and opt2.param_groups[0]["lr"] == 0.03
    run(opt2, resumed, 6, first=5)
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(ValueError, match="holds 3 parameters, this optimizer's has 2"):
        cls(make_params()[:2]).load_state_dict(adam_state_from_legacy(old))


def test_legacy_adam_state_round_trips_per_parameter_steps():
    params = make_params()
    opt = AdamW(params, lr=0.02)
    params[0].grad = np.ones((3, 4))
    opt.step()  # parameter 0 is one step ahead, parameter 1 and 2 start later
    run(opt, params, 2, first=2)
    old = legacy_adam_state(opt.state_dict())
    assert old["t"] == 3 and old["steps"] == [3, 2, 2] and old["betas"] == [0.9, 0.999]
    again = AdamW(make_params())
    again.load_state_dict(adam_state_from_legacy(old))
    new, expected = again.state_dict(), opt.state_dict()
    assert new["param_groups"] == expected["param_groups"]
    for i, entry in expected["state"].items():
        assert new["state"][i]["step"] == entry["step"]
        np.testing.assert_array_equal(new["state"][i]["exp_avg_sq"], entry["exp_avg_sq"])
    unstepped = legacy_adam_state(AdamW(make_params()).state_dict())
    assert unstepped["m"] == [None] * 3 and unstepped["t"] == 0


def raw_arrays(path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def write_npz(path, arrays: dict[str, np.ndarray], meta: dict | None = None):
    if meta is not None:
        arrays = {**arrays, "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
    np.savez(path, **arrays)
    return path


def zip_bomb(path, gigabytes: float = 2.0, meta: dict | None = None):
    """A version 1 checkpoint whose embedding member is a real deflate stream that unpacks to
    `gigabytes` of zeros under an .npy header of that size, yet takes about 1/1000 of it on disk."""
    n = int(gigabytes * 2**30) >> 24 << 24  # whole 16 MiB chunks
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (n // 4,)})
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate, as zip stores it
    prefix = deflate.compress(header.getvalue()) + deflate.flush(zlib.Z_FULL_FLUSH)
    piece = deflate.compress(bytes(1 << 24)) + deflate.flush(zlib.Z_FULL_FLUSH)  # a reset stream repeats
    data = prefix + piece * (n >> 24) + deflate.flush()
    info = zipfile.ZipInfo(f"model/{FIRST}.npy")
    info.compress_type = zipfile.ZIP_DEFLATED
    info.file_size, info.compress_size, info.CRC = len(header.getvalue()) + n, len(data), 0
    with zipfile.ZipFile(path, "w", allowZip64=True) as archive:
        meta = json.dumps({"format": FORMAT, "version": 1, **META} if meta is None else meta).encode()
        archive.writestr("meta.npy", _npy(np.frombuffer(meta, np.uint8)))
        for name, value in MODEL_STATE.items():
            if name != FIRST:
                archive.writestr(f"model/{name}.npy", _npy(value))
        info.header_offset = archive.fp.tell()
        archive.fp.write(info.FileHeader(zip64=True) + data)
        archive.filelist.append(info)
        archive.NameToInfo[info.filename] = info
        archive.start_dir = archive.fp.tell()
    return path


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def test_a_zip_bomb_is_refused_from_its_declared_sizes_without_decompressing(tmp_path):
    path = zip_bomb(tmp_path / "bomb.npz")
    assert path.stat().st_size < 4 * 2**20
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo(f"model/{FIRST}.npy").file_size > 2**31  # as the directory declares
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match="zip bomb") as err:
            load_checkpoint(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(path) in str(err.value) and FIRST in str(err.value)
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.0f} MiB while refusing a zip bomb"


def test_safetensors_header_declaring_a_huge_array_is_refused_before_reading(checkpoint):
    raw = bytearray(checkpoint.read_bytes())
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    name = next(k for k in header if k != "__metadata__")
    header[name]["shape"] = [2**20, 2**20]
    text = json.dumps(header).encode()
    checkpoint.write_bytes(len(text).to_bytes(8, "little") + text + bytes(raw[8 + n:]))
    with pytest.raises(CheckpointError, match=f"array '{name}' of shape .* does not fit"):
        load_checkpoint(checkpoint)


# ---- errors: each a CheckpointError naming the file and the problem -------------------------

def missing_file(path):
    return path.with_name("nothing-here.safetensors")


def random_bytes(path):
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    return path


def truncated(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def data_cut_short(path):
    path.write_bytes(path.read_bytes()[:-8])
    return path


def empty_file(path):
    path.write_bytes(b"")
    return path


def a_pickle(path):
    path.write_bytes(pickle.dumps({"model": MODEL_STATE}))
    return path


def a_text_file(path):
    path.write_text("epoch 1: loss 3.2\nepoch 2: loss 2.9\n")
    return path


def foreign_safetensors(path):
    pytest.importorskip("safetensors.numpy").save_file({"w": np.zeros(3, np.float32)}, str(path))
    return path


def resave(path, **changes):
    """The checkpoint at `path` saved again with metadata entries replaced."""
    model, meta, optimizer = load_checkpoint(path)
    meta = {k: v for k, v in {**meta, **changes}.items() if k not in ("format", "version")}
    obj = {"format": FORMAT, "version": VERSION, **meta, "model": model, "optimizer": optimizer}
    obj.update({k: v for k, v in changes.items() if k in ("format", "version")})
    minitf.save(obj, path)
    return path


def model_config(**changes):
    return lambda path: resave(path, model_config={**CONFIG.to_dict(), **changes})


def other_format(path):
    return resave(path, format="something-else")


def other_version(path):
    return resave(path, version=VERSION + 1)


def config_is_a_string(path):
    return resave(path, model_config="d_model=4")


def progress_of_wrong_type(path):
    return resave(path, progress={"step": "7"})


def weights_of_another_shape(path):
    model, meta, _ = load_checkpoint(path)
    model[FIRST] = np.zeros((3, 3), np.float32)
    minitf.save({"format": FORMAT, "version": VERSION, **meta, "model": model}, path)
    return path


def integer_weights(path):
    model, meta, _ = load_checkpoint(path)
    model[FIRST] = model[FIRST].astype(np.int32)
    minitf.save({"format": FORMAT, "version": VERSION, **meta, "model": model}, path)
    return path


@pytest.mark.parametrize("damage, problem", [
    (missing_file, "does not exist"),
    (random_bytes, "not a minitf checkpoint: .* it is binary data of an unknown format"),
    (truncated, "corrupt or not a minitf checkpoint: a truncated or corrupt safetensors file"),
    (data_cut_short, "corrupt or not a minitf checkpoint: array .* does not fit"),
    (empty_file, "it is empty"),
    (a_pickle, "it is a pickle"),
    (a_text_file, "it is text"),
    (foreign_safetensors, "a safetensors file but not a minitf checkpoint"),
    (other_format, "format 'something-else', expected 'minitf-checkpoint'"),
    (other_version, f"version {VERSION + 1}"),
    (config_is_a_string, "model_config must be a JSON object .dict., got str 'd_model=4'"),
    (model_config(n_heads=0), "model_config.n_heads must be an integer in 1 .. 65536, got 0"),
    (model_config(d_ff=-5), "model_config.d_ff must be an integer in 1 .. 262144, got -5"),
    (model_config(d_model="4"), "model_config.d_model must be an integer, got str '4'"),
    (model_config(src_vocab_size=10**9, tgt_vocab_size=10**9), "src_vocab_size must be an integer in 1 .. 1048576"),
    (model_config(max_len=60000, d_model=8192), "exceeds the limit"),
    (model_config(n_heads=3), "n_heads 3 does not divide d_model 4"),
    (model_config(norm_first=1), "model_config.norm_first must be true or false, got int 1"),
    (model_config(tgt_vocab_size=12), "share_embeddings needs src_vocab_size 11 == tgt_vocab_size 12"),
    (model_config(colour="blue"), "unknown model_config.colour"),
    (progress_of_wrong_type, "progress.step must be an integer, got str '7'"),
    (lambda p: resave(p, train_config={"synthetic_sizes": [10**12, 5, 5]}),
     r"train_config.synthetic_sizes\[0\] must be an integer in 1 .. 1000000, got 1000000000000"),
    (lambda p: resave(p, train_config={"d_model": 4096}), "train_config.d_model 4096 differs from model_config.d_model 4"),
    (lambda p: resave(p, train_config=[1, 2]), "train_config must be a JSON object"),
    (weights_of_another_shape, f"parameter '{FIRST}' has shape \\(3, 3\\), model_config gives \\(11, 4\\)"),
    (integer_weights, f"parameter '{FIRST}' has dtype int32"),
])
def test_bad_checkpoint_raises_checkpoint_error_naming_file_and_problem(checkpoint, damage, problem):
    path = damage(checkpoint)
    with pytest.raises(CheckpointError, match=problem) as err:
        load_checkpoint(path)
    assert str(path) in str(err.value) and "allow_pickle" not in str(err.value)
    assert isinstance(err.value, ValueError)  # the CLI reports ValueErrors without a traceback


def npz_not_a_zip(path):
    path.write_bytes(b"PK\x03\x04 not really a zip file")
    return path


def npz_no_metadata(path):
    return write_npz(path, {"model/x": np.zeros(2)})


def npz_metadata_not_json(path):
    return write_npz(path, {"meta": np.frombuffer(b"\xff\xfe{", dtype=np.uint8)})


def npz_metadata_not_an_object(path):
    return write_npz(path, {}, meta=[FORMAT, 1])


def npz_optimizer_entry_missing(path):
    arrays = raw_arrays(path)
    del arrays["optim/v/0"]
    return write_npz(path, arrays)


def npz_pickled_array(path):
    np.savez(path, meta=np.array([{"format": FORMAT}], dtype=object))
    return path


def npz_n_heads_zero(path):
    arrays = raw_arrays(path)
    meta = json.loads(arrays.pop("meta").tobytes())
    meta["model_config"]["n_heads"] = 0
    return write_npz(path, arrays, meta)


def npz_wrong_shape(path):
    arrays = raw_arrays(path)
    arrays[f"model/{FIRST}"] = np.zeros((3, 3), np.float32)
    return write_npz(path, arrays)


def torch_save_archive(path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({}))
    return path


@pytest.mark.parametrize("damage, problem", [
    (npz_not_a_zip, "corrupt or not a minitf checkpoint: it is a damaged zip/npz archive"),
    (truncated, "corrupt or not a minitf checkpoint"),
    (npz_no_metadata, "no metadata: not a minitf checkpoint"),
    (torch_save_archive, "a PyTorch torch.save archive"),
    (npz_metadata_not_json, "metadata is corrupt"),
    (npz_metadata_not_an_object, "metadata is corrupt"),
    (npz_optimizer_entry_missing, "optimizer entry optim/v/0 is missing"),
    (npz_pickled_array, "pickled Python objects"),
    (npz_n_heads_zero, "model_config.n_heads must be an integer in 1 .. 65536, got 0"),
    (npz_wrong_shape, "has shape \\(3, 3\\), model_config gives \\(11, 4\\)"),
])
def test_bad_npz_checkpoint_raises_checkpoint_error(old_checkpoint, damage, problem):
    path = damage(old_checkpoint)
    with pytest.raises(CheckpointError, match=problem) as err:
        load_checkpoint(path)
    assert str(path) in str(err.value) and "allow_pickle" not in str(err.value)


def test_a_progress_without_its_step_loads_and_its_history_is_still_checked(checkpoint):
    # progress lacking "step" is no reason to refuse translating (resuming says "progress lacks"),
    # and not a history step "after progress.step 0"
    record = {"step": 5, "epoch": 1}
    load_checkpoint(resave(checkpoint, progress={"epoch": 0, "history": [record]}))
    with pytest.raises(CheckpointError, match=r"progress.history\[0\].step must be an integer in 0 .. 2147483648, got -1"):
        load_checkpoint(resave(checkpoint, progress={"history": [{**record, "step": -1}]}))


def test_a_tokenizer_that_does_not_fit_the_model_is_refused(checkpoint):
    from minitf.tokenizer import BPETokenizer
    tokenizer = BPETokenizer(special_tokens=["<pad>", "<bos>", "<eos>"])  # 259 tokens, the model has 11
    with pytest.raises(CheckpointError, match="the tokenizer has 259 tokens, model_config.src_vocab_size is 11"):
        load_checkpoint(resave(checkpoint, tokenizer=tokenizer.to_dict()))
    data = {**tokenizer.to_dict(), "special_tokens": [["<pad>", 2**40]]}
    with pytest.raises(CheckpointError, match="tokenizer: .*is not below the limit"):
        load_checkpoint(save_checkpoint(checkpoint, MODEL_STATE, {**META, "tokenizer": data}))


def test_a_zip_bomb_without_a_model_configuration_is_refused_by_its_compression_ratio(tmp_path):
    path = zip_bomb(tmp_path / "bomb.npz", gigabytes=0.0625, meta={"format": FORMAT, "version": 1})
    with pytest.raises(CheckpointError, match="minitf stores arrays uncompressed"):
        load_checkpoint(path)


def test_train_config_cannot_ask_for_more_positions_than_the_model_has(checkpoint):
    with pytest.raises(CheckpointError, match="train_config.max_len 9 exceeds model_config.max_len 8"):
        load_checkpoint(resave(checkpoint, train_config={"max_len": 9}))


def test_numpy_scalars_in_the_metadata_are_saved_as_plain_numbers(tmp_path):
    meta = {**META, "progress": {"step": np.int64(3), "best_score": np.float64(0.5), "history": [
        {"step": np.int64(2), "bleu": np.float64(1.5)}]}}
    path = save_checkpoint(tmp_path / "c.safetensors", MODEL_STATE, meta)
    progress = load_checkpoint(path)[1]["progress"]
    assert progress == {"step": 3, "best_score": 0.5, "history": [{"step": 2, "bleu": 1.5}]}
    assert type(progress["step"]) is int and type(progress["best_score"]) is float
