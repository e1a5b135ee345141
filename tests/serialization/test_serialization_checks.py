"""safetensors files minitf refuses (overlapping or gapped data, absurd header fields) and how it writes
them (a temporary file of its own per write, a full disk as one OSError naming the file)."""
from __future__ import annotations

import errno
import json
import re
import struct

import numpy as np
import pytest

import minitf
from minitf.atomic_file import atomic_write
from minitf.cli import main
from minitf.serialization import MAX_DIMS, CheckpointError
from minitf.translation.checkpoint import load_checkpoint, save_checkpoint

safetensors_numpy = pytest.importorskip("safetensors.numpy")

ENOSPC_MESSAGE = "Error while serializing: I/O error: No space left on device (os error 28)"
"""What safetensors' save_file raised (a SafetensorError) on a full 64 KiB tmpfs."""


def write_raw(path, header: dict, data: bytes):
    """A safetensors file with exactly this header and data section (no checks)."""
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


def f32(begin: int, end: int, shape=(4,)) -> dict:
    return {"dtype": "F32", "shape": list(shape), "data_offsets": [begin, end]}


# ---- the data section: every array's own bytes, in order, nothing else -----------------------

@pytest.mark.parametrize("header, data_size, message", [
    ({"a": f32(0, 16), "b": f32(0, 16)}, 16, "array 'b' at data_offsets \\[0, 16\\] overlaps array 'a'"),
    ({"a": f32(0, 16), "b": f32(8, 24)}, 24, "array 'b' at data_offsets \\[8, 24\\] overlaps array 'a'"),
    ({"a": f32(0, 32, (8,)), "b": f32(8, 24)}, 32, "array 'b' .* overlaps array 'a'"),
    ({"a": f32(0, 16), "e": f32(8, 8, (0,)), "b": f32(16, 32)}, 32, "array 'e' .* overlaps array 'a'"),
    ({"a": f32(0, 16), "b": f32(20, 36)}, 36, "array 'b' at data_offsets \\[20, 36\\] leaves 4 bytes before it"),
    ({"a": f32(4, 20)}, 20, "array 'a' at data_offsets \\[4, 20\\] leaves 4 bytes before it"),
    ({"a": f32(0, 16)}, 20, "4 bytes after the last array \\('a'\\) that no array holds"),
    ({}, 8, "8 bytes after the last array that no array holds"),
    ({"a": f32(0, 12)}, 12, "array 'a' of shape \\(4,\\) and dtype F32 \\(16 bytes\\) does not fit"),
    ({"a": f32(0, 16), "b": f32(16, 32)}, 24, "array 'b' .* does not fit its data_offsets \\[16, 32\\]"),
    ({"a": f32(16, 0, (0,))}, 16, "array 'a' .* does not fit"),
])
def test_data_offsets_that_overlap_leave_holes_or_overrun_are_refused(tmp_path, header, data_size, message):
    path = write_raw(tmp_path / "x.safetensors", header, bytes(data_size))
    with pytest.raises(CheckpointError, match=message) as err:
        minitf.load(path)
    assert str(err.value).startswith(f"{path}: ")
    with pytest.raises(Exception):  # the reference reader refuses each of them too
        safetensors_numpy.load_file(str(path))


def test_empty_arrays_between_others_and_a_file_of_empty_arrays_load(tmp_path):
    data = np.arange(8, dtype=np.float32).tobytes()
    header = {"a": f32(0, 16), "e": f32(16, 16, (0, 3)), "b": f32(16, 32), "z": f32(32, 32, (2, 0))}
    path = write_raw(tmp_path / "x.safetensors", header, data)
    loaded = minitf.load(path)
    assert np.array_equal(loaded["b"], [4, 5, 6, 7]) and loaded["e"].shape == (0, 3) and loaded["z"].shape == (2, 0)
    assert set(safetensors_numpy.load_file(str(path))) == set(header)
    assert minitf.load(write_raw(tmp_path / "e.safetensors", {"e": f32(0, 0, (0,))}, b""))["e"].shape == (0,)


def test_one_array_saved_under_two_names_is_stored_once_and_loads_under_both(tmp_path):
    shared = np.arange(6, dtype=np.float32).reshape(2, 3)  # e.g. tied weights listed under two names
    path = minitf.save({"embed": shared, "output": shared, "bias": np.ones(2)}, tmp_path / "w.safetensors")
    loaded = minitf.load(path)  # the reader's layout checks pass on what the writer wrote
    assert np.array_equal(loaded["embed"], shared) and np.array_equal(loaded["output"], shared)
    # as safetensors.torch.save_model does: one buffer, no overlapping ranges for other readers
    assert set(safetensors_numpy.load_file(str(path))) == {"embed", "bias"}


def test_a_checkpoint_whose_weights_all_start_at_offset_zero_is_refused(tmp_path):
    state = {"w": np.ones((2, 3), np.float32), "v": np.full((2, 3), 2, np.float32)}
    path = save_checkpoint(tmp_path / "c.safetensors", state, {})
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    for name, spec in header.items():
        if name != "__metadata__":
            begin, end = spec["data_offsets"]
            spec["data_offsets"] = [0, end - begin]  # every parameter reads the same bytes
    write_raw(path, header, raw[8 + n:])
    with pytest.raises(CheckpointError, match=f"checkpoint {path} is corrupt .*: array 'model.[wv]' at "
                                              "data_offsets \\[0, 24\\] overlaps array 'model.[wv]'"):
        load_checkpoint(path)


# ---- every header field checked before use ---------------------------------------------------------

def saved(tmp_path):
    """A file holding an empty array 'e' (offsets [0, 0]) and 'x', four float32 values."""
    return minitf.save({"e": np.zeros((0, 5), np.float32), "x": np.ones(4, np.float32)}, tmp_path / "x.safetensors")


def change_header(path, change) -> None:
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    change(header)
    write_raw(path, header, raw[8 + n:])


@pytest.mark.parametrize("change, message", [
    (lambda h: h["e"].update(shape=[0, 1e30]), r"'e' has shape \[0, 1e\+30\], expected a list of non-negative int"),
    (lambda h: h["e"].update(shape=[0, 10**30]), r"'e' has shape \[0, 10{30}\], larger than any array can be"),
    (lambda h: h["e"].update(shape=[0, 2**40, 2**40]), "'e' has shape .*, larger than any array can be"),
    (lambda h: h["e"].update(shape=[0] + [1] * 70), f"'e' has 71 dimensions, more than the limit of {MAX_DIMS}"),
    (lambda h: h["e"].update(shape=[0, -5]), r"'e' has shape \[0, -5\], expected"),
    (lambda h: h["e"].update(shape=[0, True]), r"'e' has shape \[0, True\], expected"),
    (lambda h: h["e"].update(shape="0,5"), "'e' has shape '0,5', expected"),
    (lambda h: h["x"].update(shape=[4.0]), r"'x' has shape \[4.0\], expected"),
    (lambda h: h["x"].update(dtype=["F32"]), r"'x' has dtype \['F32'\]; minitf reads BOOL"),
    (lambda h: h["x"].update(dtype=None), "'x' has dtype None"),
    (lambda h: h["x"].update(data_offsets=[0, 16.0]), r"'x' has data_offsets \[0, 16.0\], expected \[begin, end\]"),
    (lambda h: h["x"].update(data_offsets=[True, 16]), r"'x' has data_offsets \[True, 16\]"),
    (lambda h: h["x"].update(data_offsets={"begin": 0}), "'x' has data_offsets {'begin': 0}"),
    (lambda h: h.update(x=[1, 2]), "'x' has a header entry of type list"),
    (lambda h: h.update(__metadata__=[]), "__metadata__ is not a str -> str map"),
    (lambda h: h.update(__metadata__="minitf"), "__metadata__ is not a str -> str map"),
    (lambda h: h["__metadata__"].update(version=1), "__metadata__ is not a str -> str map"),
])
def test_each_bad_header_field_is_one_checkpoint_error_naming_file_and_field(tmp_path, change, message):
    path = saved(tmp_path)
    change_header(path, change)
    with pytest.raises(CheckpointError, match=message) as err:
        minitf.load(path)
    assert str(err.value).startswith(f"{path}: ")


@pytest.mark.parametrize("change", [
    lambda h: h.update({"x" * 10**6: h.pop("x")}) or h["x" * 10**6].update(dtype="C64"),
    lambda h: h.update({"x" * 10**6: h.pop("x")}) or h["x" * 10**6].update(data_offsets=[4, 20]),
    lambda h: h["__metadata__"].update(structure=json.dumps({"dict": [["k" * 10**6, {"array": "y" * 10**6}]]})),
])
def test_an_error_about_a_huge_name_stays_short(tmp_path, change):
    path = saved(tmp_path)
    change_header(path, change)
    with pytest.raises(CheckpointError) as err:
        minitf.load(path)
    assert len(str(err.value)) < 600 + len(str(path))


@pytest.mark.parametrize("shape, message", [([0, 10**30], "larger than any array can be"),
                                            ([0] + [1] * 70, "71 dimensions"), ([0, 1e30], "non-negative")])
def test_an_absurd_shape_in_a_checkpoint_is_a_checkpoint_error(tmp_path, shape, message):
    path = save_checkpoint(tmp_path / "c.safetensors", {"w": np.ones((2, 3), np.float32)},
                           {}, {"m": np.zeros((0, 3), np.float32)})
    change_header(path, lambda h: h["optimizer.m"].update(shape=shape))
    with pytest.raises(CheckpointError, match=f"checkpoint {path} is corrupt .*'optimizer.m' .*{message}"):
        load_checkpoint(path)


LONG_INT = "9" * 5000  # JSON parses it, Python refuses to make an int of over 4,300 digits from it


def test_an_integer_too_long_for_python_in_the_header_or_the_structure_is_a_checkpoint_error(tmp_path):
    header = '{"x": {"dtype": "F32", "shape": [%s], "data_offsets": [0, 16]}}' % LONG_INT
    path = tmp_path / "x.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header.encode() + bytes(16))
    with pytest.raises(CheckpointError, match=f"^{path}: corrupt safetensors header .*4300 digits"):
        minitf.load(path)
    path = saved(tmp_path)
    change_header(path, lambda h: h["__metadata__"].update(structure='{"dict": [["n", %s]]}' % LONG_INT))
    with pytest.raises(CheckpointError, match=f"^{path}: the saved structure is not valid JSON"):
        minitf.load(path)


def test_an_integer_too_long_for_python_in_npz_checkpoint_metadata_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "old.npz"
    meta = '{"format": "minitf-checkpoint", "version": %s}' % LONG_INT
    np.savez(path, **{"model/w": np.zeros(2, np.float32), "meta": np.frombuffer(meta.encode(), np.uint8)})
    with pytest.raises(CheckpointError, match=f"checkpoint {path}: metadata is corrupt .*4300 digits"):
        load_checkpoint(path)


# ---- writing: a temporary file per write, errors as OSError naming the file -------------------------

def test_two_writers_of_one_path_never_share_a_temporary_file(tmp_path):
    path = tmp_path / "best.safetensors"
    names = []

    def outer(tmp):
        names.append(tmp.name)
        tmp.write_bytes(b"outer")
        atomic_write(path, lambda inner: (names.append(inner.name), inner.write_bytes(b"inner")))  # meanwhile
        assert tmp.read_bytes() == b"outer"  # the second writer did not take this file over

    atomic_write(path, outer)
    assert path.read_bytes() == b"outer" and [p.name for p in tmp_path.iterdir()] == ["best.safetensors"]
    assert len(set(names)) == 2
    assert all(n.startswith("best.safetensors.") and n.endswith(".tmp") for n in names)  # train.py spots *.tmp


def test_a_failed_write_removes_its_temporary_file_and_keeps_the_old_one(tmp_path):
    path = minitf.save({"x": np.arange(3)}, tmp_path / "best.safetensors")

    def fail(tmp):
        tmp.write_bytes(b"half")
        raise ValueError("stopped")

    with pytest.raises(ValueError, match="stopped"):
        atomic_write(path, fail)
    assert [p.name for p in tmp_path.iterdir()] == ["best.safetensors"]
    assert np.array_equal(minitf.load(path)["x"], np.arange(3))


@pytest.fixture
def full_disk(monkeypatch):
    """safetensors' save_file fails as it did on a full tmpfs: part of the file written, then the error."""
    from safetensors import SafetensorError

    def save_file(arrays, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"\0" * 100)
        raise SafetensorError(ENOSPC_MESSAGE)
    monkeypatch.setattr(safetensors_numpy, "save_file", save_file)


def test_a_full_disk_is_an_os_error_naming_the_file_and_the_old_file_survives(tmp_path, full_disk):
    path = tmp_path / "best.safetensors"
    write_raw(path, {"x": f32(0, 16)}, np.arange(4, dtype=np.float32).tobytes())
    with pytest.raises(OSError) as err:
        minitf.save({"x": np.zeros(4, np.float32)}, path)
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(path)
    assert "No space left on device" in str(err.value)
    assert np.array_equal(minitf.load(path)["x"], np.arange(4))  # the old checkpoint, intact
    assert [p.name for p in tmp_path.iterdir()] == ["best.safetensors"]  # the temporary file removed


def test_a_failing_fsync_is_an_os_error_naming_the_file(tmp_path, monkeypatch):
    import minitf.atomic_file

    def fsync(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(minitf.atomic_file.os, "fsync", fsync)
    path = tmp_path / "last.safetensors"
    with pytest.raises(OSError, match=f"No space left on device: '{path}'"):
        minitf.save({"x": np.zeros(2)}, path)
    assert list(tmp_path.iterdir()) == []


def test_minitf_train_on_a_full_disk_prints_one_error_line(tmp_path, full_disk, capsys):
    from tiny_runs import train_argv
    code = main([str(a) for a in train_argv(tmp_path, "--max-steps", 1)])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert re.fullmatch(f"minitf: error: {re.escape(str(tmp_path / 'run'))}/(best|last).safetensors: "
                        "No space left on device", err.splitlines()[-1])
    assert not list((tmp_path / "run").glob("*.tmp"))
