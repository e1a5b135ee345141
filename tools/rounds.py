"""The side-by-side pattern of the framework benchmarks (bench_higher_order, bench_rnn, bench_pretrained): each
framework measured in a subprocess of its own (the same script with `--worker NAME`), the frameworks
alternating for several rounds, who goes first too (shared machines drift: alternating spreads the drift
over both), and each measure the median of repeated calls.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Callable


FRAMEWORKS = ["minitf", "torch"]


def add_round_arguments(p: argparse.ArgumentParser, repeats: int, warmup: int, rounds: int) -> None:
    """--threads, --repeats, --warmup, --rounds, --only and the hidden --worker of a side-by-side benchmark."""
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=repeats)
    p.add_argument("--warmup", type=int, default=warmup)
    p.add_argument("--rounds", type=int, default=rounds)
    p.add_argument("--only", choices=FRAMEWORKS)
    p.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)


def timed(fn: Callable[[], object], repeats: int, warmup: int) -> float:
    """Median ms of `repeats` calls of fn after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def spawn(script: str, framework: str, threads: int, extra: list[str] = ()) -> dict:
    """Run `script` with this process's arguments, `extra` and `--worker framework` on `threads` threads;
    return the JSON its last line of output prints (exit with its error output if it fails)."""
    env = {**os.environ, "MINITF_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, script, *sys.argv[1:], *extra, "--worker", framework]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        sys.exit(f"{framework} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def alternate(frameworks: list[str], rounds: int, measure: Callable[[str, int], dict]) -> list[dict]:
    """[{framework: measure(framework, round)}] for each round, the frameworks' order reversed every
    other round."""
    results = []
    for r in range(rounds):
        order = frameworks if r % 2 == 0 else frameworks[::-1]
        results.append({name: measure(name, r) for name in order})
    return results
