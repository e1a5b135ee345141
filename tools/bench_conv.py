"""Convolution and pooling: minitf against PyTorch CPU, forward + backward, in one process.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=. /work/venv-torch/bin/python tools/bench_conv.py
    ... tools/bench_conv.py --threads 2 --rounds 7 --repeats 5 --only conv2

The layers of the classic MNIST CNN (batch 64, 1x28x28 -> conv 32 3x3 -> conv 64 3x3 ->
max pool 2) and of its 8x8-digits variant, float32. Each case is one row of CASES: a name,
the minitf call, the PyTorch call (both on their own tensors) and the input shapes. One
timing is forward + backward with a fixed random cotangent. The frameworks alternate
within each round (the machine is shared and drifts); the table shows the medians over
the rounds and their ratio. The BLAS that NumPy uses is named (threadpoolctl).
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable, NamedTuple

import numpy as np

import minitf
import minitf.functional as F


class BenchCase(NamedTuple):
    name: str
    ours: Callable[..., Any]
    theirs: Callable[..., Any]
    shapes: tuple[tuple[int, ...], ...]


def _cases(tF: Any) -> list[BenchCase]:
    """The table: each call takes the tensors made from `shapes`, in order."""
    return [
        BenchCase("conv1 1->32 3x3 28x28", F.conv2d, tF.conv2d, ((64, 1, 28, 28), (32, 1, 3, 3), (32,))),
        BenchCase("conv2 32->64 3x3 26x26", F.conv2d, tF.conv2d, ((64, 32, 26, 26), (64, 32, 3, 3), (64,))),
        BenchCase("max_pool2d 2 64x24x24", lambda x: F.max_pool2d(x, 2), lambda x: tF.max_pool2d(x, 2),
                  ((64, 64, 24, 24),)),
        BenchCase("digits conv1 1->32 3x3 8x8", F.conv2d, tF.conv2d, ((64, 1, 8, 8), (32, 1, 3, 3), (32,))),
        BenchCase("digits conv2 32->64 3x3 6x6", F.conv2d, tF.conv2d, ((64, 32, 6, 6), (64, 32, 3, 3), (64,))),
        BenchCase("digits max_pool2d 2 64x4x4", lambda x: F.max_pool2d(x, 2), lambda x: tF.max_pool2d(x, 2),
                  ((64, 64, 4, 4),)),
        BenchCase("conv2 forward only", lambda *t: F.conv2d(*t).detach(), tF.conv2d,
                  ((64, 32, 26, 26), (64, 32, 3, 3), (64,))),
    ]


def _step_minitf(case: BenchCase, arrays: list[np.ndarray], cotangent: np.ndarray | None) -> Callable[[], None]:
    tensors = [minitf.Tensor(a, requires_grad=cotangent is not None) for a in arrays]
    g = None if cotangent is None else minitf.Tensor(cotangent)

    def step() -> None:
        for t in tensors:
            t.grad = None
        out = case.ours(*tensors)
        if g is not None:
            out.backward(g)
    return step


def _step_torch(torch: Any, case: BenchCase, arrays: list[np.ndarray],
                cotangent: np.ndarray | None) -> Callable[[], None]:
    tensors = [torch.tensor(a, requires_grad=cotangent is not None) for a in arrays]
    g = None if cotangent is None else torch.tensor(cotangent)

    def step() -> None:
        for t in tensors:
            t.grad = None
        out = case.theirs(*tensors)
        if g is not None:
            out.backward(g)
    return step


def _time(step: Callable[[], None], repeats: int, budget_s: float = 0.25) -> float:
    """Median ms of at least `repeats` timed steps after a warm-up; fast steps are repeated until
    they fill `budget_s`, so that sub-millisecond cases get enough samples on a noisy machine."""
    step()  # warm-up
    times: list[float] = []
    while len(times) < repeats or (sum(times) < budget_s and len(times) < 500):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def blas_name() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (install threadpoolctl)"
    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    return ", ".join(f"{i['internal_api']} {i['version']} {i.get('architecture')} ({i['num_threads']} threads)"
                     for i in blas) or "none found"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per round at least")
    parser.add_argument("--only", help="run the cases whose name contains this")
    parser.add_argument("--release-freed-memory", action="store_true",
                        help="leave glibc's malloc at its defaults (by default the process keeps freed "
                             "memory for reuse, minitf.backend.retain_freed_memory, as `minitf train` does)")
    args = parser.parse_args()
    if not args.release_freed_memory:
        minitf.backend.retain_freed_memory()  # one process: PyTorch's CPU allocator gains as well
    import torch
    from threadpoolctl import threadpool_limits
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    print(f"NumPy {np.__version__}, BLAS: {blas_name()}; PyTorch {torch.__version__} "
          f"({torch.get_num_threads()} threads); float32, forward + backward, median ms")
    print(f"{'case':32} {'minitf':>9} {'torch':>9} {'ratio':>7}")
    rng = np.random.default_rng(0)
    for case in _cases(torch.nn.functional):
        if args.only and args.only not in case.name:
            continue
        arrays = [rng.standard_normal(s).astype(np.float32) for s in case.shapes]
        with torch.no_grad():
            out_shape = tuple(case.theirs(*[torch.tensor(a) for a in arrays]).shape)
        cotangent = None if "forward only" in case.name else rng.standard_normal(out_shape).astype(np.float32)
        ours = _step_minitf(case, arrays, cotangent)
        theirs = _step_torch(torch, case, arrays, cotangent)
        rounds = [(_time(ours, args.repeats), _time(theirs, args.repeats)) for _ in range(args.rounds)]
        mine, ref = (statistics.median(r[i] for r in rounds) for i in (0, 1))
        print(f"{case.name:32} {mine:9.2f} {ref:9.2f} {mine / ref:6.2f}x")


if __name__ == "__main__":
    main()
