"""Training-step benchmark: minitf against PyTorch eager on the same model, side by side.

    python tools/bench_step.py                       # reference config, 2 threads, CPU
    python tools/bench_step.py --config gpu --device cuda
    python tools/bench_step.py --only minitf         # without PyTorch installed
    python tools/bench_step.py --rounds 5            # more alternating rounds on a noisy machine
    python tools/bench_step.py --retain-freed-memory # both keep freed memory, as `minitf train`

Each framework runs in its own subprocess (so peak memory is its own): ms per training
step (forward, backward, Adam), forward-only ms, target tokens/s, peak memory (peak RSS
less the RSS once the framework is imported: weights, gradients, optimizer state and a
step's activations), greedy decoding time for 64 sentences of 32 tokens (minitf with its
key/value cache, PyTorch re-running the decoder on the growing prefix), and a chain of
1,000 small ops forward and backward. Medians of --repeats runs in each worker; the
workers of the two frameworks alternate for --rounds rounds, and the table shows the
median over the rounds (shared machines drift: alternating spreads the drift over both).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import machine  # tools/machine.py: the CPU and the BLAS kernel NumPy runs

CONFIGS = {
    "ref": dict(d_model=256, heads=4, layers=3, ff=1024, vocab=8000, batch=64, src_len=32, tgt_len=32),
    "gpu": dict(d_model=512, heads=8, layers=6, ff=2048, vocab=16000, batch=128, src_len=64, tgt_len=64),
    "tiny": dict(d_model=64, heads=4, layers=1, ff=128, vocab=500, batch=8, src_len=12, tgt_len=12),
}
DROPOUT, LABEL_SMOOTHING, PAD = 0.1, 0.1, 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="ref")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3,
                        help="run the frameworks in turn this many times; report medians over the rounds")
    parser.add_argument("--only", choices=["minitf", "torch"])
    parser.add_argument("--tf32", action="store_true", help="allow TF32 matmuls on the GPU (both frameworks)")
    parser.add_argument("--retain-freed-memory", action="store_true",
                        help="both workers keep freed memory for reuse (minitf.cpu.retain_freed_memory, "
                             "as `minitf train` does)")
    parser.add_argument("--peak-tflops", type=float, help="the device's peak matmul rate, to report a fraction")
    parser.add_argument("--worker", choices=["minitf", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_worker(args)))
        return
    frameworks = [args.only] if args.only else ["minitf", "torch"]
    load_before = os.getloadavg()[0]
    rounds = [{name: spawn(name, args) for name in frameworks} for _ in range(args.rounds)]
    print(f"load average (1 min): {load_before:.1f} before the rounds, {os.getloadavg()[0]:.1f} after, "
          f"on {os.cpu_count()} cores")
    print_table(args, combine(rounds), rounds)


def combine(rounds: list[dict]) -> dict:
    """Each framework's median over the rounds, measure by measure (the first error wins)."""
    results = {}
    for name in rounds[0]:
        runs = [r[name] for r in rounds]
        errors = [r for r in runs if "error" in r]
        results[name] = errors[0] if errors else {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    return results


def spawn(framework: str, args: argparse.Namespace) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads))
    cmd = [sys.executable, __file__, "--worker", framework, "--config", args.config, "--device", args.device,
           "--threads", str(args.threads), "--repeats", str(args.repeats), "--warmup", str(args.warmup)]
    cmd += ["--tf32"] * args.tf32 + ["--retain-freed-memory"] * args.retain_freed_memory
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---- workers ----------------------------------------------------------------------------

def rss_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return float("nan")


def timed(fn, repeats: int, warmup: int, sync=lambda: None) -> float:
    """Median wall time of fn() in ms."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return times[len(times) // 2]


def run_worker(args: argparse.Namespace) -> dict:
    c = CONFIGS[args.config]
    import numpy as np

    rng = np.random.default_rng(0)
    src = rng.integers(1, c["vocab"], (c["batch"], c["src_len"]))
    tgt = rng.integers(1, c["vocab"], (c["batch"], c["tgt_len"] + 1))
    __import__("minitf" if args.worker == "minitf" else "torch")  # imported before the memory baseline
    if args.retain_freed_memory:
        from minitf import cpu

        cpu.retain_freed_memory()
    args.rss_start = rss_mb("VmRSS")
    bench = minitf_bench if args.worker == "minitf" else torch_bench
    return bench(args, c, src, tgt)


def minitf_bench(args, c, src, tgt) -> dict:
    import numpy as np

    import minitf as mt
    import minitf.functional as F
    from minitf import backend
    from minitf.nn import Seq2SeqTransformer, TransformerConfig
    from minitf.optim import Adam

    mt.manual_seed(0)
    model = Seq2SeqTransformer(TransformerConfig(c["vocab"], c["vocab"], c["d_model"], c["heads"], c["layers"],
                                                 c["layers"], c["ff"], DROPOUT, max_len=256, pad_id=PAD))
    model.to(args.device)
    opt = Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-9)
    dev = lambda a: backend.to_device(a, args.device)  # noqa: E731
    s, ti, to = dev(src), dev(tgt[:, :-1]), dev(tgt[:, 1:])
    mask = dev(np.ones(src.shape, dtype=bool))
    sync = lambda: None  # noqa: E731
    device_memory = None
    if args.device.startswith("cuda"):
        from minitf import kernels

        cp = backend.cupy()
        sync = cp.cuda.Stream.null.synchronize
        kernels.set_tf32(args.tf32)
        device_memory = lambda: cp.get_default_memory_pool().total_bytes() / 2**20  # noqa: E731

    def loss_fn():
        logits = model(s, ti, mask)
        return F.cross_entropy(logits, to, ignore_index=PAD, label_smoothing=LABEL_SMOOTHING)

    def step():
        loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()

    def forward():
        with mt.no_grad():
            loss_fn()

    def decode():
        with mt.no_grad(), mt.cpu.inference():  # as minitf's decoding: products on BLAS's threads
            memory = model.encode(s, mask)
            caches = model.new_caches()
            tokens = dev(np.ones((src.shape[0], 1), dtype=np.int64))
            for t in range(32):
                logits = model.decode(tokens, memory, mask, caches, start=t)
                tokens = logits.data[:, -1].argmax(axis=-1)[:, None]

    return measure(args, c, sync, step, forward, decode, minitf_chain(mt, args), model.eval,
                   model.num_parameters(), device_memory)


def minitf_chain(mt, args):
    """1,000 small ops (250 x four) and a backward, on a 16 x 16 tensor."""
    import numpy as np

    x = mt.tensor(np.random.default_rng(0).standard_normal((16, 16)).astype(np.float32),
                  requires_grad=True, device=args.device)

    def chain():
        y = x
        for _ in range(250):  # 4 ops each: 1,000 ops
            y = (y * 0.5 + 0.1).tanh() - 0.01
        y.sum().backward()

    return chain


def torch_bench(args, c, src, tgt) -> dict:
    import math

    import torch
    from torch import nn

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    if args.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
    device = torch.device(args.device)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            d = c["d_model"]
            self.embed = nn.Embedding(c["vocab"], d, padding_idx=PAD)
            self.core = nn.Transformer(d, c["heads"], c["layers"], c["layers"], c["ff"], DROPOUT,
                                       batch_first=True)
            pos = torch.arange(256)[:, None] * torch.exp(-math.log(10000.0) * torch.arange(0, d, 2) / d)
            table = torch.zeros(256, d)
            table[:, 0::2], table[:, 1::2] = torch.sin(pos), torch.cos(pos)
            self.register_buffer("pos", table)
            self.scale = math.sqrt(d)

        def emb(self, ids):
            return self.embed(ids) * self.scale + self.pos[: ids.shape[1]]

        def forward(self, s, t):
            mask = nn.Transformer.generate_square_subsequent_mask(t.shape[1], device=t.device)
            h = self.core(self.emb(s), self.emb(t), tgt_mask=mask, tgt_is_causal=True)
            return h @ self.embed.weight.T

    model = Model().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-9)
    s, ti, to = (torch.as_tensor(a, device=device) for a in (src, tgt[:, :-1], tgt[:, 1:]))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    device_memory = (lambda: torch.cuda.max_memory_reserved() / 2**20) if device.type == "cuda" else None

    def loss_fn():
        logits = model(s, ti)
        return nn.functional.cross_entropy(logits.reshape(-1, c["vocab"]), to.reshape(-1),
                                           ignore_index=PAD, label_smoothing=LABEL_SMOOTHING)

    def step():
        loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()

    def forward():
        with torch.no_grad():
            loss_fn()


    def decode():
        with torch.no_grad():
            memory = model.core.encoder(model.emb(s))
            tokens = torch.ones((s.shape[0], 1), dtype=torch.long, device=device)
            for _ in range(32):  # re-run the decoder on the growing prefix
                mask = nn.Transformer.generate_square_subsequent_mask(tokens.shape[1], device=device)
                h = model.core.decoder(model.emb(tokens), memory, tgt_mask=mask, tgt_is_causal=True)
                nxt = (h[:, -1] @ model.embed.weight.T).argmax(-1, keepdim=True)
                tokens = torch.cat([tokens, nxt], dim=1)

    x = torch.randn(16, 16, device=device, requires_grad=True)

    def chain():
        y = x
        for _ in range(250):
            y = (y * 0.5 + 0.1).tanh() - 0.01
        y.sum().backward()

    n_params = sum(p.numel() for p in model.parameters())
    return measure(args, c, sync, step, forward, decode, chain, model.eval, n_params, device_memory)


def measure(args, c, sync, step, forward, decode, chain, set_eval, n_params, device_memory=None) -> dict:
    """The same sequence of timings for either framework; `chain` is timed like the rest.

    Memory: on the CPU, the process's peak RSS after the timed steps less its RSS once the
    framework was imported (so: weights, gradients, optimizer state and the activations of
    a step, whatever the allocator keeps); on a GPU, the framework's memory pool (CuPy's
    default pool, PyTorch's reserved bytes) after them.
    """
    step()
    step_ms = timed(step, args.repeats, args.warmup, sync)
    peak = rss_mb("VmHWM") - args.rss_start if device_memory is None else device_memory()
    forward_ms = timed(forward, args.repeats, args.warmup, sync)
    set_eval()
    decode_ms = timed(decode, max(args.repeats // 2, 1), 1, sync)
    chain_ms = timed(chain, args.repeats, args.warmup, sync)
    return {"step_ms": step_ms, "forward_ms": forward_ms, "tokens_per_s": c["batch"] * c["tgt_len"] / step_ms * 1000,
            "peak_mb": peak, "decode_ms": decode_ms, "chain_ms": chain_ms, "params": n_params,
            "tflops": step_flops(c) / step_ms / 1e9}


def step_flops(c: dict) -> float:
    """Matmul FLOPs of one training step: 3x the forward's (the backward does two products per one).

    Per source token and encoder layer: Q, K, V, output projections 8 d^2, feed-forward
    4 d ff, attention 4 S d. Per target token and decoder layer: self-attention 8 d^2 + 4 T d,
    cross-attention queries/output 4 d^2 + 4 S d (keys/values 4 d^2 per source token), feed-
    forward 4 d ff; then the output projection 2 d V.
    """
    d, ff, layers, vocab = c["d_model"], c["ff"], c["layers"], c["vocab"]
    src, tgt = c["batch"] * c["src_len"], c["batch"] * c["tgt_len"]
    encoder = src * layers * (8 * d * d + 4 * d * ff + 4 * c["src_len"] * d)
    decoder = tgt * layers * (12 * d * d + 4 * d * ff + 4 * (c["tgt_len"] + c["src_len"]) * d)
    decoder += src * layers * 4 * d * d
    return 3.0 * (encoder + decoder + tgt * 2 * d * vocab)


def print_table(args, results: dict, rounds: list[dict]) -> None:
    c = CONFIGS[args.config]
    print(f"machine: {machine.describe()}")
    print(f"config {args.config}: {c}; device {args.device}; threads {args.threads}; "
          f"median of {args.repeats} per run, of {args.rounds} alternating rounds; "
          f"{step_flops(c) / 1e9:.1f} GFLOP per step")
    for name in rounds[0]:
        steps = [r[name].get("step_ms") for r in rounds]
        if all(steps):
            print(f"training step of {name} in each round (ms): "
                  + ", ".join(f"{t:,.0f}" if t >= 100 else f"{t:.1f}" for t in steps))
    steps = [(r["minitf"].get("step_ms"), r.get("torch", {}).get("step_ms")) for r in rounds if "minitf" in r]
    if steps and all(a and b for a, b in steps):
        print("training step, minitf / PyTorch in each round: " + ", ".join(f"{a / b:.2f}" for a, b in steps))
    if args.peak_tflops:
        for name, r in results.items():
            if "tflops" in r:
                print(f"{name}: {r['tflops']:.2f} TFLOP/s = {r['tflops'] / args.peak_tflops:.1%} of the "
                      f"device's {args.peak_tflops} TFLOP/s peak")
    rows = [("training step (ms)", "step_ms"), ("forward only (ms)", "forward_ms"),
            ("target tokens/s", "tokens_per_s"), ("peak memory: weights, state, activations (MB)", "peak_mb"),
            ("greedy decode 64x32 (ms)", "decode_ms"), ("1,000-op chain fwd+bwd (ms)", "chain_ms"),
            ("achieved TFLOP/s (matmul FLOPs / step time)", "tflops"), ("parameters", "params")]
    mt, th = results.get("minitf", {}), results.get("torch", {})
    for name, r in results.items():
        if "error" in r:
            print(f"{name}: {r['error']}")
    print("| measure | minitf | PyTorch | minitf / PyTorch |")
    print("|---|---:|---:|---:|")
    for label, key in rows:
        a, b = mt.get(key), th.get(key)
        ratio = f"{a / b:.2f}" if a is not None and b else "-"
        fmt = (lambda v: "-" if v is None else f"{v:,.0f}" if abs(v) >= 100 else f"{v:.1f}" if abs(v) >= 1
               else f"{v:.3f}")
        print(f"| {label} | {fmt(a)} | {fmt(b)} | {ratio} |")


if __name__ == "__main__":
    main()
