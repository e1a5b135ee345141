"""Data-parallel training: N MPI processes reach the weights of one process on the union of their batches."""
from __future__ import annotations

import contextlib
import os
import signal
import threading
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import minitf as mt
from minitf.errors import ConfigError
from minitf.data import make_batch, shard_batch
from minitf.distributed import (DEFAULT_TIMEOUT, CommunicationError, Communicator, DistributedDataParallel,
                                SingleProcess, Work, default_timeout, init)
from minitf.distributed.agreement import check_same_settings, gather_text
from minitf.distributed.comm import CompletedWork, wait_until

sys.path.insert(0, str(Path(__file__).parent))
import ddp_worker  # noqa: E402
from mpi_jobs import MPIEXEC  # noqa: E402

WORKER = Path(ddp_worker.__file__)


def mpi_run(n: int, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    pytest.importorskip("mpi4py")
    if MPIEXEC is None:
        pytest.skip("mpiexec not found (pip install mpich)")
    return subprocess.run([MPIEXEC, "-n", str(n), sys.executable, str(WORKER), *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def reference():
    return ddp_worker.train(SingleProcess())


@pytest.mark.parametrize("n, accumulate", [(2, 1), (3, 1), (2, 2)])
def test_n_processes_match_one_process_on_the_union_of_their_batches(tmp_path, reference, n, accumulate):
    out = tmp_path / "weights.npz"
    done = mpi_run(n, "--out", str(out), "--accumulate", str(accumulate))
    assert done.returncode == 0, done.stderr
    with np.load(out) as weights:
        assert set(weights.files) == set(reference)
        for name, ref in reference.items():
            np.testing.assert_allclose(weights[name], ref, rtol=0, atol=1e-10, err_msg=name)


def test_training_changed_the_weights(reference):
    untrained = {name: p.data for name, p in ddp_worker.make_model().named_parameters()}
    assert max(np.abs(reference[k] - untrained[k]).max() for k in reference) > 1e-3


@pytest.mark.slow
def test_a_rank_that_leaves_makes_the_others_fail_within_the_timeout(tmp_path):
    started = time.monotonic()
    done = mpi_run(2, "--out", str(tmp_path / "w.npz"), "--die-rank", "1", "--timeout", "3")
    assert done.returncode != 0
    assert "did not complete within 3 s" in done.stderr
    assert time.monotonic() - started < 60


def _running(pid_file: Path, worker: str) -> int | None:
    """The process id in `pid_file` if that process still runs `worker` (is neither gone nor a zombie)."""
    with contextlib.suppress(OSError, ValueError):
        pid = int(pid_file.read_text())
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state not in "ZX" and worker in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
            return pid
    return None


def _ranks_left_after(pid_files: list[Path], worker: str, grace: float = 5.0) -> list[int]:
    """The ranks' processes still running `grace` seconds after mpiexec returned; SIGKILLed."""
    deadline = time.monotonic() + grace
    while (left := [pid for f in pid_files if (pid := _running(f, worker))]) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return left


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="checks the ranks' processes through /proc")
def test_a_stopped_rank_ends_the_whole_job_with_one_error_line(tmp_path):
    pytest.importorskip("mpi4py")
    if MPIEXEC is None:
        pytest.skip("mpiexec not found (pip install mpich)")
    worker = str(Path(__file__).parent / "hung_rank_worker.py")
    env = {**os.environ, "MINITF_COLLECTIVE_TIMEOUT": "2"}
    started = time.monotonic()
    try:
        done = subprocess.run([MPIEXEC, "-n", "2", sys.executable, worker, str(tmp_path / "pid")],
                              capture_output=True, text=True, timeout=60, env=env)
    finally:  # never leave a stopped rank behind, whatever happened
        left = _ranks_left_after(sorted(tmp_path.glob("pid.*")), worker)
    assert time.monotonic() - started < 60
    assert done.returncode != 0
    assert "minitf: error: all-reduce of 1 numbers on rank 0 did not complete within 2 s" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(list(tmp_path.glob("pid.*"))) == 2 and left == [], "a rank outlived mpiexec"


def test_the_collective_timeout_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("MINITF_COLLECTIVE_TIMEOUT", "2.5")
    assert default_timeout() == 2.5
    monkeypatch.delenv("MINITF_COLLECTIVE_TIMEOUT")
    assert default_timeout() == DEFAULT_TIMEOUT
    for bad in ("soon", "0", "-1", "nan", "inf"):
        monkeypatch.setenv("MINITF_COLLECTIVE_TIMEOUT", bad)
        with pytest.raises(ConfigError, match=f"MINITF_COLLECTIVE_TIMEOUT must be a number of seconds > 0, "
                                              f"got '{bad}'"):
            default_timeout()


class ThreadComm(Communicator):
    """One of `size` ranks run as threads of this process; allreduce_numbers meets the others at a barrier."""

    def __init__(self, rank: int, size: int, slots: list, barrier: threading.Barrier) -> None:
        self.rank, self.size, self.slots, self.barrier = rank, size, slots, barrier

    def allreduce_numbers(self, values, timeout=None):
        self.slots[self.rank] = list(values)
        self.barrier.wait(timeout=10)
        total = [sum(column) for column in zip(*self.slots)]
        self.barrier.wait(timeout=10)  # nobody writes the next round's slots before all have read
        return total


def run_ranks(size: int, work) -> list:
    """work(comm) on `size` thread ranks; what each returned or raised, in rank order."""
    slots, barrier, results = [None] * size, threading.Barrier(size), [None] * size

    def run(rank):
        try:
            results[rank] = work(ThreadComm(rank, size, slots, barrier))
        except Exception as exc:  # noqa: BLE001 (returned to the test)
            results[rank] = exc
    threads = [threading.Thread(target=run, args=(rank,)) for rank in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_gather_text_returns_every_ranks_text_in_rank_order():
    texts = ["", "größer", "a\tb" * 5]
    assert run_ranks(3, lambda comm: gather_text(comm, texts[comm.rank])) == [texts] * 3


def test_ranks_with_equal_settings_pass_and_any_difference_is_named_on_every_rank():
    settings = {"lr": 1e-3, "synthetic_sizes": [4, 2, 2], "activation": "relu", "training pairs": 400}
    assert run_ranks(3, lambda comm: check_same_settings(comm, dict(settings))) == [None] * 3
    assert run_ranks(3, lambda comm: check_same_settings(comm, dict(reversed(settings.items())))) == [None] * 3

    def rank_1_differs(comm):
        return check_same_settings(comm, {**settings, "training pairs": 400 + (comm.rank == 1),
                                          "activation": ["relu", "gelu", "relu"][comm.rank]})
    errors = run_ranks(3, rank_1_differs)
    assert all(isinstance(e, ConfigError) for e in errors)
    assert str(errors[0]) == str(errors[1]) == str(errors[2]) == (
        "the 3 processes were not started alike: setting 'activation' is \"relu\" on ranks 0, 2 but "
        "\"gelu\" on rank 1; start every process with the same settings and data")


class RecordingComm(Communicator):
    """Two identical ranks, simulated: an all-reduce doubles the buffer; records what happens."""

    size = 2

    def __init__(self, events: list) -> None:
        self.events = events

    def iallreduce(self, array):
        self.events.append("all-reduce")
        array *= 2
        return CompletedWork()

    def broadcast(self, array, root=0):
        return array

    def allreduce_numbers(self, values, timeout=None):
        return [2 * v for v in values]

    def barrier(self):
        pass


def _loss(model, batch):
    import minitf.functional as F
    logits = model(batch.src, batch.tgt_in, batch.src_mask)
    return F.cross_entropy(logits, batch.tgt_out, ignore_index=ddp_worker.PAD, reduction="sum")


def test_buckets_start_all_reducing_before_backward_ends():
    events: list = []
    model = ddp_worker.make_model()
    ddp = DistributedDataParallel(model, RecordingComm(events), bucket_mb=0.002)
    assert len(ddp.buckets) > 2
    first = model.parameters()[0]  # registered first: its gradient completes last
    first.register_post_accumulate_grad_hook(lambda t: events.append("first parameter done"))
    _loss(ddp, ddp_worker.global_batches(1)[0]).backward()
    assert events.index("all-reduce") < events.index("first parameter done")
    ddp.finish()
    assert events.count("all-reduce") == len(ddp.buckets)


def test_gradients_are_summed_or_averaged_and_unused_parameters_get_zeros():
    batch = ddp_worker.global_batches(1)[0]
    plain = ddp_worker.make_model()
    _loss(plain, batch).backward()
    for average, factor in ((False, 2.0), (True, 1.0)):
        model = ddp_worker.make_model()
        ddp = DistributedDataParallel(model, RecordingComm([]), bucket_mb=0.002, average=average)
        _loss(ddp, batch).backward()
        ddp.finish()
        for (name, p), q in zip(model.named_parameters(), plain.parameters()):
            expected = factor * q.grad if q.grad is not None else np.zeros_like(q.data)
            np.testing.assert_allclose(p.grad, expected, rtol=1e-12, atol=1e-14, err_msg=name)


def test_no_sync_accumulates_locally_and_the_next_synced_backward_sends_the_total():
    events: list = []
    batch = ddp_worker.global_batches(1)[0]
    model = ddp_worker.make_model()
    ddp = DistributedDataParallel(model, RecordingComm(events), bucket_mb=0.002)
    with ddp.no_sync():
        _loss(ddp, batch).backward()
    assert events == []
    _loss(ddp, batch).backward()
    ddp.finish()
    plain = ddp_worker.make_model()
    _loss(plain, batch).backward()
    p, q = model.parameters()[-1], plain.parameters()[-1]
    np.testing.assert_allclose(p.grad, 2 * 2 * q.grad, rtol=1e-12)


def test_shards_partition_the_batch_and_trim_padding():
    examples = [([3] * n, [4] * (6 - n)) for n in range(1, 6)]
    batch = make_batch(examples, 0, 1, 2)
    shards = [shard_batch(batch, r, 3) for r in range(3)]
    assert sorted(np.concatenate([s.indices for s in shards]).tolist()) == list(range(5))
    assert sum(s.n_tgt_tokens for s in shards) == batch.n_tgt_tokens
    assert shards[0].src.shape == (2, 4)  # rows 0 and 3: sources of 1 and 4 tokens
    assert shard_batch(batch, 5, 6) is None
    with pytest.raises(ValueError, match="rank 3 is outside 0..2"):
        shard_batch(batch, 3, 3)


def test_wait_gives_up_after_the_timeout_naming_the_operation():
    with pytest.raises(CommunicationError, match="all-reduce of 8 values did not complete within 0.05 s"):
        Work(lambda: False, "all-reduce of 8 values", 0.05).wait()
    wait_until(lambda: True, "nothing", 0.0)


def test_init_picks_one_process_without_a_launcher_and_names_unknown_backends(monkeypatch):
    for variable in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"):
        monkeypatch.delenv(variable, raising=False)
    assert isinstance(init(), SingleProcess)
    with pytest.raises(ValueError, match="unknown distributed backend 'gloo'"):
        init("gloo")


@pytest.mark.parametrize("variable, value", [("PMI_SIZE", "2"), ("OMPI_COMM_WORLD_SIZE", "3")])
def test_backend_single_is_refused_under_an_mpi_launcher_with_several_processes(monkeypatch, variable, value):
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"):
        monkeypatch.setenv(name, "junk")  # not understood: no launcher
    assert isinstance(init("single"), SingleProcess)
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=f"backend 'single', but this process was started by an MPI launcher "
                                          f"with {value} processes; use --backend mpi or auto, or run without "
                                          f"mpiexec"):
        init("single")


def test_a_bad_collective_timeout_is_named_before_mpi_starts(monkeypatch):
    monkeypatch.setenv("MINITF_COLLECTIVE_TIMEOUT", "soon")
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # starting MPI would be an ImportError
    with pytest.raises(ConfigError, match="MINITF_COLLECTIVE_TIMEOUT must be a number of seconds > 0"):
        init("mpi")


def test_an_error_line_is_written_whole_in_one_write(monkeypatch, tmp_path):
    from minitf import cli

    class Stream:  # records each write and whether a flush followed it
        def __init__(self):
            self.calls = []

        def write(self, text):
            self.calls.append(text)

        def flush(self):
            self.calls.append(None)

    stream = Stream()
    monkeypatch.setattr(sys, "stderr", stream)
    assert cli.main(["translate", "--checkpoint", str(tmp_path / "x"), "--beam", "0"]) == 1
    assert stream.calls == ["minitf: error: --beam must be an integer >= 1, got 0\n", None]


def run_ranks_mpmd(commands: list[list[str]], timeout: float = 60,
                   **env: str) -> tuple[subprocess.CompletedProcess, float]:
    """One process per command under mpiexec (rank i runs commands[i]); the result and seconds taken.
    Past `timeout`, mpiexec is asked to end the job (SIGTERM: it ends the ranks too) and the test fails."""
    pytest.importorskip("mpi4py")
    if MPIEXEC is None:
        pytest.skip("mpiexec not found (pip install mpich)")
    argv = [MPIEXEC]
    for command in commands:
        argv += (["-n", "1"] if argv == [MPIEXEC] else [":", "-n", "1"]) + command
    started = time.monotonic()
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, **env}) as job:
        try:
            out, err = job.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            job.terminate()
            out, err = job.communicate()
            pytest.fail(f"the job still ran after {timeout} s:\n{err}")
    return subprocess.CompletedProcess(argv, job.returncode, out, err), time.monotonic() - started


def test_a_rank_with_backend_single_ends_the_job_at_start(tmp_path):
    train = [sys.executable, "-m", "minitf.cli", "train", "--max-steps", "1", "--out-dir", str(tmp_path)]
    done, seconds = run_ranks_mpmd([train, train + ["--backend", "single"]], MINITF_COLLECTIVE_TIMEOUT="20")
    assert done.returncode != 0
    assert ("minitf: error: backend 'single', but this process was started by an MPI launcher with 2 processes; "
            "use --backend mpi or auto, or run without mpiexec\n") in done.stderr
    # nobody trained (rank 0 may have taken the folder's lock before rank 1 ended the job)
    assert "Traceback" not in done.stderr and {p.name for p in tmp_path.iterdir()} <= {".lock"}
    assert seconds < 20


def test_starting_mpi_gives_up_when_a_rank_exits_without_it():
    start = [sys.executable, "-c", "from minitf import distributed; distributed.init('mpi')"]
    done, seconds = run_ranks_mpmd([start, [sys.executable, "-c", "pass"]], timeout=30,
                                   MINITF_COLLECTIVE_TIMEOUT="2")
    assert done.returncode != 0
    assert ("minitf: error: starting MPI did not complete within 2 s: another process of the job has probably "
            "exited without starting MPI") in done.stderr
    assert seconds < 15


def test_mpi_backend_without_mpi4py_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(ImportError, match=r'pip install "\.\[mpi\]"'):
        init("mpi")


def test_ddp_on_one_process_changes_nothing():
    model = ddp_worker.make_model()
    before = [p.data.copy() for p in model.parameters()]
    ddp = DistributedDataParallel(model, SingleProcess())
    _loss(ddp, ddp_worker.global_batches(1)[0]).backward()
    ddp.finish()
    assert all(np.array_equal(a, p.data) for a, p in zip(before, model.parameters()))
    assert mt.is_grad_enabled()


def test_nccl_backend_collectives_and_streams_on_a_cpu_stand_in():
    pytest.importorskip("mpi4py")
    if MPIEXEC is None:
        pytest.skip("mpiexec not found (pip install mpich)")
    worker = Path(__file__).parent / "nccl_standin_worker.py"
    done = subprocess.run([MPIEXEC, "-n", "2", sys.executable, str(worker)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
