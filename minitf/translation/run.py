"""The run folder of `minitf train`: its files, the check that it holds no other run, its lock, its
log; and the signals that stop a run gracefully.

A run folder holds log.jsonl, best.safetensors and last.safetensors, with --keep-checkpoints N
the epoch checkpoints of its last N evaluations (EPOCH_CHECKPOINT), and `.lock`, which the
writing process holds (flock) while it trains, so that a second run into the same folder stops
at its start instead of interleaving the log and overwriting the checkpoints.
"""
from __future__ import annotations

import json
import math
import os
import re
import signal
import stat
from pathlib import Path
from typing import IO, Any, Callable

from ..atomic_file import is_temporary_of
from ..errors import ConfigError

try:
    import fcntl
except ImportError:  # not on POSIX: no lock
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"
LOG_NAME = "log.jsonl"
CHECKPOINT_NAMES = ("best", "last")
CHECKPOINT_SUFFIXES = (".safetensors", ".npz")  # what minitf writes, and version 1 (still read)
RUN_NAMES = (LOG_NAME,) + tuple(name + suffix for name in CHECKPOINT_NAMES for suffix in CHECKPOINT_SUFFIXES)
"""The files of a run: nothing else in its folder is minitf's to report or delete."""
EPOCH_CHECKPOINT = re.compile(r"epoch(\d+)(?:-step(\d+))?\.safetensors")
"""The weights of one evaluation (--keep-checkpoints): `epoch<E>.safetensors` after epoch E's last
batch, `epoch<E>-step<S>.safetensors` when a limit (--max-steps, --time-limit) ended training at
step S inside epoch E. They are files of the run too."""


def epoch_checkpoint_name(epoch: int, step: int, complete: bool) -> str:
    """The file name of the evaluation of (1-based) `epoch` at `step` (EPOCH_CHECKPOINT)."""
    return f"epoch{epoch}.safetensors" if complete else f"epoch{epoch}-step{step}.safetensors"


def epoch_checkpoints(out_dir: Path) -> list[Path]:
    """The epoch checkpoints in `out_dir`, oldest first (by epoch; within an epoch, an evaluation
    cut by a limit before the epoch's end)."""
    def order(path: Path) -> tuple[int, float]:
        match = EPOCH_CHECKPOINT.fullmatch(path.name)
        assert match is not None
        return int(match[1]), math.inf if match[2] is None else int(match[2])

    found = [f for f in out_dir.iterdir() if EPOCH_CHECKPOINT.fullmatch(f.name) and f.is_file()]
    return sorted(found, key=order)


def prune_epoch_checkpoints(out_dir: Path, keep: int) -> list[Path]:
    """Delete the epoch checkpoints beyond the newest `keep`; return the deleted ones."""
    files = epoch_checkpoints(out_dir)
    old = files[:max(len(files) - keep, 0)]
    for path in old:
        path.unlink()
    return old


def is_run_file(name: str) -> bool:
    """Whether a file called `name` is one of a run's (RUN_NAMES or an epoch checkpoint)."""
    return name in RUN_NAMES or EPOCH_CHECKPOINT.fullmatch(name) is not None


def out_dir_path(out_dir: str) -> Path:
    """`out_dir` as a Path; ConfigError for an empty one (which would be the current folder)."""
    if not out_dir.strip():
        raise ConfigError(f"setting 'out_dir' must name a folder, got {out_dir!r}")
    path = Path(out_dir)
    for part in (path, *path.parents):  # which mkdir would otherwise report as "File exists"
        if part.is_symlink() and not part.exists():
            raise ConfigError(f"output folder {out_dir}: {part} is a symbolic link to a missing folder "
                              f"({os.readlink(part)})")
    return path


def run_files(out_dir: Path) -> list[Path]:
    """The files of a run in `out_dir` (RUN_NAMES), and the partial writes of each that a killed
    run left (atomic_write's temporary files): the log first, then by name."""
    files = sorted(f for f in out_dir.iterdir() if f.name != LOG_NAME and f.is_file()
                   and (is_run_file(f.name) or is_partial(f)))
    return [f for f in [out_dir / LOG_NAME] if f.is_file()] + files


def is_partial(path: Path) -> bool:
    """A temporary file that a killed write of a run's file left behind."""
    epoch = EPOCH_CHECKPOINT.match(path.name)
    return any(is_temporary_of(path, name) for name in RUN_NAMES) or bool(epoch and is_temporary_of(path, epoch[0]))


def check_out_dir(out_dir: Path, overwrite: bool) -> bool:
    """Raise ConfigError if `out_dir` is a file, or holds a run and `overwrite` is false; return
    whether there are files to delete before training. The error suggests only what exists:
    `--resume` with a checkpoint in the folder, else --overwrite."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"output folder {out_dir} is a file, not a folder")
    files = run_files(out_dir) if out_dir.is_dir() else []
    finished = [f for f in files if not is_partial(f)]
    if finished and not overwrite:
        names = ", ".join(f.name for f in finished)
        resumable = [f for f in finished if f.name.startswith(("last.", "best."))]
        if resumable:  # last before best (best may be older)
            start = f"already holds a run ({names}): continue it with `--resume {resumable[-1]}`, "
        else:
            start = f"holds an unfinished run with no checkpoint to resume ({names}): "
        raise ConfigError(f"{out_dir} {start}start afresh there with --overwrite (deletes those files), "
                          "or choose another --out-dir")
    return bool(files)


def prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    """check_out_dir, then delete the old run's files (with `overwrite`)."""
    if check_out_dir(out_dir, overwrite):
        for path in run_files(out_dir):
            path.unlink()


def append_log(out_dir: Path, record: dict[str, Any]) -> None:
    """Add one JSON line to the run's log."""
    with open(out_dir / LOG_NAME, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def _open_lock_file(path: Path) -> IO[str]:
    """`path` opened for reading and writing (created if absent, never truncated); ConfigError if
    it is a symbolic link (the lock would write through it) or not a regular file."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    if path.is_symlink():  # O_NOFOLLOW's error (ELOOP) does not say it; this check does, first
        raise ConfigError(f"lock file {path} is a symbolic link (to {os.readlink(path)}): minitf makes a plain file "
                          "there; remove the link")
    fd = os.open(path, flags, 0o644)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ConfigError(f"lock file {path} is not a regular file: remove it")
    return os.fdopen(fd, "r+", encoding="utf-8")


class RunLock:
    """An exclusive, non-blocking flock on `<out_dir>/.lock` (creating the folder), holding this
    process's pid. Another process holding it raises ConfigError naming the folder and that pid.
    The kernel drops a flock when its process dies, so a killed run never blocks the next.
    Without fcntl (not POSIX) it locks nothing."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.file: IO[str] | None = None

    def acquire(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if fcntl is None or self.file is not None:
            return
        file = _open_lock_file(self.out_dir / LOCK_NAME)
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            file.seek(0)
            pid = file.read().strip()
            file.close()
            who = f"process {pid}" if pid.isdigit() else "another process"
            raise ConfigError(f"{self.out_dir} is in use: {who} is training into it "
                              "(wait for it, or choose another --out-dir)") from None
        file.seek(0)
        file.truncate()  # only now: the holder's pid stays readable to the refused
        file.write(str(os.getpid()))
        file.flush()
        self.file = file

    def check_free(self) -> None:
        """Raise ConfigError, as acquire() would, if another process holds the lock now (holding
        nothing afterwards, and creating no folder): a run can stop before its data work."""
        if self.out_dir.is_dir():
            self.acquire()
            self.release()

    def release(self) -> None:
        if self.file is not None:
            self.file.close()  # closing the last descriptor drops the flock
            self.file = None

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class graceful_interrupt:
    """While inside, Ctrl-C (SIGINT) and SIGTERM call `handle` with the signal's name ("Ctrl-C",
    "SIGTERM") instead of interrupting; the trainer's handler asks it to stop after the current
    step (and raises KeyboardInterrupt at a second signal). Outside the main thread it does nothing."""

    SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM") if hasattr(signal, name))

    def __init__(self, handle: Callable[[str], None]) -> None:
        self.handle = handle
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> None:
        try:
            for signum in self.SIGNALS:
                self.previous[signum] = signal.signal(signum, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            pass

    def _handle(self, signum: int, frame: Any) -> None:
        self.handle("Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name)

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self.previous.items():
            signal.signal(signum, previous)
