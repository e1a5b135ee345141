"""Checkpoint files: round trip, no pickle, atomic writes, and a clear CheckpointError for bad files."""
from __future__ import annotations

import json

import numpy as np
import pytest

from minitf.translate.checkpoint import FORMAT, VERSION, CheckpointError, load_checkpoint, save_checkpoint

MODEL_STATE = {"embed.weight": np.arange(12, dtype=np.float32).reshape(3, 4),
               "out.bias": np.array([0.5, -1.0], dtype=np.float32)}
OPTIMIZER_STATE = {"lr": 0.001, "step": 7, "m": [np.ones((3, 4), np.float32), None],
                   "v": [np.full((3, 4), 2.0, np.float32), None]}
META = {"model_config": {"d_model": 4}, "progress": {"step": 7}}


@pytest.fixture
def checkpoint(tmp_path):
    return save_checkpoint(tmp_path / "run" / "last.npz", MODEL_STATE, META, OPTIMIZER_STATE)


def raw_arrays(path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def write_npz(path, arrays: dict[str, np.ndarray], meta: dict | None = None):
    """An npz of `arrays`, plus `meta` encoded as a checkpoint stores it."""
    if meta is not None:
        arrays = {**arrays, "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
    np.savez(path, **arrays)
    return path


def with_meta(path, **changes):
    """Rewrite the checkpoint at `path` with its metadata changed (None deletes a key)."""
    arrays = raw_arrays(path)
    meta = json.loads(arrays.pop("meta").tobytes())
    meta.update(changes)
    return write_npz(path, arrays, {k: v for k, v in meta.items() if v is not None})


def test_round_trip_keeps_weights_metadata_and_optimizer_state(checkpoint):
    model_state, meta, optimizer_state = load_checkpoint(checkpoint)
    assert model_state.keys() == MODEL_STATE.keys()
    for name, value in MODEL_STATE.items():
        assert model_state[name].dtype == value.dtype and np.array_equal(model_state[name], value)
    assert meta["format"] == FORMAT and meta["version"] == VERSION
    assert meta["model_config"] == META["model_config"] and meta["progress"] == META["progress"]
    assert optimizer_state["lr"] == 0.001 and optimizer_state["step"] == 7
    for key in ("m", "v"):
        assert optimizer_state[key][1] is None
        assert np.array_equal(optimizer_state[key][0], OPTIMIZER_STATE[key][0])


def test_file_is_a_plain_npz_without_pickled_objects(checkpoint):
    arrays = raw_arrays(checkpoint)
    assert set(arrays) == {"meta", "model/embed.weight", "model/out.bias", "optim/m/0", "optim/v/0"}
    assert all(a.dtype != object for a in arrays.values())
    assert json.loads(arrays["meta"].tobytes().decode("utf-8"))["format"] == FORMAT


def test_save_replaces_atomically_without_leaving_a_temporary_file(checkpoint):
    save_checkpoint(checkpoint, {"embed.weight": np.zeros((2, 2), np.float32)}, {})
    assert [p.name for p in checkpoint.parent.iterdir()] == ["last.npz"]
    model_state, _, optimizer_state = load_checkpoint(checkpoint)
    assert list(model_state) == ["embed.weight"] and optimizer_state is None


def test_weights_only_checkpoint_has_no_optimizer_state(tmp_path):
    path = save_checkpoint(tmp_path / "w.npz", MODEL_STATE, {})
    assert load_checkpoint(path)[2] is None


# ---- errors: each a CheckpointError naming the file and the problem -------------------------

def missing_file(path):
    return path.with_name("nothing-here.npz")


def random_bytes(path):
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    return path


def truncated(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def empty_file(path):
    path.write_bytes(b"")
    return path


def other_format(path):
    return with_meta(path, format="something-else")


def other_version(path):
    return with_meta(path, version=VERSION + 1)


def no_metadata(path):
    return write_npz(path, {"model/x": np.zeros(2)})


def metadata_not_json(path):
    return write_npz(path, {"meta": np.frombuffer(b"\xff\xfe{", dtype=np.uint8)})


def metadata_not_an_object(path):
    return write_npz(path, {}, meta=[FORMAT, VERSION])


def optimizer_entry_missing(path):
    arrays = raw_arrays(path)
    del arrays["optim/v/0"]
    return write_npz(path, arrays)


def pickled_array(path):
    np.savez(path, meta=np.array([{"format": FORMAT}], dtype=object))
    return path


@pytest.mark.parametrize("damage, problem", [
    (missing_file, "does not exist"),
    (random_bytes, "corrupt or not a minitf checkpoint"),
    (truncated, "corrupt or not a minitf checkpoint"),
    (empty_file, "corrupt or not a minitf checkpoint"),
    (pickled_array, "corrupt or not a minitf checkpoint"),
    (other_format, "format 'something-else', expected 'minitf-checkpoint'"),
    (other_version, f"version {VERSION + 1}; this minitf reads version {VERSION}"),
    (no_metadata, "no metadata"),
    (metadata_not_json, "metadata is corrupt"),
    (metadata_not_an_object, "metadata is corrupt"),
    (optimizer_entry_missing, "optimizer entry optim/v/0 is missing"),
])
def test_bad_checkpoint_raises_checkpoint_error_naming_file_and_problem(checkpoint, damage, problem):
    path = damage(checkpoint)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert str(path) in message and problem in message
    assert isinstance(err.value, ValueError)  # the CLI reports ValueErrors without a traceback
