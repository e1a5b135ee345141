"""Op benchmark: each op of issue 10 (tensor ops, math, sampling, functional ops, embedding),
forward + backward in minitf against PyTorch CPU, in one run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tools/bench_ops.py
    python tools/bench_ops.py --only embedding --only 'loss*'   # names, globs or substrings
    python tools/bench_ops.py --threads 2 --repeats 50 --dtype float64
    python tools/bench_ops.py --scale tiny --repeats 1 --warmup 0        # a smoke run

PyTorch is optional (run it from an environment that has PyTorch, with PYTHONPATH pointing at minitf): without it
only minitf's times are shown. For every case the two frameworks run in turn, repeat after
repeat, on the same float inputs; each repeat is a forward pass and a backward pass with a
fixed cotangent (ops with no gradient: argmax, argsort, one_hot, multinomial, run forward
only, marked "fwd only"). One thread by default (--threads). The table gives the medians in
ms and the ratio minitf / torch of forward + backward: the median over the repeats of the ratio of the two steps run back to back (a
shared machine drifts, and a step slowed by another process skews one pair, not the median).
The embedding rows also run the backward minitf had before (`np.add.at`), and a summary gives
the backward's speed-up on each shape.

Adding a case is one `case(...)` call in register_tensor_cases or register_functional_cases: a name, the float inputs (shapes, or a
function of a NumPy Generator returning arrays), the minitf call and the PyTorch call, both
taking the inputs as tensors (integer targets are closed over as NumPy arrays; `T(a)` makes
one a torch tensor inside the PyTorch call); `grad=False` for an op without a gradient.

Whole training steps are `step_case(...)` calls: a name and, for each framework, a function that
builds the model and returns a step () -> (forward s, backward + optimizer s). The `cnn_step`
cases are examples/digits_cnn.py's model (PyTorch's MNIST CNN: forward, nll_loss, backward,
Adadelta) on batches of 8x8 digits and, as in PyTorch's example, of 28x28 images.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=. python \
        tools/bench_ops.py --only conv2d --only max_pool2d --only cnn_step --threads 2
"""
from __future__ import annotations

import argparse
import fnmatch
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class Case:
    name: str
    inputs: Any                  # list of shapes, or rng -> list of float arrays
    ours: Callable[..., Any]     # (*minitf tensors) -> Tensor; a step case: () -> step
    theirs: Callable[..., Any]   # (*torch tensors) -> torch.Tensor; a step case: () -> step
    grad: bool = True            # False: forward only (the op has no gradient)
    step: bool = False           # a whole training step, see step_case


CASES: list[Case] = []


def case(name: str, inputs: Any, ours: Callable[..., Any], theirs: Callable[..., Any],
         grad: bool = True) -> None:
    CASES.append(Case(name, inputs, ours, theirs, grad))


def step_case(name: str, make_ours: Callable[[], Callable[[], tuple[float, float]]],
              make_theirs: Callable[[], Callable[[], tuple[float, float]]]) -> None:
    """A training step: make_* build a model and return step() -> (forward s, backward + update s)."""
    CASES.append(Case(name, None, make_ours, make_theirs, step=True))


# sizes: logits of a batch over a vocabulary, embedding rows, a batch of attention maps, rows of
# a Transformer's activations (64 x 32 tokens of width 256)
SCALES = {"ref": dict(batch=64, vocab=8000, rows=8000, dim=256, ids=4096, maps=(16, 128, 128),
                      tokens=2048, embedding=None),
          "tiny": dict(batch=4, vocab=50, rows=30, dim=8, ids=20, maps=(2, 6, 6), tokens=16,
                       embedding=[(27, 4, 3, 10)])}


def register_cases(scale: str = "ref") -> None:
    """The registry (imports minitf and torch, so it runs after the thread settings)."""
    import numpy as np

    torch, _ = optional_torch()

    def T(a: np.ndarray) -> Any:
        return torch.from_numpy(a)

    rng = np.random.default_rng(1)

    def ids(high: int, *shape: int) -> np.ndarray:
        return rng.integers(0, high, shape)

    s = SCALES[scale]
    register_tensor_cases(s, ids, T)
    register_functional_cases(s, ids, T)
    register_cnn_cases()


def register_cnn_cases() -> None:
    """The convolutions, pooling and training step of PyTorch's MNIST CNN (batch 64), on 28x28
    images and on 8x8 digits (examples/digits_cnn.py)."""
    import numpy as np

    import minitf.functional as F

    _, tF = optional_torch()
    for name, x, w, padding in (("conv2d/mnist_conv1", (64, 1, 28, 28), (32, 1, 3, 3), 0),
                                ("conv2d/mnist_conv2", (64, 32, 26, 26), (64, 32, 3, 3), 0),
                                ("conv2d/digits_conv1", (64, 1, 8, 8), (32, 1, 3, 3), 1),
                                ("conv2d/digits_conv2", (64, 32, 8, 8), (64, 32, 3, 3), 1)):
        case(name, [x, w, w[:1]], lambda x, w, b, p=padding: F.conv2d(x, w, b, padding=p),
             lambda x, w, b, p=padding: tF.conv2d(x, w, b, padding=p))
    for name, shape in (("max_pool2d/mnist", (64, 64, 24, 24)), ("max_pool2d/digits", (64, 64, 8, 8))):
        case(name, [shape], lambda x: F.max_pool2d(x, 2), lambda x: tF.max_pool2d(x, 2))
    for name, size in (("cnn_step/digits8x8", 8), ("cnn_step/mnist28x28", 28)):
        step_case(name, lambda size=size: cnn_step("minitf", size, np.float32),
                  lambda size=size: cnn_step("torch", size, np.float32))


def register_tensor_cases(s: dict, ids: Callable[..., Any], T: Callable[[Any], Any]) -> None:
    """Selection, gather/scatter, shape and order, math, sampling."""
    import numpy as np

    import minitf as mt

    torch, tF = optional_torch()
    b, v, maps, k = s["batch"], s["vocab"], s["maps"], min(10, s["vocab"])
    logits, table, n_ids = (b, v), (s["rows"], s["dim"]), s["ids"]
    targets, rows_ids = ids(v, b, 1), ids(s["rows"], n_ids)
    scatter_ids = np.broadcast_to(rows_ids[:, None], (n_ids, s["dim"])).copy()
    # topk: k=10 of a vocabulary; einsum: attention scores bhqd,bhkd->bhqk; multinomial: 1 of a vocabulary
    case("argmax", [logits], lambda x: x.argmax(axis=-1), lambda x: x.argmax(dim=-1), grad=False)
    case("argsort", [logits], lambda x: x.argsort(axis=-1), lambda x: x.argsort(dim=-1), grad=False)
    case("sort", [logits], lambda x: x.sort(axis=-1)[0], lambda x: x.sort(dim=-1)[0])
    case("topk", [logits], lambda x: x.topk(k)[0], lambda x: x.topk(k)[0])
    case("gather", [logits], lambda x: mt.gather(x, 1, targets), lambda x: torch.gather(x, 1, T(targets)))
    case("take_along_axis", [logits], lambda x: mt.take_along_axis(x, targets, 1),
         lambda x: torch.take_along_dim(x, T(targets), 1))
    case("index_select", [table], lambda x: x.index_select(0, rows_ids), lambda x: x.index_select(0, T(rows_ids)))
    case("scatter_add", [table, (n_ids, s["dim"])], lambda x, src: mt.scatter_add(x, 0, scatter_ids, src),
         lambda x, src: torch.scatter_add(x, 0, T(scatter_ids), src))
    case("one_hot", [], lambda: mt.one_hot(rows_ids, s["rows"]), lambda: tF.one_hot(T(rows_ids), s["rows"]),
         grad=False)
    case("flip", [maps], lambda x: x.flip(-1), lambda x: x.flip(-1))
    case("roll", [maps], lambda x: x.roll(3, -1), lambda x: x.roll(3, -1))
    case("tile", [maps], lambda x: x.tile(1, 2, 1), lambda x: x.repeat(1, 2, 1))
    case("repeat_interleave", [maps], lambda x: x.repeat_interleave(2, axis=1),
         lambda x: x.repeat_interleave(2, dim=1))
    case("pad", [maps], lambda x: mt.pad(x, ((0, 0), (1, 1), (2, 2))), lambda x: tF.pad(x, (2, 2, 1, 1)))
    case("tril", [maps], lambda x: x.tril(), lambda x: x.tril())
    case("unsqueeze+flatten", [maps], lambda x: x.unsqueeze(1).flatten(2), lambda x: x.unsqueeze(1).flatten(2))
    case("view", [maps], lambda x: x.view(-1, maps[-1]), lambda x: x.view(-1, maps[-1]))
    case("einsum", [maps[:1] + (4,) + maps[1:2] + (32,)] * 2,
         lambda q, kk: mt.einsum("bhqd,bhkd->bhqk", q, kk), lambda q, kk: torch.einsum("bhqd,bhkd->bhqk", q, kk))
    case("cumsum", [maps], lambda x: x.cumsum(axis=-1), lambda x: x.cumsum(dim=-1))
    case("cumprod", [maps], lambda x: x.cumprod(axis=-1), lambda x: x.cumprod(dim=-1))
    case("logsumexp", [logits], lambda x: x.logsumexp(axis=-1), lambda x: x.logsumexp(dim=-1))
    case("var", [logits], lambda x: x.var(axis=-1, correction=1), lambda x: x.var(dim=-1))
    case("std", [logits], lambda x: x.std(axis=-1, correction=1), lambda x: x.std(dim=-1))
    case("norm", [logits], lambda x: x.norm(axis=-1), lambda x: torch.linalg.vector_norm(x, dim=-1))
    case("clamp", [maps], lambda x: x.clamp(-0.5, 0.5), lambda x: x.clamp(-0.5, 0.5))
    case("maximum", [maps, maps], mt.maximum, lambda a, b: torch.maximum(a, b))
    case("sin", [maps], mt.sin, lambda x: torch.sin(x))
    case("log1p", [maps], lambda x: mt.log1p(x * x), lambda x: torch.log1p(x * x))
    probs = 0.05 + np.random.default_rng(3).random(logits)
    probs /= probs.sum(axis=-1, keepdims=True)
    case("multinomial", [], lambda: mt.multinomial(probs, 1), lambda: torch.multinomial(T(probs), 1),
         grad=False)


def register_functional_cases(s: dict, ids: Callable[..., Any], T: Callable[[Any], Any]) -> None:
    """Activations, losses, similarity and the embedding (with its old backward)."""
    import numpy as np

    import minitf.functional as F

    torch, tF = optional_torch()
    rng = np.random.default_rng(1)

    def probabilities(*shapes):
        return lambda r: [0.05 + 0.9 * r.random(s) for s in shapes]

    rows = (s["tokens"], s["dim"])
    for name in ("silu", "softplus", "leaky_relu", "elu", "log_sigmoid"):
        case(name, [rows], getattr(F, name),
             lambda x, name=name: getattr(tF, "logsigmoid" if name == "log_sigmoid" else name)(x))
    case("sigmoid", [rows], F.sigmoid, lambda x: torch.sigmoid(x))
    case("tanh", [rows], F.tanh, lambda x: torch.tanh(x))
    case("rms_norm", [rows, rows[1:]], lambda x, w: F.rms_norm(x, rows[1], w),
         lambda x, w: tF.rms_norm(x, rows[1:], w))
    logits, targets = (s["batch"], s["vocab"]), ids(s["vocab"], s["batch"])
    targets[::7] = -100
    case("nll_loss", [logits], lambda x: F.nll_loss(x, targets), lambda x: tF.nll_loss(x, T(targets)))
    weight = rng.random(s["vocab"]) + 0.5
    case("nll_loss_weighted", [logits], lambda x: F.nll_loss(x, targets, weight=weight),
         lambda x: tF.nll_loss(x, T(targets), weight=T(weight).to(x.dtype)))
    for name in ("mse_loss", "l1_loss", "smooth_l1_loss"):
        case(name, [rows, rows], getattr(F, name), lambda x, t, name=name: getattr(tF, name)(x, t))
    case("binary_cross_entropy", probabilities(rows, rows), F.binary_cross_entropy,
         lambda x, t: tF.binary_cross_entropy(x, t))
    case("binary_cross_entropy_with_logits", [rows, rows], F.binary_cross_entropy_with_logits,
         lambda x, t: tF.binary_cross_entropy_with_logits(x, t))
    case("kl_div_batchmean", [rows, rows], lambda x, t: F.kl_div(x, t, reduction="batchmean", log_target=True),
         lambda x, t: tF.kl_div(x, t, reduction="batchmean", log_target=True))
    case("cosine_similarity", [rows, rows], lambda a, b: F.cosine_similarity(a, b, dim=-1),
         lambda a, b: tF.cosine_similarity(a, b, dim=-1))
    case("normalize", [rows], lambda x: F.normalize(x, dim=-1), lambda x: tF.normalize(x, dim=-1))

    for vocab, batch, context, dim in s["embedding"] or EMBEDDING_SHAPES:
        tokens = ids(vocab, batch, context)
        shape = f"{vocab}x{batch}x{context}x{dim}"
        case(f"embedding/{shape}", [(vocab, dim)], lambda w, t=tokens: F.embedding(t, w),
             lambda w, t=tokens: tF.embedding(T(t), w))
        case(f"embedding_add_at/{shape}", [(vocab, dim)], lambda w, t=tokens: embedding_add_at(t, w),
             lambda w, t=tokens: tF.embedding(T(t), w))


# vocab, batch, context, dim: makemore-like character MLPs, then a Transformer's token embedding
EMBEDDING_SHAPES = [(27, 32, 3, 10), (27, 32, 8, 24), (27, 512, 3, 10), (27, 512, 8, 64), (100, 256, 8, 64),
                    (8000, 64, 32, 256)]


def embedding_add_at(ids: Any, weight: Any) -> Any:
    """F.embedding as it was before the sorted scatter-add: its backward is one np.add.at."""
    import numpy as np

    from minitf import Tensor

    def backward(g):
        gw = np.zeros(weight.shape, dtype=g.dtype)
        np.add.at(gw, ids.reshape(-1), g.reshape(-1, weight.shape[1]))
        return (gw,)

    return Tensor.from_op(weight.data[ids], (weight,), backward)


def cnn(nn: Any, size: int) -> Any:
    """examples/digits_cnn.py's Net (PyTorch's MNIST CNN; 8x8 inputs padded by 1) in minitf.nn or torch.nn."""
    padding = 1 if size == 8 else 0
    features = 64 * ((size + 4 * padding - 4) // 2) ** 2
    return nn.Sequential(nn.Conv2d(1, 32, 3, 1, padding), nn.ReLU(), nn.Conv2d(32, 64, 3, 1, padding), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(), nn.Linear(features, 128), nn.ReLU(),
                         nn.Dropout(0.5), nn.Linear(128, 10), nn.LogSoftmax(dim=1))


def cnn_step(framework: str, size: int, dtype: Any, batch: int = 64) -> Callable[[], tuple[float, float]]:
    """One training step of the CNN: forward + nll_loss, then backward + Adadelta."""
    import numpy as np

    rng = np.random.default_rng(0)
    images = rng.standard_normal((batch, 1, size, size)).astype(dtype)
    labels = rng.integers(0, 10, batch)
    if framework == "torch":
        import torch
        lib, F, x, y = torch.nn, torch.nn.functional, torch.from_numpy(images), torch.from_numpy(labels)
        optimizer_class = torch.optim.Adadelta
    else:
        import minitf
        lib, F, x, y = minitf.nn, minitf.functional, minitf.tensor(images), labels
        optimizer_class = minitf.optim.Adadelta
    model = cnn(lib, size).train()
    if framework == "torch":
        model = model.to(getattr(torch, np.dtype(dtype).name))
    else:
        model = model.to(np.dtype(dtype))
    optimizer = optimizer_class(model.parameters(), lr=1.0)

    def step() -> tuple[float, float]:
        start = time.perf_counter()
        optimizer.zero_grad()
        loss = F.nll_loss(model(x), y)
        middle = time.perf_counter()
        loss.backward()
        optimizer.step()
        return middle - start, time.perf_counter() - middle
    return step


def optional_torch() -> tuple[Any, Any]:
    """(torch, torch.nn.functional), or (None, None) when PyTorch is not installed."""
    try:
        import torch
    except ImportError:
        return None, None
    return torch, torch.nn.functional


# ---- timing -----------------------------------------------------------------------------------

def time_step(fn: Callable[..., Any], inputs: list[Any], cotangent: Any) -> tuple[float, float]:
    """(forward, backward) seconds of one step; the inputs' gradients are cleared first.
    Without a cotangent (an op with no gradient) the step is the forward alone."""
    for x in inputs:
        x.grad = None
    start = time.perf_counter()
    out = fn(*inputs)
    middle = time.perf_counter()
    if cotangent is not None:
        out.backward(cotangent)
    return middle - start, time.perf_counter() - middle


def run_case(c: Case, args: argparse.Namespace) -> dict[str, float]:
    """Time the frameworks in turn, repeat after repeat (the order alternates)."""
    sides = [(name, make()) for name, make in frameworks(c)] if c.step else op_sides(c, args)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in sides}
    for repeat in range(args.warmup + args.repeats):
        for name, step in (sides if repeat % 2 == 0 else sides[::-1]):
            t = step()
            if repeat >= args.warmup:
                times[name].append(t)
    result = {}
    for name, ts in times.items():
        result[f"{name}_fwd"] = statistics.median(f for f, _ in ts) * 1e3
        result[f"{name}_bwd"] = statistics.median(b for _, b in ts) * 1e3
        result[name] = statistics.median(f + b for f, b in ts) * 1e3
    result["grad"] = c.grad
    if "torch" in times:  # each repeat's two steps ran back to back, under the same load
        result["ratio"] = statistics.median(sum(a) / sum(b) for a, b in zip(times["minitf"], times["torch"]))
    return result


def frameworks(c: Case) -> list[tuple[str, Callable[..., Any]]]:
    torch, _ = optional_torch()
    return [("minitf", c.ours)] + ([("torch", c.theirs)] if torch is not None else [])


def op_sides(c: Case, args: argparse.Namespace) -> list[tuple[str, Callable[[], tuple[float, float]]]]:
    """For each framework, a step: the op's forward (and backward) on its own copy of the inputs."""
    import numpy as np

    from minitf import Tensor

    torch, _ = optional_torch()
    rng = np.random.default_rng(0)
    arrays = c.inputs(rng) if callable(c.inputs) else [rng.standard_normal(s) for s in c.inputs]
    arrays = [np.ascontiguousarray(a, dtype=args.dtype) for a in arrays]
    ours = [Tensor(a.copy(), requires_grad=c.grad) for a in arrays]
    out = c.ours(*ours)
    cotangent = rng.standard_normal(out.shape).astype(args.dtype) if c.grad else None
    sides = [("minitf", lambda: time_step(c.ours, ours, cotangent))]
    if torch is not None:
        theirs = [torch.tensor(a, requires_grad=c.grad) for a in arrays]
        v = torch.tensor(cotangent) if c.grad else None
        sides.append(("torch", lambda: time_step(c.theirs, theirs, v)))
    return sides


# ---- report -----------------------------------------------------------------------------------

def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    load = " ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return f"{model} ({platform.machine()}), {os.cpu_count()} logical CPUs, load average {load}"


def blas() -> str:
    """The BLAS library NumPy uses, with its kernel (OpenBLAS's core type) and threads."""
    try:
        from threadpoolctl import threadpool_info

        for info in threadpool_info():
            if info.get("user_api") == "blas" and "numpy" in info.get("filepath", ""):
                return (f"{info['internal_api']} {info.get('version')}, kernel {info.get('architecture', '?')}, "
                        f"{info.get('num_threads')} threads")
    except ImportError:
        pass
    import numpy as np

    built = (np.show_config(mode="dicts") or {}).get("Build Dependencies", {}).get("blas", {})
    return f"{built.get('name', '?')} {built.get('version', '')} (kernel unknown: install threadpoolctl)"


def print_table(results: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    import numpy as np

    torch, _ = optional_torch()
    versions = f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads" if torch else "no PyTorch"
    print(f"machine: {machine()}")
    print(f"NumPy {np.__version__}, BLAS {blas()}; {versions}; {args.dtype}; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    print(f"medians of {args.repeats} alternating repeats (after {args.warmup} warm-up), ms\n")
    width = max(len(n) for n in results) + 2
    print(f"{'op':<{width}}{'minitf':>10}{'torch':>10}{'ratio':>8}   (fwd / bwd ms: minitf | torch)")
    slow = []
    for name, r in results.items():
        theirs, ratio, split = "-", "-", ""
        if "torch" in r:
            theirs, ratio = f"{r['torch']:.3f}", f"{r['ratio']:.2f}"
            split = f" | {r['torch_fwd']:.3f} / {r['torch_bwd']:.3f}"
            if r["ratio"] > 2 and not name.startswith("embedding_add_at"):
                slow.append(name)
        note = "" if r["grad"] else "   fwd only"
        print(f"{name:<{width}}{r['minitf']:>10.3f}{theirs:>10}{ratio:>8}   "
              f"({r['minitf_fwd']:.3f} / {r['minitf_bwd']:.3f}{split}){note}")
    pairs = [(n, "embedding_add_at/" + n.split("/", 1)[1]) for n in results if n.startswith("embedding/")]
    pairs = [(new, old) for new, old in pairs if old in results]
    if pairs:
        print("\nembedding backward, np.add.at (before) -> add_rows (now), ms:")
        for new, old in pairs:
            before, after = results[old]["minitf_bwd"], results[new]["minitf_bwd"]
            reference = f"; torch {results[new]['torch_bwd']:.3f}" if "torch" in results[new] else ""
            print(f"  V x batch x context x dim = {new.split('/', 1)[1]:<18} {before:8.3f} -> {after:8.3f}"
                  f"  ({before / after:.1f}x{reference})")
    if torch:
        print("\nslower than 2x PyTorch (the old np.add.at rows aside): " + (", ".join(slow) or "none"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run the cases whose name matches (glob or substring); repeatable")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for BLAS/OpenMP and torch (default 1: NumPy's element-wise ops use one)")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--scale", choices=sorted(SCALES), default="ref",
                        help="input sizes (tiny: a smoke run in seconds)")
    parser.add_argument("--list", action="store_true", help="list the case names and exit")
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before NumPy and torch load their thread pools
    torch, _ = optional_torch()
    if torch is not None:
        torch.set_num_threads(args.threads)
    register_cases(args.scale)
    selected = [c for c in CASES if not args.only or any(
        fnmatch.fnmatch(c.name, pattern) or pattern in c.name for pattern in args.only)]
    if args.list:
        print("\n".join(c.name for c in selected))
        return
    if not selected:
        sys.exit(f"no case matches {args.only}; --list shows the names")
    results = {}
    for c in selected:
        results[c.name] = run_case(c, args)
    print_table(results, args)


if __name__ == "__main__":
    main()
