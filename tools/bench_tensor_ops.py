"""Tensor-op benchmark: selection, gather/scatter, shape and order ops, minitf against PyTorch CPU.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=. /work/venv-torch/bin/python tools/bench_tensor_ops.py
    python tools/bench_tensor_ops.py --only minitf      # without PyTorch installed

Each op runs forward and (where differentiable) backward with a fixed cotangent, on float32
inputs of research size (logits of a batch over a vocabulary, an embedding table, a batch of
attention maps). Both frameworks run in this one process on one thread; for each op the two
alternate for --rounds rounds of --repeats calls each (shared machines drift: alternating
spreads the drift over both), and the table shows median ms and the ratio minitf / PyTorch.
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable

import numpy as np

SCALES = {"ref": dict(batch=64, vocab=8000, rows=8000, dim=256, ids=4096, maps=(16, 128, 128)),
          "tiny": dict(batch=4, vocab=50, rows=30, dim=8, ids=20, maps=(2, 6, 6))}


def cases(s: dict, k: int) -> dict[str, tuple[Callable[[Any], Any], tuple[tuple[int, ...], ...], bool]]:
    """name -> (fn(ops) returning the output from the inputs made by ops, input shapes, differentiable).

    `ops` gives the framework's calls so that one description serves both frameworks.
    """
    b, v, maps = s["batch"], s["vocab"], s["maps"]
    return {
        "argmax (batch x vocab)": (lambda o, x: o.argmax(x), ((b, v),), False),
        "argsort (batch x vocab)": (lambda o, x: o.argsort(x), ((b, v),), False),
        "sort values (batch x vocab)": (lambda o, x: o.sort(x), ((b, v),), True),
        f"topk k={k} (batch x vocab)": (lambda o, x: o.topk(x, k), ((b, v),), True),
        "gather targets (batch x vocab)": (lambda o, x: o.gather(x, o.targets), ((b, v),), True),
        "index_select rows (embedding)": (lambda o, x: o.index_select(x, o.ids), ((s["rows"], s["dim"]),), True),
        "scatter_add rows": (lambda o, x, src: o.scatter_add(x, o.scatter_ids, src),
                             ((s["rows"], s["dim"]), (s["ids"], s["dim"])), True),
        "one_hot ids (ids x rows)": (lambda o: o.one_hot(o.ids, s["rows"]), (), False),
        "flip (maps)": (lambda o, x: o.flip(x), (maps,), True),
        "roll (maps)": (lambda o, x: o.roll(x), (maps,), True),
        "tile / Tensor.repeat (maps)": (lambda o, x: o.tile(x), (maps,), True),
        "repeat_interleave (maps)": (lambda o, x: o.repeat_interleave(x), (maps,), True),
        "pad (maps)": (lambda o, x: o.pad(x), (maps,), True),
        "tril (maps)": (lambda o, x: o.tril(x), (maps,), True),
        "unsqueeze+flatten (maps)": (lambda o, x: o.flatten(o.unsqueeze(x)), (maps,), True),
    }


class MinitfOps:
    def __init__(self, s: dict, rng: np.random.Generator) -> None:
        import minitf as mt
        self.mt = mt
        self.targets = mt.tensor(rng.integers(0, s["vocab"], (s["batch"], 1)))
        self.ids = mt.tensor(rng.integers(0, s["rows"], s["ids"]))
        self.scatter_ids = mt.tensor(np.broadcast_to(self.ids.numpy()[:, None], (s["ids"], s["dim"])).copy())

    def tensor(self, a, grad):
        return self.mt.tensor(a, requires_grad=grad)

    def argmax(self, x): return x.argmax(axis=-1)
    def argsort(self, x): return x.argsort(axis=-1)
    def sort(self, x): return x.sort(axis=-1)[0]
    def topk(self, x, k): return x.topk(k)[0]
    def gather(self, x, idx): return self.mt.gather(x, 1, idx)
    def index_select(self, x, ids): return x.index_select(0, ids)
    def scatter_add(self, x, ids, src): return self.mt.scatter_add(x, 0, ids, src)
    def one_hot(self, ids, n): return self.mt.one_hot(ids, n)
    def flip(self, x): return x.flip(-1)
    def roll(self, x): return x.roll(3, -1)
    def tile(self, x): return x.tile(1, 2, 1)
    def repeat_interleave(self, x): return x.repeat_interleave(2, axis=1)
    def pad(self, x): return self.mt.pad(x, ((0, 0), (1, 1), (2, 2)))
    def tril(self, x): return x.tril()
    def unsqueeze(self, x): return x.unsqueeze(1)
    def flatten(self, x): return x.flatten(2)

    def backward(self, out, cotangent): out.backward(cotangent)
    def array(self, out): return out.numpy()


class TorchOps(MinitfOps):
    def __init__(self, s: dict, rng: np.random.Generator) -> None:
        import torch
        torch.set_num_threads(1)
        self.torch = torch
        self.targets = torch.tensor(rng.integers(0, s["vocab"], (s["batch"], 1)))
        self.ids = torch.tensor(rng.integers(0, s["rows"], s["ids"]))
        self.scatter_ids = self.ids[:, None].expand(s["ids"], s["dim"]).contiguous()

    def tensor(self, a, grad):
        return self.torch.tensor(a, requires_grad=grad)

    def argmax(self, x): return x.argmax(dim=-1)
    def argsort(self, x): return x.argsort(dim=-1)
    def sort(self, x): return x.sort(dim=-1)[0]
    def topk(self, x, k): return x.topk(k)[0]
    def gather(self, x, idx): return self.torch.gather(x, 1, idx)
    def index_select(self, x, ids): return x.index_select(0, ids)
    def scatter_add(self, x, ids, src): return self.torch.scatter_add(x, 0, ids, src)
    def one_hot(self, ids, n): return self.torch.nn.functional.one_hot(ids, n)
    def flip(self, x): return x.flip(-1)
    def roll(self, x): return x.roll(3, -1)
    def tile(self, x): return x.repeat(1, 2, 1)
    def repeat_interleave(self, x): return x.repeat_interleave(2, dim=1)
    def pad(self, x): return self.torch.nn.functional.pad(x, (2, 2, 1, 1))
    def tril(self, x): return x.tril()
    def unsqueeze(self, x): return x.unsqueeze(1)
    def flatten(self, x): return x.flatten(2)

    def backward(self, out, cotangent): out.backward(self.torch.from_numpy(cotangent))
    def array(self, out): return out.detach().numpy()


def make_step(ops, fn, arrays, differentiable):
    """A closure running forward (+ backward) once; checks nothing, returns the output array."""
    tensors = [ops.tensor(a, differentiable) for a in arrays]
    out = fn(ops, *tensors)
    cotangent = np.random.default_rng(1).standard_normal(ops.array(out).shape).astype(np.float32)

    def step():
        for t in tensors:
            t.grad = None
        y = fn(ops, *tensors)
        if differentiable:
            ops.backward(y, cotangent)
        return y

    return step


def timed(step, repeats: int) -> float:
    step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), default="ref")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--only", choices=["minitf"])
    args = parser.parse_args()
    s = SCALES[args.scale]
    frameworks = {"minitf": MinitfOps(s, np.random.default_rng(0))}
    if args.only is None:
        frameworks["torch"] = TorchOps(s, np.random.default_rng(0))
    print(f"| op (forward + backward, float32, 1 thread) | minitf ms | PyTorch ms | ratio |\n|---|---|---|---|")
    for name, (fn, shapes, differentiable) in cases(s, min(args.k, s["vocab"])).items():
        rng = np.random.default_rng(2)
        arrays = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
        steps = {f: make_step(ops, fn, arrays, differentiable) for f, ops in frameworks.items()}
        times = {f: [] for f in steps}
        for _ in range(args.rounds):
            for f, step in steps.items():
                times[f].append(timed(step, args.repeats))
        ms = {f: statistics.median(t) for f, t in times.items()}
        theirs = f"{ms['torch']:.3f} | {ms['minitf'] / ms['torch']:.2f}" if "torch" in ms else "- | -"
        print(f"| {name} | {ms['minitf']:.3f} | {theirs} |")


if __name__ == "__main__":
    main()
