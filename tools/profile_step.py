"""Where minitf's training step spends its time: per op, forward and backward, against its matmul floor.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tools/profile_step.py           # table + floor
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tools/profile_step.py --floor   # floor only

The model, data and step are those of tools/bench_step.py (--config ref: d_model 256, 4 heads,
3+3 layers, ff 1024, vocab 8000, batch 64 x 32, dropout 0.1, label smoothing 0.1, Adam).

Forward: `Tensor.from_op` is wrapped so that each new node is charged the wall time since the
previous node was made (the op's own work plus the Python of the module code that led to it),
under the name of the function that defined its backward closure. Backward: each backward
closure is wrapped with a timer; what the engine does between closures (summing broadcast
gradients back, adding the gradients of tensors used twice, ordering the graph) is the row
"autograd engine". The optimizer's step and zero_grad are rows of their own.

The floor (--floor, and printed above the table) times the step's matrix products alone: the
same GEMM shapes and operand layouts (transposed views, permuted head views) that linear,
feed_forward and scaled_dot_product_attention multiply, forward and backward, each product
timed separately (median of --repeats) with NumPy's own BLAS on --threads threads, and summed.
The step over that floor is what the element-wise passes, reductions, copies, allocation and
Python cost (and any product minitf runs slower than NumPy's BLAS would). The table gives each
op's share of the floor and the rest of its time.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402 (tools/machine.py)
from bench_step import CONFIGS, DROPOUT, LABEL_SMOOTHING, PAD  # noqa: E402


CLOCK = [time.perf_counter]  # wall time; --cpu-time: this process's CPU time (time.process_time)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="ref")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5, help="profiled steps (after --warmup)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7, help="timings of each product for the floor")
    parser.add_argument("--floor", action="store_true", help="only the matmul floor")
    parser.add_argument("--time-only", action="store_true",
                        help="only the unprofiled step time (to compare two trees through PYTHONPATH)")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time with the process's CPU time instead of the wall clock: steadier on a busy "
                             "machine with --threads 1 (with more threads it adds up the threads' time)")
    parser.add_argument("--retain-freed-memory", action="store_true",
                        help="keep freed memory for reuse (minitf.cpu.retain_freed_memory, as `minitf train`)")
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var) != str(args.threads):  # BLAS reads these once, at import: re-exec
            os.environ.update(OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads),
                              MKL_NUM_THREADS=str(args.threads))
            os.execv(sys.executable, [sys.executable, *sys.argv])
    c = CONFIGS[args.config]
    if args.cpu_time:
        CLOCK[0] = time.process_time
    if args.retain_freed_memory:
        from minitf import cpu

        cpu.retain_freed_memory()
    if args.time_only:
        times = step_times(c, args)
        import minitf  # noqa: PLC0415

        print(f"minitf from {os.path.dirname(minitf.__file__)}: ", end="")
        print(f"step ms ({'CPU' if args.cpu_time else 'wall'} time): median {statistics.median(times):.1f} min {min(times):.1f} "
              f"({', '.join(f'{t:.0f}' for t in times)})")
        return
    print(f"machine: {machine.describe()}")
    print(f"config {args.config}: {c}; threads {args.threads}; load average {os.getloadavg()[0]:.2f}; "
          f"{'CPU' if args.cpu_time else 'wall'} time"
          f"{'; keeping freed memory' if args.retain_freed_memory else ''}")
    floor_ms, floor_by_op = floor(c, args)
    if not args.floor:
        step_ms = profile(c, args, floor_by_op)
        print(f"step (unprofiled, median of {2 * args.steps}) {step_ms:.1f} ms = {step_ms / floor_ms:.2f}x "
              f"its matmul floor of {floor_ms:.1f} ms")


# ---- the step -------------------------------------------------------------------------------

def build(c: dict):
    import numpy as np

    import minitf as mt
    import minitf.functional as F
    from minitf.nn import Seq2SeqTransformer, TransformerConfig
    from minitf.optim import Adam

    rng = np.random.default_rng(0)
    src = rng.integers(1, c["vocab"], (c["batch"], c["src_len"]))
    tgt = rng.integers(1, c["vocab"], (c["batch"], c["tgt_len"] + 1))
    mt.manual_seed(0)
    model = Seq2SeqTransformer(TransformerConfig(c["vocab"], c["vocab"], c["d_model"], c["heads"], c["layers"],
                                                 c["layers"], c["ff"], DROPOUT, max_len=256, pad_id=PAD))
    opt = Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-9)
    mask = np.ones(src.shape, dtype=bool)
    ti, to = tgt[:, :-1], tgt[:, 1:]

    def loss_fn():
        return F.cross_entropy(model(src, ti, mask), to, ignore_index=PAD, label_smoothing=LABEL_SMOOTHING)

    return loss_fn, opt


def op_name(backward) -> str:
    """'linear' for linear.<locals>.backward; 'Tensor.__add__' style names kept as they are."""
    qualname = getattr(backward, "__qualname__", "?")
    return qualname.split(".<locals>")[0]


def step_times(c: dict, args: argparse.Namespace, built=None) -> list[float]:
    """Wall times (ms) of args.steps training steps after args.warmup, without timers."""
    loss_fn, opt = built or build(c)

    def step():
        loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        t0 = CLOCK[0]()
        step()
        times.append((CLOCK[0]() - t0) * 1000)
    return times


def profile(c: dict, args: argparse.Namespace, floor_by_op: dict[str, float]) -> float:
    """Print the per-op table (with each op's share of the matmul floor and the rest of its
    time); return the median unprofiled step time in ms."""
    from minitf.autograd import Tensor

    loss_fn, opt = build(c)
    plain = step_times(c, args, (loss_fn, opt))

    fwd, bwd, count = defaultdict(float), defaultdict(float), defaultdict(int)
    clock = {"last": 0.0}
    original = Tensor.from_op

    def timed_backward(name, backward):
        def run(g):
            t0 = CLOCK[0]()
            out = backward(g)
            bwd[name] += CLOCK[0]() - t0
            return out
        run.__qualname__ = backward.__qualname__
        return run

    def make(data, parents=(), backward=None):
        now = CLOCK[0]()
        name = op_name(backward) if backward is not None else "(no graph)"
        fwd[name] += now - clock["last"]
        count[name] += 1
        if backward is not None:
            backward = timed_backward(name, backward)
        t = original(data, parents, backward)
        clock["last"] = CLOCK[0]()
        return t

    totals = defaultdict(float)
    Tensor.from_op = staticmethod(make)
    try:
        for _ in range(args.steps):
            t0 = clock["last"] = CLOCK[0]()
            loss = loss_fn()
            t1 = CLOCK[0]()
            fwd["(forward after the last node)"] += t1 - clock["last"]
            opt.zero_grad()
            t2 = CLOCK[0]()
            before = sum(bwd.values())
            loss.backward()
            t3 = CLOCK[0]()
            bwd["autograd engine"] += (t3 - t2) - (sum(bwd.values()) - before)
            opt.step()
            t4 = CLOCK[0]()
            bwd["optimizer step (Adam)"] += t4 - t3
            bwd["zero_grad"] += t2 - t1
            for key, value in (("forward", t1 - t0), ("backward", t3 - t2), ("optimizer", t4 - t3),
                               ("step", t4 - t0)):
                totals[key] += value
    finally:
        Tensor.from_op = staticmethod(original)

    plain += step_times(c, args, (loss_fn, opt))  # as many again after: a busy machine drifts
    n = args.steps
    step_total = totals["step"] / n * 1000
    names = sorted(set(fwd) | set(bwd), key=lambda k: -(fwd[k] + bwd[k]))
    print(f"\nper-op time, mean of {n} profiled steps ({step_total:.1f} ms each with the timers; "
          f"forward {totals['forward'] / n * 1000:.1f}, backward {totals['backward'] / n * 1000:.1f}, "
          f"optimizer {totals['optimizer'] / n * 1000:.1f})")
    print("| op | nodes/step | forward ms | backward ms | its matmul floor ms | the rest ms | share of step |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in names:
        f, b = fwd[name] / n * 1000, bwd[name] / n * 1000
        nodes = f"{count[name] // n}" if count[name] else "-"
        products = floor_by_op.get(name, 0.0)
        print(f"| {name} | {nodes} | {f:.1f} | {b:.1f} | {products:.1f} | {f + b - products:.1f} | "
              f"{(f + b) / step_total:.1%} |")
    step_ms = statistics.median(plain)
    print(f"unprofiled step times before and after the profiled ones (ms): {', '.join(f'{t:.0f}' for t in plain)}")
    return step_ms


# ---- the matmul floor ---------------------------------------------------------------------------

def step_products(c: dict):
    """(count, a, b) for each distinct product of one training step, a and b laid out as the ops
    multiply them. Shapes: N tokens, D model, F feed-forward, V vocabulary, B batch, H heads."""
    import numpy as np

    rng = np.random.default_rng(0)
    d, ff, vocab, heads, layers = c["d_model"], c["ff"], c["vocab"], c["heads"], c["layers"]
    batch, s_len, t_len = c["batch"], c["src_len"], c["tgt_len"]
    dh = d // heads

    def rand(*shape):
        return rng.standard_normal(shape, dtype=np.float32)

    def linear(n, n_in, n_out):
        """F.linear: y = x2 @ W.T; backward g2 @ W and g2.T @ x2."""
        x2, w, g2 = rand(n, n_in), rand(n_out, n_in), rand(n, n_out)
        return [(x2, w.T, "linear"), (g2, w, "linear"), (g2.T, x2, "linear")]

    def heads_view(length):
        """(B, H, L, dh) as _split_heads makes it: a permuted view of (B, L, H, dh)."""
        return rand(batch, length, heads, dh).transpose(0, 2, 1, 3)

    def attention(lq, lk):
        """scores q @ k^T, out w @ v; backward w^T @ g, g @ v^T, gs @ k, gs^T @ q."""
        q, k, v = heads_view(lq), heads_view(lk), heads_view(lk)
        w, g = rand(batch, heads, lq, lk), rand(batch, heads, lq, dh)
        sw = lambda a: a.swapaxes(-1, -2)  # noqa: E731
        op = "scaled_dot_product_attention"
        return [(q, sw(k), op), (w, v, op), (sw(w), g, op), (g, sw(v), op), (w, k, op), (sw(w), q, op)]

    def feed_forward(n):
        x2, w1, w2 = rand(n, d), rand(ff, d), rand(d, ff)
        a, g2, gh = rand(n, ff), rand(n, d), rand(n, ff)
        op = "feed_forward"
        return [(x2, w1.T, op), (a, w2.T, op), (g2, w2, op), (gh, w1, op), (gh.T, x2, op), (g2.T, a, op)]

    ns, nt = batch * s_len, batch * t_len
    products = []
    per_encoder = [*linear(ns, d, d) * 3, *attention(s_len, s_len), *linear(ns, d, d), *feed_forward(ns)]
    per_decoder = [*linear(nt, d, d) * 3, *attention(t_len, t_len), *linear(nt, d, d),  # self
                   *linear(nt, d, d), *linear(ns, d, d) * 2, *attention(t_len, s_len), *linear(nt, d, d),  # cross
                   *feed_forward(nt)]
    products += [(layers, a, b, op) for a, b, op in per_encoder + per_decoder]
    products += [(1, a, b, op) for a, b, op in linear(nt, d, vocab)]  # tied output projection
    return products


def floor(c: dict, args: argparse.Namespace) -> tuple[float, dict[str, float]]:
    """Sum of the step's products, each timed alone (median of args.repeats) as NumPy runs them
    with its BLAS on --threads threads (minitf limits BLAS to one thread once its own pool has
    started; the floor gives BLAS its threads back); prints it and returns (ms, ms per op)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(args.threads, user_api="blas"):
        return _floor(c, args)


def _floor(c: dict, args: argparse.Namespace) -> tuple[float, dict[str, float]]:
    products = step_products(c)
    total, flops, by_op = 0.0, 0.0, defaultdict(float)
    for count, a, b, op in products:
        a @ b  # warm-up (and the output's first allocation)
        times = []
        for _ in range(args.repeats):
            t0 = CLOCK[0]()
            a @ b
            times.append(CLOCK[0]() - t0)
        total += count * statistics.median(times)
        by_op[op] += count * statistics.median(times) * 1000
        flops += count * 2 * a.size * b.shape[-1]
    ms = total * 1000
    print(f"matmul floor: {sum(n for n, *_ in products)} products, {flops / 1e9:.1f} GFLOP, "
          f"{ms:.1f} ms ({flops / total / 1e9:.0f} GFLOP/s)")
    return ms, dict(by_op)


if __name__ == "__main__":
    main()
