"""minitf.save / minitf.load: nested structures round trip through one safetensors file, without pickle."""
from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minitf
from minitf.serialization import CheckpointError, open_file

DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
          np.uint32, np.uint64, np.bool_]


def same(a, b) -> bool:
    """Equal structure, types, dtypes and values (NaN equal to NaN)."""
    if isinstance(a, minitf.Tensor):
        return (isinstance(b, minitf.Tensor) and a.requires_grad == b.requires_grad
                and same(a.numpy(), b.numpy()))
    if isinstance(a, (np.ndarray, np.generic)):
        return (type(a) is type(b) and a.dtype == b.dtype and np.shape(a) == np.shape(b)
                and np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    if isinstance(a, dict):
        return type(b) is dict and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a) is type(b) and a == b


def round_trip(obj, path):
    minitf.save(obj, path)
    return minitf.load(path)


arrays = st.sampled_from(DTYPES).flatmap(
    lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)))
leaves = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True, allow_infinity=True)
          | st.text(max_size=8) | arrays | arrays.map(lambda a: a[()] if a.ndim == 0 else a))
keys = st.text(alphabet="ab.#0/ ", max_size=4) | st.integers(-3, 3)
structures = st.recursive(leaves, lambda inner: (st.lists(inner, max_size=3) | st.lists(inner, max_size=3).map(tuple)
                                                 | st.dictionaries(keys, inner, max_size=3)), max_leaves=12)


@settings(max_examples=60, deadline=None)
@given(obj=structures)
def test_nested_structures_round_trip(tmp_path_factory, obj):
    path = tmp_path_factory.mktemp("s") / "obj.safetensors"
    assert same(round_trip(obj, path), obj)


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_round_trips_bit_exactly(tmp_path, dtype):
    value = (np.arange(-3, 9).reshape(3, 4) * 7).astype(dtype)
    assert same(round_trip({"x": value}, tmp_path / "x.safetensors")["x"], value)


def test_zero_dimensional_empty_non_contiguous_and_big_endian_arrays(tmp_path):
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    obj = {"scalar": np.array(2.5), "empty": np.zeros((0, 3), np.int64), "strided": base[::2, 1::2],
           "transposed": base.T, "big_endian": np.arange(3, dtype=">f8"), "np_scalar": np.float16(1.5),
           "np_float64": np.float64(0.5)}
    loaded = round_trip(obj, tmp_path / "x.safetensors")
    for name, value in obj.items():
        assert np.array_equal(loaded[name], value) and np.shape(loaded[name]) == np.shape(value), name
    assert loaded["scalar"].ndim == 0 and type(loaded["np_scalar"]) is np.float16
    assert type(loaded["np_float64"]) is np.float64  # a float subclass, yet saved as a NumPy scalar


def test_tensors_come_back_as_tensors_on_the_cpu(tmp_path):
    t = minitf.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    loaded = round_trip({"w": t, "frozen": minitf.tensor([1, 2])}, tmp_path / "t.safetensors")
    assert same(loaded["w"], t) and loaded["w"].requires_grad and not loaded["frozen"].requires_grad


def test_state_dict_tensors_keep_their_dotted_names(tmp_path):
    model = minitf.nn.Seq2SeqTransformer(minitf.nn.TransformerConfig(7, 7, d_model=4, n_heads=2, n_encoder_layers=1,
                                                                     n_decoder_layers=1, d_ff=6, max_len=8))
    path = minitf.save(model.state_dict(), tmp_path / "w.safetensors")
    assert list(open_file(path).arrays) and set(open_file(path).arrays) == set(model.state_dict(remove_duplicate=True))
    assert same(minitf.load(path), model.state_dict())


def test_names_that_collide_are_kept_apart(tmp_path):
    obj = {"a.b": np.zeros(2), "a": {"b": np.ones(2)}, 0: [np.full(1, 3.0)], "0": [np.full(1, 4.0)]}
    assert same(round_trip(obj, tmp_path / "c.safetensors"), obj)


def test_cupy_arrays_are_copied_to_the_host(tmp_path, fake_gpu):  # noqa: F811
    device = fake_gpu(np.arange(4, dtype=np.float32))
    assert minitf.backend.is_cupy_array(device)
    loaded = round_trip({"x": device}, tmp_path / "g.safetensors")
    assert type(loaded["x"]) is np.ndarray and np.array_equal(loaded["x"], np.arange(4))


@pytest.mark.parametrize("obj, message", [
    ({"opt": {"lr": {1, 2}}}, r"cannot save obj\['opt'\]\['lr'\] of type builtins.set"),
    ({"x": [1, object()]}, r"obj\['x'\]\[1\] of type builtins.object"),
    ({"x": {1.5: 2}}, r"key 1.5 of obj\['x'\] is a float; keys must be str or int"),
    ({"s": np.array(["a", "b"])}, r"obj\['s'\] has dtype <U1, which safetensors cannot hold"),
    ({"c": np.ones(2, np.complex64)}, r"obj\['c'\] has dtype complex64"),
    ({"o": np.array([None], dtype=object)}, r"obj\['o'\] has dtype object"),
])
def test_unsupported_objects_are_named_by_key_path_and_type(tmp_path, obj, message):
    with pytest.raises(TypeError, match=message):
        minitf.save(obj, tmp_path / "bad.safetensors")
    assert not list(tmp_path.iterdir())  # nothing written, not even a temporary file


def test_a_structure_that_contains_itself_is_refused(tmp_path):
    loop: list = []
    loop.append(loop)
    with pytest.raises(TypeError, match="nested more than"):
        minitf.save(loop, tmp_path / "loop.safetensors")


@pytest.mark.parametrize("content, what", [
    (b"", "it is empty"),
    (pickle.dumps({"w": [1.0]}), "it is a pickle"),
    (b"PK\x03\x04" + bytes(60), "it is a zip/npz archive"),
    (b"\x93NUMPY\x01\x00" + bytes(60), "it is a NumPy .npy array"),
    (b"hello world\nthis is text\n", "it is text"),
    (b'{"vocab": {}}', "it is JSON text"),
    (bytes(range(256)) * 4, "it is binary data of an unknown format"),
])
def test_a_file_that_is_not_safetensors_says_what_it_is(tmp_path, content, what):
    path = tmp_path / "x.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=what) as err:
        minitf.load(path)
    assert str(path) in str(err.value) and "allow_pickle" not in str(err.value)


def test_npz_file_says_it_is_an_npz(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.zeros(3))
    with pytest.raises(CheckpointError, match="not a safetensors file: it is a zip/npz archive"):
        minitf.load(tmp_path / "a.npz")


def rewrite_header(path, change):
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    change(header)
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + n:])


@pytest.mark.parametrize("change, message", [
    (lambda h: h["x"].update(shape=[2**30, 2**30]), "'x' of shape .* does not fit its data_offsets"),
    (lambda h: h["x"].update(shape=[-1]), "'x' has shape \\[-1\\], expected a list of non-negative integers"),
    (lambda h: h["x"].update(dtype="C64"), "'x' has dtype 'C64'"),
    (lambda h: h["x"].update(data_offsets=[0, 10**12]), "does not fit"),
    (lambda h: h["__metadata__"].update(structure='{"array": "missing"}'), "names array 'missing'"),
    (lambda h: h["__metadata__"].update(structure='{"set": [1]}'), "unknown structure node"),
    (lambda h: h["__metadata__"].update(structure="[" * 100000), "not valid JSON"),
    (lambda h: h["__metadata__"].update(version="9"), "version 9"),
])
def test_a_corrupt_or_hostile_header_is_refused_before_reading_arrays(tmp_path, change, message):
    path = minitf.save({"x": np.zeros(4, np.float32)}, tmp_path / "x.safetensors")
    rewrite_header(path, change)
    with pytest.raises(CheckpointError, match=message):
        minitf.load(path)


def test_a_header_longer_than_the_file_is_a_clear_error(tmp_path):
    path = minitf.save({"x": np.zeros(4)}, tmp_path / "x.safetensors")
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(CheckpointError, match="a truncated or corrupt safetensors file"):
        minitf.load(path)


# ---- PyTorch interop (skips without torch) --------------------------------------------------

def test_a_state_dict_saved_by_minitf_loads_in_pytorch_with_the_same_names(tmp_path):
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    state = {"encoder.0.weight": np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32),
             "encoder.0.bias": np.arange(3, dtype=np.float64), "steps": np.array(7, np.int64),
             "mask": np.array([True, False]), "half": np.ones(2, np.float16)}
    path = minitf.save(state, tmp_path / "w.safetensors")
    loaded = safetensors_torch.load_file(str(path))
    assert set(loaded) == set(state)
    for name, value in state.items():
        assert loaded[name].dtype == getattr(torch, str(value.dtype))
        assert np.array_equal(loaded[name].numpy(), value)


def test_a_file_written_by_pytorch_loads_as_a_flat_dict_of_arrays(tmp_path):
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    state = {"layer.weight": torch.randn(4, 3, dtype=torch.float32), "layer.bias": torch.zeros(4, dtype=torch.float64),
             "ids": torch.arange(5), "flag": torch.tensor(True), "h": torch.ones(2, dtype=torch.float16)}
    path = tmp_path / "torch.safetensors"
    safetensors_torch.save_file(state, str(path))
    loaded = minitf.load(path)
    assert type(loaded) is dict and set(loaded) == set(state)
    for name, value in state.items():
        assert isinstance(loaded[name], np.ndarray) and np.array_equal(loaded[name], value.numpy())
        assert loaded[name].shape == tuple(value.shape)
