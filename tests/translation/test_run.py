"""The run folder: one run at a time (its lock), where a resumed run writes, what a refusal suggests."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import minitf.translation.trainer
from minitf.errors import ConfigError
from minitf.translation import Trainer
from minitf.translation.checkpoint import load_checkpoint, save_checkpoint
from minitf.translation.run import RunLock
from tiny_runs import quiet, tiny_config, tiny_trainer

needs_flock = pytest.mark.skipif(sys.platform == "win32", reason="the lock is POSIX flock")


def files_in(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != ".lock"}


# ---- one run at a time ------------------------------------------------------------------------

@needs_flock
def test_a_second_trainer_into_the_same_fresh_folder_stops_at_its_start(tmp_path):
    first, second = tiny_trainer(tmp_path, max_steps=3), tiny_trainer(tmp_path, max_steps=3)  # both see it fresh
    errors = []
    original = first.train_step

    def train_step(batch):  # while the first trains, the second starts
        if first.progress.step == 1:
            with pytest.raises(ConfigError) as err:
                second.fit()
            errors.append(str(err.value))
        return original(batch)

    first.train_step = train_step
    first.fit()
    assert len(errors) == 1 and f"{tmp_path} is in use: process {os.getpid()} is training into it" in errors[0]
    assert second.progress.step == 0
    log = (tmp_path / "log.jsonl").read_text().splitlines()
    assert len(log) == 1 and '"step": 3' in log[0]  # the first run's evaluation alone
    with pytest.raises(ConfigError, match="already holds a run"):  # and once it is done, its files are kept
        second.fit()


@needs_flock
def test_a_run_into_a_folder_in_use_stops_before_its_data_work(tmp_path, monkeypatch):
    first, errors = tiny_trainer(tmp_path, max_steps=2), []
    original = first.train_step

    def load_splits(config):
        raise AssertionError("data was loaded for a folder in use")

    def train_step(batch):
        with monkeypatch.context() as patch:
            patch.setattr(minitf.translation.trainer, "load_splits", load_splits)
            with pytest.raises(ConfigError, match=f"in use: process {os.getpid()}") as err:
                tiny_trainer(tmp_path / ".." / tmp_path.name)  # the same folder, spelled otherwise
        errors.append(err)
        return original(batch)

    first.train_step = train_step
    first.fit()
    assert len(errors) == 2


LOCK_HOLDER = "import sys, time; from pathlib import Path; from minitf.translation.run import RunLock; " \
              "lock = RunLock(Path(sys.argv[1])); lock.acquire(); print('locked', flush=True); time.sleep(60)"


@needs_flock
def test_the_lock_names_the_other_process_and_dies_with_it(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    child = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(tmp_path)], env=env,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(ConfigError, match=f"in use: process {child.pid} is training into it"):
            RunLock(tmp_path).acquire()
    finally:
        child.kill()  # as a crash or SIGKILL would: the kernel drops its lock
        child.wait()
    tiny_trainer(tmp_path, max_steps=1).fit()  # a stale lock file blocks nothing
    assert (tmp_path / "last.safetensors").is_file()


# ---- where a resumed run writes ---------------------------------------------------------------

@pytest.fixture
def saved_run(tmp_path):
    trainer = tiny_trainer(tmp_path / "original", max_steps=2)
    trainer.fit()
    return tmp_path / "original" / "last.safetensors"


def test_a_copied_checkpoint_resumes_next_to_the_copy(tmp_path, saved_run, monkeypatch):
    copy = tmp_path / "copy" / "last.safetensors"
    copy.parent.mkdir()
    copy.write_bytes(saved_run.read_bytes())
    original = files_in(saved_run.parent)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    resumed = Trainer.from_checkpoint(str(copy), log=quiet, max_steps=3)
    assert resumed.out_dir == copy.parent
    resumed.fit()
    assert load_checkpoint(copy)[1]["progress"]["step"] == 3
    assert files_in(saved_run.parent) == original and not any((tmp_path / "elsewhere").iterdir())


@pytest.mark.parametrize("stored", ["evil", "../x"])
def test_a_checkpoint_never_chooses_the_folder_written_to(tmp_path, saved_run, monkeypatch, stored):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    target = tmp_path / "evil" if stored == "evil" else cwd / stored
    state, meta, optim = load_checkpoint(saved_run)
    meta = {k: v for k, v in meta.items() if k not in ("format", "version")}
    meta["train_config"]["out_dir"] = str(target) if stored == "evil" else stored
    crafted = save_checkpoint(tmp_path / "crafted" / "last.safetensors", state, meta, optim)
    Trainer.from_checkpoint(str(crafted), log=quiet, max_steps=3).fit()
    assert not target.exists()
    assert load_checkpoint(crafted)[1]["progress"]["step"] == 3
    other = tmp_path / "chosen"
    Trainer.from_checkpoint(str(crafted), log=quiet, max_steps=4, out_dir=str(other)).fit()
    assert load_checkpoint(other / "last.safetensors")[1]["progress"]["step"] == 4 and not target.exists()


# ---- what a refusal suggests ------------------------------------------------------------------

def suggestion(folder: Path) -> str:
    """The ConfigError of a fresh run into `folder`."""
    with pytest.raises(ConfigError) as err:
        tiny_trainer(folder)
    return str(err.value)


@pytest.mark.parametrize("partial", ["best.safetensors.tmp", "best.safetensors.k3j9x2.tmp"])
def test_a_run_killed_in_its_first_save_suggests_overwrite_not_a_missing_checkpoint(tmp_path, partial):
    (tmp_path / "log.jsonl").write_text('{"event": "step"}\n')
    (tmp_path / partial).write_bytes(b"partial")
    message = suggestion(tmp_path)
    assert "holds an unfinished run with no checkpoint to resume (log.jsonl)" in message
    assert "--overwrite" in message and "--resume" not in message
    trainer = Trainer(tiny_config(tmp_path, max_steps=1), log=quiet, overwrite=True)
    trainer.fit()
    assert not (tmp_path / partial).exists()  # --overwrite deleted it


@pytest.mark.parametrize("saved", [["last.safetensors"], ["best.safetensors"], ["best.safetensors", "last.safetensors"]])
def test_a_refusal_suggests_resuming_only_a_checkpoint_that_exists(tmp_path, saved):
    (tmp_path / "log.jsonl").write_text("")
    for name in saved:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "last.safetensors.k3j9x2.tmp").write_bytes(b"partial")
    resume = re.search(r"--resume (\S+)`", suggestion(tmp_path)).group(1)
    assert Path(resume) == tmp_path / saved[-1]


def test_an_empty_out_dir_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="'out_dir' must name a folder, got ''"):
        tiny_trainer("")
    assert not any(tmp_path.iterdir())


# ---- only minitf's own files are a run's --------------------------------------------------------

def test_files_named_like_a_run_s_are_neither_reported_nor_deleted(tmp_path):
    mine = {"last.notes.txt": b"notes", "best.png": b"x", "last.safetensors.old": b"y", "best.tmp": b"z",
            "log.jsonl.bak": b"w", "last.safetensors.a.b.tmp": b"v"}
    for name, data in mine.items():
        (tmp_path / name).write_bytes(data)
    Trainer(tiny_config(tmp_path, max_steps=1), log=quiet).fit()  # a fresh run: nothing there is a run's
    assert {name: (tmp_path / name).read_bytes() for name in mine} == mine
    (tmp_path / "last.npz").write_bytes(b"v1")
    (tmp_path / "best.safetensors.k3j9x2.tmp").write_bytes(b"partial")
    message = suggestion(tmp_path)
    assert "(log.jsonl, best.safetensors, last.npz, last.safetensors)" in message, message
    Trainer(tiny_config(tmp_path, max_steps=1), log=quiet, overwrite=True).fit()
    assert not (tmp_path / "last.npz").exists() and not (tmp_path / "best.safetensors.k3j9x2.tmp").exists()
    assert {name: (tmp_path / name).read_bytes() for name in mine} == mine


def test_the_partial_write_pattern_is_atomic_write_s(tmp_path):
    from minitf.atomic_file import atomic_write, is_temporary_of
    seen = []
    atomic_write(tmp_path / "last.safetensors", lambda tmp: seen.append(tmp) or tmp.write_bytes(b"x"))
    assert is_temporary_of(seen[0], "last.safetensors") and not is_temporary_of(seen[0], "last")


# ---- the lock file and the folder's path ---------------------------------------------------------

@needs_flock
def test_a_lock_file_that_is_a_symlink_is_refused_and_its_target_kept(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / ".lock").symlink_to(victim)
    with pytest.raises(ConfigError, match=r"lock file .*\.lock is a symbolic link"):
        RunLock(out).acquire()
    assert victim.read_text() == "precious"


@needs_flock
def test_a_lock_file_that_is_not_a_regular_file_is_refused(tmp_path):
    os.mkfifo(tmp_path / ".lock")
    with pytest.raises(ConfigError, match="is not a regular file"):
        RunLock(tmp_path).acquire()


@needs_flock
def test_a_refused_lock_leaves_the_holder_s_pid(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(ConfigError, match=f"process {os.getpid()}"):
            RunLock(tmp_path).acquire()
        assert (tmp_path / ".lock").read_text() == str(os.getpid())


@pytest.mark.parametrize("below", ["", "sub"])
def test_a_dangling_symlink_as_out_dir_is_named(tmp_path, below):
    (tmp_path / "lnk").symlink_to(tmp_path / "gone")
    with pytest.raises(ConfigError, match="lnk is a symbolic link to a missing folder"):
        tiny_trainer(tmp_path / "lnk" / below)
