"""Data-parallel benchmark: all-reduce speed, the reference step on 1 vs 2 processes, and scaling on paper.

    python tools/bench_distributed.py                    # all three parts (needs mpi4py + mpiexec)
    python tools/bench_distributed.py --part allreduce   # latency and bandwidth by message size
    python tools/bench_distributed.py --part step --rounds 3
    python tools/bench_distributed.py --part model --step-ms 600 --grad-mb 43

allreduce: `mpiexec -n 2` processes sum float32 buffers of 4 B .. 64 MB through
minitf.distributed's MPI communicator; median time, algorithm bandwidth (bytes / time)
and bus bandwidth (x 2 (N-1) / N, what a ring moves per link).

step: bench_step's reference model (d_model 256, 3+3 layers, batch 64 x 32) trained with
AdamW on one global batch: 1 process x 2 BLAS threads against 2 processes x 1 thread, each
with half the rows, gradients summed by DistributedDataParallel (25 MB buckets). Reports
step times, the all-reduce time of all gradients when run on its own after backward, the
time a step still waits for it after backward (`ddp.wait()`, on the rank that finished
backward last), and the share hidden under backward. The two
set-ups alternate for --rounds rounds.

model: predicted weak-scaling efficiency (per-process batch fixed) for N nodes, from a
measured step time and gradient size: a ring all-reduce takes
    t(N) = 2 (N-1)/N * bytes / bandwidth + 2 (N-1) * latency,
of which the same share stays exposed as measured by `step` (1 - hidden), and at least the
last bucket's all-reduce (it starts when backward ends) and whatever outlasts the backward
pass: exposed = max((1 - hidden) t(N), t_last(N), t(N) - backward); efficiency = step /
(step + exposed). Assumptions are printed with the table.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import machine  # tools/machine.py

SIZES = [4 * 4**k for k in range(13)]  # 4 B .. 64 MB
NETWORKS = {  # name: (bandwidth bytes/s per link, latency s per ring step)
    "10 Gb/s Ethernet": (1.25e9 * 0.9, 30e-6),
    "100 Gb/s InfiniBand": (12.5e9 * 0.9, 2e-6),
    "NVLink (8 GPUs, one node)": (150e9, 5e-6),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["all", "allreduce", "step", "model"], default="all")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--step-ms", type=float, help="model: a measured step time (default: from --part step)")
    parser.add_argument("--grad-mb", type=float, help="model: gradient megabytes (default: from --part step)")
    parser.add_argument("--hidden", type=float, help="model: share of the all-reduce hidden under backward")
    parser.add_argument("--gpu-step-ms", type=float, default=30.0,
                        help="model: the step time assumed for one GPU in the NVLink row (no GPU measured here)")
    parser.add_argument("--last-bucket-mb", type=float,
                        help="model: the bucket completed last, at the end of backward (never hidden)")
    parser.add_argument("--worker", choices=["allreduce", "step"], help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return run_worker(args)
    print(f"machine: {machine.describe()}")
    step = None
    if args.part in ("all", "allreduce"):
        print_allreduce(spawn("allreduce", 2, 1, args))
    if args.part in ("all", "step"):
        step = bench_step(args)
    if args.part in ("all", "model"):
        print_model(args, step)


# ---- parent ------------------------------------------------------------------------------

def mpiexec() -> str:
    found = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
    if found is None:
        raise SystemExit('mpiexec not found: pip install ".[mpi]" from the minitf checkout')
    return found


def spawn(worker: str, processes: int, threads: int, args: argparse.Namespace) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    cmd = [mpiexec(), "-n", str(processes), sys.executable, __file__, "--worker", worker,
           "--threads", str(threads), "--repeats", str(args.repeats)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{worker} worker failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_allreduce(results: dict) -> None:
    print("\nall-reduce (sum, float32), 2 processes, MPI:")
    print("| bytes | median time (us) | algorithm bandwidth (GB/s) | bus bandwidth (GB/s) |")
    print("|---:|---:|---:|---:|")
    for size, seconds in zip(results["sizes"], results["seconds"]):
        alg = size / seconds / 1e9
        print(f"| {size:,} | {seconds * 1e6:,.1f} | {alg:.2f} | {alg * 2 * (2 - 1) / 2:.2f} |")


def bench_step(args: argparse.Namespace) -> dict:
    runs = {"1 x 2 threads": [], "2 x 1 thread": []}
    for _ in range(args.rounds):
        runs["1 x 2 threads"].append(spawn("step", 1, 2, args))
        runs["2 x 1 thread"].append(spawn("step", 2, 1, args))
    med = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()}
    one, two = med["1 x 2 threads"], med["2 x 1 thread"]
    print(f"\nreference step, global batch 64 x 32, medians of {args.rounds} alternating rounds:")
    print("| set-up | step (ms) | backward (ms) | all-reduce alone (ms) | waited after backward (ms) | hidden |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in med.items():
        hidden = 1 - r["waited_ms"] / r["allreduce_ms"] if r["allreduce_ms"] else float("nan")
        print(f"| {name} | {r['step_ms']:,.0f} | {r['backward_ms']:,.0f} | {r['allreduce_ms']:.1f} | "
              f"{r['waited_ms']:.1f} | {hidden:.0%} |")
    per_round = ", ".join(f"{b['step_ms'] / a['step_ms']:.2f}" for a, b in zip(*runs.values()))
    print(f"2 processes / 1 process step time: {two['step_ms'] / one['step_ms']:.2f} (per round: {per_round})")
    hidden = min(1.0, max(0.0, 1 - two["waited_ms"] / two["allreduce_ms"])) if two["allreduce_ms"] else 0.0
    return {"step_ms": one["step_ms"], "grad_mb": one["grad_mb"], "hidden": hidden,
            "last_bucket_mb": one["last_bucket_mb"], "backward_ms": one["backward_ms"]}


def ring_seconds(n: int, nbytes: float, bandwidth: float, latency: float) -> float:
    return 2 * (n - 1) / n * nbytes / bandwidth + 2 * (n - 1) * latency


def print_model(args: argparse.Namespace, step: dict | None) -> None:
    step = step or {}
    cpu_step_ms = args.step_ms or step.get("step_ms")
    grad_mb = args.grad_mb or step.get("grad_mb")
    hidden = args.hidden if args.hidden is not None else step.get("hidden", 0.0)
    last_mb = args.last_bucket_mb if args.last_bucket_mb is not None else step.get("last_bucket_mb", grad_mb)
    backward_share = step["backward_ms"] / step["step_ms"] if "backward_ms" in step else 2 / 3
    if cpu_step_ms is None or grad_mb is None:
        raise SystemExit("--part model needs --step-ms and --grad-mb (or run --part step first)")
    nodes = [2, 4, 8, 16, 32, 64]
    print(f"\npredicted weak-scaling efficiency: step {cpu_step_ms:.0f} ms on one node, {grad_mb:.1f} MB of "
          f"gradients, ring all-reduce at 90% of line rate; {hidden:.0%} of it hidden under the backward pass "
          f"({backward_share:.0%} of the step) as measured, never the last bucket ({last_mb:.1f} MB):")
    print("| network | " + " | ".join(f"{n} nodes" for n in nodes) + " |")
    print("|---|" + "---:|" * len(nodes))
    for name, (bandwidth, latency) in NETWORKS.items():
        cells = []
        gpu = name.startswith("NVLink")
        step_ms = args.gpu_step_ms if gpu else cpu_step_ms
        for n in nodes:
            if gpu and n > 8:
                cells.append("-")
                continue
            comm = ring_seconds(n, grad_mb * 2**20, bandwidth, latency) * 1000
            last = ring_seconds(n, last_mb * 2**20, bandwidth, latency) * 1000
            exposed = max((1 - hidden) * comm, last, comm - backward_share * step_ms)
            cells.append(f"{step_ms / (step_ms + exposed):.0%}")
        print(f"| {name}{f' (assumed GPU step {step_ms:g} ms)' if gpu else ''} | " + " | ".join(cells) + " |")


# ---- workers -------------------------------------------------------------------------------

def run_worker(args: argparse.Namespace) -> None:
    from minitf.distributed.mpi import MPICommunicator

    comm = MPICommunicator()
    result = allreduce_worker(comm, args) if args.worker == "allreduce" else step_worker(comm, args)
    if comm.rank == 0:
        print(json.dumps(result))


def allreduce_worker(comm, args) -> dict:
    import numpy as np

    seconds = []
    for size in SIZES:
        buffer = np.ones(size // 4, dtype=np.float32)
        times = []
        for _ in range(args.repeats * 4 + 2):
            comm.barrier()
            t0 = time.perf_counter()
            comm.allreduce(buffer)
            times.append(time.perf_counter() - t0)
        seconds.append(statistics.median(times[2:]))
    return {"sizes": SIZES, "seconds": seconds}


def step_worker(comm, args) -> dict:
    import numpy as np

    import minitf as mt
    import minitf.functional as F
    from minitf.distributed import DistributedDataParallel
    from minitf.nn import Seq2SeqTransformer, TransformerConfig
    from minitf.optim import AdamW

    from bench_step import CONFIGS, DROPOUT, LABEL_SMOOTHING, PAD

    c = CONFIGS["ref"]
    mt.manual_seed(0)
    model = Seq2SeqTransformer(TransformerConfig(c["vocab"], c["vocab"], c["d_model"], c["heads"], c["layers"],
                                                 c["layers"], c["ff"], DROPOUT, max_len=256, pad_id=PAD))
    ddp = DistributedDataParallel(model, comm)
    optimizer = AdamW(model.parameters(), lr=1e-4)
    rng = np.random.default_rng(0)
    src = rng.integers(1, c["vocab"], (c["batch"], c["src_len"]))[comm.rank::comm.size]
    tgt = rng.integers(1, c["vocab"], (c["batch"], c["tgt_len"] + 1))[comm.rank::comm.size]
    mask = np.ones(src.shape, dtype=bool)
    total = comm.allreduce_numbers([tgt[:, 1:].size])[0]
    timings: dict[str, list[float]] = {"step_ms": [], "backward_ms": [], "waited_ms": [], "allreduce_ms": []}

    def step() -> None:
        t0 = time.perf_counter()
        logits = ddp(src, tgt[:, :-1], mask)
        loss = F.cross_entropy(logits, tgt[:, 1:], ignore_index=PAD, label_smoothing=LABEL_SMOOTHING,
                               reduction="sum") / total
        optimizer.zero_grad()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        ddp.wait()  # what the step still waits for the transfers
        t3 = time.perf_counter()
        ddp.finish()  # (now only unpacks the sums into .grad)
        optimizer.step()
        timings["step_ms"].append((time.perf_counter() - t0) * 1000)
        timings["backward_ms"].append((t2 - t1) * 1000)
        # The rank that finishes backward last waits only for the transfer that is left; an
        # earlier rank also waits for it (load imbalance), so count the smallest wait.
        waits = comm.allreduce_numbers([(t3 - t2) * 1000 if r == comm.rank else 0.0 for r in range(comm.size)])
        timings["waited_ms"].append(min(waits))
        comm.barrier()  # the same buffers again, on their own: what the overlap saves
        t4 = time.perf_counter()
        for bucket in ddp.buckets:
            comm.allreduce(bucket.buffer)
        timings["allreduce_ms"].append((time.perf_counter() - t4) * 1000 if comm.size > 1 else 0.0)

    for _ in range(2):
        step()
    for values in timings.values():
        values.clear()
    for _ in range(args.repeats):
        step()
    result = {k: statistics.median(v) for k, v in timings.items()}
    result["grad_mb"] = sum(p.data.nbytes for p in model.parameters()) / 2**20
    result["last_bucket_mb"] = ddp.buckets[-1].buffer.nbytes / 2**20
    return result


if __name__ == "__main__":
    main()
