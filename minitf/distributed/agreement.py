"""Checks that the processes of a job agree: the same settings and data, so the same run.

    check_same_settings(comm, {"lr": 1e-3, "training pairs": 20000, ...})

Processes started with different settings (a flag typed differently on one machine, other
data files) would otherwise train together on inconsistent batches, or wait for each other
forever. Every rank sends a digest of its settings; only when they differ are the settings
themselves gathered, to name the first that differs and its value on each rank. Both go
through `allreduce_numbers`, so every backend supports them.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from ..errors import ConfigError
from .comm import Communicator


def digest(value: Any) -> int:
    """A 48-bit digest of a JSON-like value (exact as a float64; dict order does not matter)."""
    text = json.dumps(value, sort_keys=True, default=str)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:6], "big")


def gather_numbers(comm: Communicator, value: float) -> list[float]:
    """Every rank's `value`, in rank order (a sum all-reduce of one slot per rank)."""
    slots = [0.0] * comm.size
    slots[comm.rank] = float(value)
    return comm.allreduce_numbers(slots)


def gather_text(comm: Communicator, text: str) -> list[str]:
    """Every rank's `text`, in rank order (its UTF-8 bytes as numbers, one row per rank)."""
    data = text.encode()
    lengths = [int(n) for n in gather_numbers(comm, len(data))]
    width = max(lengths)
    slots = [0.0] * (comm.size * width)
    slots[comm.rank * width:comm.rank * width + len(data)] = data
    values = comm.allreduce_numbers(slots)
    return [bytes(int(v) for v in values[r * width:r * width + n]).decode() for r, n in enumerate(lengths)]


def check_same_settings(comm: Communicator, settings: dict[str, Any]) -> None:
    """Return if every rank holds equal `settings` (JSON-like values); else raise ConfigError, on
    every rank, naming the first setting that differs (in `settings`' order) and its values."""
    if comm.size == 1 or len(set(gather_numbers(comm, digest(settings)))) == 1:
        return
    everyone = [json.loads(text) for text in gather_text(comm, json.dumps(settings, default=str))]
    names = list(dict.fromkeys(name for ranks_settings in everyone for name in ranks_settings))
    for name in names:
        values = [ranks_settings.get(name) for ranks_settings in everyone]
        if any(v != values[0] for v in values):
            raise ConfigError(f"the {comm.size} processes were not started alike: setting {name!r} is "
                              f"{_by_rank(values)}; start every process with the same settings and data")


def _by_rank(values: list[Any]) -> str:
    """"1 on ranks 0, 2 and 2 on rank 1": each distinct value with the ranks that hold it."""
    groups: dict[str, list[int]] = {}
    for rank, value in enumerate(values):
        groups.setdefault(json.dumps(value), []).append(rank)
    return " but ".join(f"{text} on rank{'s' * (len(ranks) > 1)} {', '.join(map(str, ranks))}"
                        for text, ranks in groups.items())


def check_resumed_processes(source: str, saved: dict[str, Any], saved_processes: int | None,
                            config: Any, processes: int) -> None:
    """Return if a run saved by `saved_processes` processes (None: not recorded) continues exactly
    on `processes`; else raise ConfigError saying how to resume it.

    `saved`: the run's training settings; `config`: the resumed ones (max_tokens, accumulate,
    dropout). Another number of processes continues exactly when a step keeps its tokens
    (max_tokens x processes x accumulate: the batcher then cuts the same batches, and the
    gradients are equal up to float rounding) and there is no dropout (each process draws its
    own masks).
    """
    if saved_processes is None or saved_processes == processes:
        return
    step = saved["max_tokens"] * saved_processes * saved["accumulate"]
    now = config.max_tokens * processes * config.accumulate
    if step == now and config.dropout == 0:
        return
    hint = ""
    if config.dropout != 0:
        why = (f"with dropout {config.dropout} each process draws its own masks, so another number "
               "of processes cannot continue the run exactly")
    else:
        why = (f"a step took {saved['max_tokens']} tokens x {_processes(saved_processes)} x accumulate "
               f"{saved['accumulate']} = {step} tokens, and would take {now} (other batches)")
        accumulate, rest = divmod(step, config.max_tokens * processes)
        if accumulate >= 1 and rest == 0:
            hint = f", or keep {step} tokens a step on {_processes(processes)} with --accumulate {accumulate}"
    raise ConfigError(f"{source} was trained by {_processes(saved_processes)}, not {processes}: {why}. "
                      f"Resume it on {_processes(saved_processes)}{hint}")


def _processes(n: int) -> str:
    return f"{n} process" + "es" * (n != 1)
