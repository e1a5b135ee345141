"""`mpiexec -n N minitf train`: N processes with budget T train the model of one process with budget N*T."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from minitf.errors import ConfigError
from minitf.translation import Trainer
from minitf.translation.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from mpi_jobs import MPIEXEC
from tiny_runs import TINY_FLAGS

pytest.importorskip("mpi4py")
if MPIEXEC is None:
    pytest.skip("mpiexec not found (pip install mpich)", allow_module_level=True)

MINITF = [sys.executable, "-m", "minitf.cli"]


def train_command(tmp_path: Path, run: str, max_tokens: int, *extra) -> list[str]:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"synthetic_sizes": [400, 40, 40], "log_every": 1}))
    flags = [str(a) for a in TINY_FLAGS]
    flags[flags.index("--max-tokens") + 1] = str(max_tokens)
    return ["train", "--config", str(config), *flags, "--out-dir", str(tmp_path / run), "--dropout", "0",
            "--epochs", "1", *map(str, extra)]


def minitf(args: list[str], processes: int = 1, timeout: float = 240) -> subprocess.CompletedProcess:
    launcher = [MPIEXEC, "-n", str(processes)] if processes > 1 else []
    return subprocess.run(launcher + MINITF + args, capture_output=True, text=True, timeout=timeout)


def weights(path: Path) -> dict[str, np.ndarray]:
    return load_checkpoint(path)[0]


def losses(run: Path) -> list[float]:
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if r["event"] == "step"]


def assert_close(a: dict, b: dict) -> None:
    """Equal up to float32 rounding (sums in another order), except attention's key biases: their
    true gradient is 0 (softmax ignores a shift shared by all keys), so Adam turns rounding noise
    into steps of about the learning rate, in any direction."""
    assert a.keys() == b.keys()
    for name in a:
        x, y = a[name], b[name]
        if name.endswith("in_proj_bias"):
            d = x.shape[0] // 3
            x, y = np.delete(x, np.s_[d:2 * d]), np.delete(y, np.s_[d:2 * d])
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6, err_msg=name)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("one")
    done = minitf(train_command(tmp, "run", 1024, "--max-steps", 4))
    assert done.returncode == 0, done.stderr
    return weights(tmp / "run" / "last.safetensors"), losses(tmp / "run")


@pytest.mark.slow
def test_two_processes_with_half_the_budget_train_the_model_of_one(tmp_path, one_process):
    done = minitf(train_command(tmp_path, "run", 512, "--max-steps", 4), processes=2)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("after 4 steps: saved") == 1 and done.stdout.count("tokenizer:") == 1  # rank 0 alone
    assert "2 processes (mpi)" in done.stdout
    assert_close(weights(tmp_path / "run" / "last.safetensors"), one_process[0])
    np.testing.assert_allclose(losses(tmp_path / "run"), one_process[1], rtol=1e-6)


@pytest.mark.slow
def test_accumulating_two_micro_batches_trains_the_model_of_one_batch(tmp_path, one_process):
    done = minitf(train_command(tmp_path, "run", 512, "--max-steps", 4, "--accumulate", 2))
    assert done.returncode == 0, done.stderr
    assert_close(weights(tmp_path / "run" / "last.safetensors"), one_process[0])
    np.testing.assert_allclose(losses(tmp_path / "run"), one_process[1], rtol=1e-6)


@pytest.fixture(scope="module")
def two_processes_half_way(tmp_path_factory):
    """The first 2 of `one_process`'s 4 steps, on 2 processes with half the budget each."""
    tmp = tmp_path_factory.mktemp("half")
    done = minitf(train_command(tmp, "run", 512, "--max-steps", 2), processes=2)
    assert done.returncode == 0, done.stderr
    return tmp / "run" / "last.safetensors"


def test_a_run_resumed_on_one_process_with_the_same_step_continues_exactly(tmp_path, one_process,
                                                                            two_processes_half_way):
    run = tmp_path / "run"
    done = minitf(["train", "--resume", str(two_processes_half_way), "--out-dir", str(run), "--max-steps", "4",
                   "--accumulate", "2"])  # 512 tokens x 1 process x 2 = the 2 processes' step
    assert done.returncode == 0, done.stderr
    assert_close(weights(run / "last.safetensors"), one_process[0])
    np.testing.assert_allclose(losses(run), one_process[1][2:], rtol=1e-6)


@pytest.mark.slow
def test_a_run_resumed_on_two_processes_with_the_same_step_continues_exactly(tmp_path, one_process):
    half = minitf(train_command(tmp_path, "half", 1024, "--max-steps", 2))
    assert half.returncode == 0, half.stderr
    run = tmp_path / "run"
    done = minitf(["train", "--resume", str(tmp_path / "half" / "last.safetensors"), "--out-dir", str(run),
                   "--max-steps", "4", "--max-tokens", "512"], processes=2)
    assert done.returncode == 0, done.stderr
    assert_close(weights(run / "last.safetensors"), one_process[0])
    np.testing.assert_allclose(losses(run), one_process[1][2:], rtol=1e-6)


def test_a_checkpoint_names_a_bad_number_of_processes(tmp_path):
    for bad in (0, "two", 1.5):
        path = save_checkpoint(tmp_path / f"{bad}.safetensors", {"w": np.zeros(2, np.float32)}, {"processes": bad})
        with pytest.raises(CheckpointError, match="processes must be an integer"):
            load_checkpoint(path)


def test_resuming_on_another_number_of_processes_refuses_what_it_cannot_continue_exactly(
        tmp_path, two_processes_half_way):
    path = str(two_processes_half_way)
    with pytest.raises(ConfigError, match=re.escape(
            f"{path} was trained by 2 processes, not 1: a step took 512 tokens x 2 processes x accumulate 1 = "
            "1024 tokens, and would take 512 (other batches). Resume it on 2 processes, or keep 1024 tokens a "
            "step on 1 process with --accumulate 2")):
        Trainer.from_checkpoint(path, log=_quiet, out_dir=str(tmp_path / "a"))
    with pytest.raises(ConfigError, match=re.escape(
            f"{path} was trained by 2 processes, not 1: with dropout 0.1 each process draws its own masks")):
        Trainer.from_checkpoint(path, log=_quiet, out_dir=str(tmp_path / "b"), accumulate=2, dropout=0.1)
    assert load_checkpoint(path)[1]["processes"] == 2


def _quiet(message: str) -> None:
    pass


@pytest.mark.slow
def test_resuming_with_the_same_number_of_processes_is_exact(tmp_path):
    whole = minitf(train_command(tmp_path, "whole", 256, "--max-steps", 6, "--dropout", "0.1"), processes=2)
    assert whole.returncode == 0, whole.stderr
    first = minitf(train_command(tmp_path, "part", 256, "--max-steps", 3, "--dropout", "0.1"), processes=2)
    assert first.returncode == 0, first.stderr
    second = minitf(["train", "--resume", str(tmp_path / "part" / "last.safetensors"), "--max-steps", "6"],
                    processes=2)
    assert second.returncode == 0, second.stderr
    a, b = weights(tmp_path / "whole" / "last.safetensors"), weights(tmp_path / "part" / "last.safetensors")
    assert all(np.array_equal(a[k], b[k]) for k in a)


def per_rank(*commands: list[str], cwds: tuple = (), timeout: float = 120) -> subprocess.CompletedProcess:
    """One MPI job whose rank r runs commands[r] (in cwds[r] if given): MPMD, `mpiexec A : B`."""
    launch = [MPIEXEC]
    for rank, command in enumerate(commands):
        launch += [":"] * (rank > 0) + ["-n", "1"] + (["-wdir", str(cwds[rank])] if cwds else []) + MINITF + command
    return subprocess.run(launch, capture_output=True, text=True, timeout=timeout)


def test_processes_started_with_different_settings_refuse_to_train(tmp_path):
    args = train_command(tmp_path, "run", 256, "--max-steps", 2)
    done = per_rank(args, [*args, "--lr", "2e-3"])  # the later flag wins
    assert done.returncode == 1, done.stderr
    assert ("minitf: error: the 2 processes were not started alike: setting 'lr' is 0.003 on rank 0 but 0.002 "
            "on rank 1; start every process with the same settings and data") in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "run" / "log.jsonl").exists()


def test_processes_given_different_data_refuse_to_train(tmp_path):
    args = ["train", *map(str, TINY_FLAGS), "--train-tsv", "train.tsv", "--val-tsv", "val.tsv",
            "--out-dir", "run", "--max-steps", "2"]
    folders = (tmp_path / "a", tmp_path / "b")
    for folder, words in zip(folders, (("one", "eins"), ("two", "zwei"))):  # as many pairs, other text
        folder.mkdir()
        (folder / "train.tsv").write_text("".join(f"{words[0]} {i}\t{words[1]} {i}\n" for i in range(30)))
        (folder / "val.tsv").write_text("one\teins\n")
    done = per_rank(args, args, cwds=folders)
    assert done.returncode == 1, done.stderr
    assert "minitf: error: the 2 processes were not started alike: setting 'tokenizer (digest)' is" in done.stderr
    assert not (folders[0] / "run" / "log.jsonl").exists()


def _rank_pid(marker: str, rank: int) -> int | None:
    """The pid of the MPI process of `rank` whose command line holds `marker` (Linux /proc)."""
    for entry in Path("/proc").iterdir():
        try:
            if marker in (entry / "cmdline").read_bytes().decode(errors="replace") and \
                    f"PMI_RANK={rank}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                return int(entry.name)
        except (OSError, ValueError):
            continue
    return None


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the rank's process through /proc")
def test_sigterm_to_one_rank_stops_all_and_rank_0_saves_once(tmp_path):
    args = train_command(tmp_path, "run", 256, "--max-steps", 100000, "--epochs", 1000)
    child = subprocess.Popen([MPIEXEC, "-n", "2"] + MINITF + args, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        log = tmp_path / "run" / "log.jsonl"
        deadline = time.monotonic() + 120
        pid = None
        while time.monotonic() < deadline and child.poll() is None:
            pid = pid or _rank_pid(str(tmp_path / "run"), 1)
            if pid and log.is_file() and log.stat().st_size > 0:
                break
            time.sleep(0.05)
        assert pid is not None, "rank 1's process was not found"
        os.kill(pid, signal.SIGTERM)
        out, err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 130, err
    assert out.count("interrupted: saved") == 1 and "SIGTERM" not in out  # rank 1 got it; rank 0 says
    assert (tmp_path / "run" / "last.safetensors").is_file()


@pytest.mark.skipif(sys.platform == "win32", reason="the run folder's lock is POSIX flock")
def test_every_process_stops_when_rank_0_finds_its_folder_in_use(tmp_path):
    from minitf.translation.run import RunLock
    lock = RunLock(tmp_path / "run")
    lock.acquire()  # as another training process would
    try:
        started = time.monotonic()
        result = minitf(train_command(tmp_path, "run", 256, "--max-steps", 2), processes=2, timeout=120)
    finally:
        lock.release()
    assert result.returncode != 0 and time.monotonic() - started < 100
    assert f"{tmp_path / 'run'} is in use: process {os.getpid()}" in result.stderr
    assert [p.name for p in (tmp_path / "run").iterdir()] == [".lock"]
