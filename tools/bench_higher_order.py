"""Double-backward benchmark: minitf against PyTorch eager on the same CPU, side by side.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tools/bench_higher_order.py      # 2 threads
    python tools/bench_higher_order.py --config tiny --rounds 1 --repeats 1 --only minitf  # a smoke run

Two cases, each timed as ms per call (median of --repeats after --warmup, in a subprocess per
framework; the frameworks alternate for --rounds rounds and the table shows medians over rounds):
  hvp      a Hessian-vector product of the reference Transformer's training loss (cross-entropy
           with label smoothing, no dropout) with respect to all its weights: the gradient with
           create_graph, its dot product with a random direction, the gradient of that
  penalty  a WGAN-GP-style gradient-penalty step on a small CNN critic: the gradient of the critic's
           output with respect to its 28x28 inputs (create_graph), ((||grad|| - 1)^2).mean(), and its
           backward into the critic's weights
PyTorch runs attention through its math kernel (the fused CPU kernels have no double backward).
"""
from __future__ import annotations

import argparse
import json
import statistics

import machine  # tools/machine.py: the CPU and the BLAS kernel NumPy runs
from rounds import add_round_arguments, alternate, spawn, timed  # tools/rounds.py: workers, alternating rounds

CONFIGS = {
    "ref": dict(d_model=256, heads=4, layers=3, ff=1024, vocab=8000, batch=32, src_len=24, tgt_len=24,
                images=32, channels=16),
    "tiny": dict(d_model=32, heads=2, layers=1, ff=64, vocab=300, batch=4, src_len=6, tgt_len=6,
                 images=4, channels=4),
}
CASES = ("hvp", "penalty")
LABEL_SMOOTHING, PAD = 0.1, 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", choices=sorted(CONFIGS), default="ref")
    add_round_arguments(p, repeats=5, warmup=1, rounds=3)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(run_worker(args)))
        return
    frameworks = [args.only] if args.only else ["minitf", "torch"]
    rounds = alternate(frameworks, args.rounds, lambda name, r: spawn(__file__, name, args.threads))
    print(f"machine: {machine.describe()}")
    print(f"config {args.config}: {CONFIGS[args.config]}; {args.threads} threads; float32; medians of {args.repeats} "
          f"calls in each of {args.rounds} alternating rounds, ms")
    print("| case | " + " | ".join(frameworks) + (" | minitf / torch |" if len(frameworks) == 2 else " |"))
    print("|---|" + "---:|" * (len(frameworks) + (len(frameworks) == 2)))
    for case in CASES:
        medians = {f: statistics.median(r[f][case] for r in rounds) for f in frameworks}
        ratio = (f" | {statistics.median(r['minitf'][case] / r['torch'][case] for r in rounds):.2f}"
                 if len(frameworks) == 2 else "")
        print(f"| {case} | " + " | ".join(f"{medians[f]:.1f}" for f in frameworks) + ratio + " |")




def run_worker(args: argparse.Namespace) -> dict:
    import numpy as np

    c = CONFIGS[args.config]
    rng = np.random.default_rng(0)
    data = dict(src=rng.integers(1, c["vocab"], (c["batch"], c["src_len"])),
                tgt=rng.integers(1, c["vocab"], (c["batch"], c["tgt_len"] + 1)),
                images=rng.standard_normal((c["images"], 1, 28, 28)).astype(np.float32))
    cases = minitf_cases(c, data) if args.worker == "minitf" else torch_cases(c, data, args.threads)
    return {name: timed(fn, args.repeats, args.warmup) for name, fn in cases.items()}


def minitf_cases(c: dict, data: dict) -> dict:
    import numpy as np

    import minitf as mt
    import minitf.functional as F
    from minitf import nn
    from minitf.autograd import grad
    from minitf.nn import Seq2SeqTransformer, TransformerConfig

    mt.manual_seed(0)
    model = Seq2SeqTransformer(TransformerConfig(c["vocab"], c["vocab"], c["d_model"], c["heads"], c["layers"],
                                                 c["layers"], c["ff"], 0.0, max_len=256, pad_id=PAD))
    params = list(model.parameters())
    directions = [np.random.default_rng(1).standard_normal(p.shape).astype(np.float32) for p in params]
    src, tgt = data["src"], data["tgt"]
    mask = np.ones(src.shape, dtype=bool)

    def hvp():
        loss = F.cross_entropy(model(src, tgt[:, :-1], mask), tgt[:, 1:], ignore_index=PAD,
                               label_smoothing=LABEL_SMOOTHING)
        grads = grad(loss, params, create_graph=True)
        dot = sum((g * v).sum() for g, v in zip(grads, directions))
        grad(dot, params)

    k = c["channels"]
    critic = nn.Sequential(nn.Conv2d(1, k, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                           nn.Conv2d(k, 2 * k, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                           nn.Flatten(), nn.Linear(2 * k * 49, 1))
    images = data["images"]

    def penalty():
        x = mt.tensor(images, requires_grad=True)
        (g,) = grad(critic(x).sum(), x, create_graph=True)
        norms = ((g * g).reshape(g.shape[0], -1).sum(axis=1) + 1e-12).sqrt()
        loss = ((norms - 1.0) ** 2).mean()
        critic.zero_grad()
        loss.backward()

    return {"hvp": hvp, "penalty": penalty}


def torch_cases(c: dict, data: dict, threads: int) -> dict:
    import math

    import torch
    from torch import nn
    from torch.nn.attention import SDPBackend, sdpa_kernel

    torch.manual_seed(0)
    torch.set_num_threads(threads)
    d = c["d_model"]

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(c["vocab"], d, padding_idx=PAD)
            self.core = nn.Transformer(d, c["heads"], c["layers"], c["layers"], c["ff"], 0.0, batch_first=True)
            pos = torch.arange(256)[:, None] * torch.exp(-math.log(10000.0) * torch.arange(0, d, 2) / d)
            table = torch.zeros(256, d)
            table[:, 0::2], table[:, 1::2] = torch.sin(pos), torch.cos(pos)
            self.register_buffer("pos", table)

        def emb(self, ids):
            return self.embed(ids) * math.sqrt(d) + self.pos[: ids.shape[1]]

        def forward(self, s, t):
            mask = nn.Transformer.generate_square_subsequent_mask(t.shape[1])
            return self.core(self.emb(s), self.emb(t), tgt_mask=mask, tgt_is_causal=True) @ self.embed.weight.T

    model = Model()
    params = list(model.parameters())
    gen = torch.Generator().manual_seed(1)
    directions = [torch.randn(p.shape, generator=gen) for p in params]
    src, tgt = torch.as_tensor(data["src"]), torch.as_tensor(data["tgt"])

    def hvp():
        with sdpa_kernel(SDPBackend.MATH):
            logits = model(src, tgt[:, :-1])
            loss = nn.functional.cross_entropy(logits.reshape(-1, c["vocab"]), tgt[:, 1:].reshape(-1),
                                               ignore_index=PAD, label_smoothing=LABEL_SMOOTHING)
            grads = torch.autograd.grad(loss, params, create_graph=True)
            dot = sum((g * v).sum() for g, v in zip(grads, directions))
            torch.autograd.grad(dot, params)

    k = c["channels"]
    critic = nn.Sequential(nn.Conv2d(1, k, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                           nn.Conv2d(k, 2 * k, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                           nn.Flatten(), nn.Linear(2 * k * 49, 1))
    images = torch.as_tensor(data["images"])

    def penalty():
        x = images.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
        norms = ((g * g).reshape(g.shape[0], -1).sum(dim=1) + 1e-12).sqrt()
        loss = ((norms - 1.0) ** 2).mean()
        critic.zero_grad()
        loss.backward()

    return {"hvp": hvp, "penalty": penalty}


if __name__ == "__main__":
    main()
