"""MAML (Finn, Abbeel & Levine 2017) on sinusoid regression, with second-order meta-gradients.

    python examples/maml_sinusoid.py                   # MAML: differentiates through the inner step
    python examples/maml_sinusoid.py --first-order     # FOMAML: treats the inner gradient as a constant

A task is y = A sin(x - phase) with A in [0.1, 5], phase in [0, pi], x in [-5, 5]; K points
(--shots) adapt the network, K others score the adapted network. The network, a 1-40-40-1 ReLU
MLP, is a function of a list of parameter tensors, so the inner loop's fast weights
theta' = theta - alpha * d L_support / d theta are tensors computed with create_graph=True,
and the meta-loss L_query(theta') is differentiated through them back to theta (the Hessian
term of MAML). All tasks of a meta-batch adapt at once: the parameters are broadcast to one
copy per task, whose gradients are then that task's own. Adam updates the meta-parameters.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import minitf as mt
from minitf import optim
from minitf.autograd import grad

Params = list[mt.Tensor]


# ---- tasks (NumPy) ---------------------------------------------------------------------------

def sample_tasks(rng: np.random.Generator, tasks: int, points: int, dtype=np.float32) -> tuple[np.ndarray, ...]:
    """(x, y), each (tasks, points, 1): points of `tasks` random sinusoids."""
    amplitude = rng.uniform(0.1, 5.0, (tasks, 1, 1))
    phase = rng.uniform(0.0, np.pi, (tasks, 1, 1))
    x = rng.uniform(-5.0, 5.0, (tasks, points, 1))
    return x.astype(dtype), (amplitude * np.sin(x - phase)).astype(dtype)


def split(x: np.ndarray, y: np.ndarray, shots: int) -> tuple[tuple[mt.Tensor, mt.Tensor], ...]:
    """((x, y) of the support set: the first `shots` points), ((x, y) of the query set: the rest)."""
    return (mt.tensor(x[:, :shots]), mt.tensor(y[:, :shots])), (mt.tensor(x[:, shots:]), mt.tensor(y[:, shots:]))


# ---- the network as a function of its parameters ---------------------------------------------

def init_params(rng: np.random.Generator, sizes: tuple[int, ...] = (1, 40, 40, 1), dtype=np.float32) -> Params:
    """[W1, b1, W2, b2, ...], W (n_in, n_out) with PyTorch's default uniform bounds; requires grad."""
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / np.sqrt(n_in)
        params.append(mt.tensor(rng.uniform(-bound, bound, (n_in, n_out)).astype(dtype), requires_grad=True))
        params.append(mt.tensor(rng.uniform(-bound, bound, n_out).astype(dtype), requires_grad=True))
    return params


def forward(params: Params, x: mt.Tensor) -> mt.Tensor:
    """The MLP on x (tasks, points, 1); parameters shared (W (n_in, n_out)) or per task (W (tasks, n_in, n_out),
    b (tasks, 1, n_out))."""
    h = x
    for i in range(0, len(params), 2):
        h = h @ params[i] + params[i + 1]
        if i + 2 < len(params):
            h = mt.relu(h)
    return h


def task_losses(params: Params, x: mt.Tensor, y: mt.Tensor) -> mt.Tensor:
    """Each task's mean squared error: shape (tasks,)."""
    return ((forward(params, x) - y) ** 2).mean(axis=(1, 2))


def per_task(params: Params, tasks: int) -> Params:
    """One copy of every parameter per task (W -> (tasks, n_in, n_out), b -> (tasks, 1, n_out)), still a
    function of the shared parameters: the gradient of the summed task losses with respect to a copy
    is that task's own gradient."""
    copies = []
    for p in params:
        shape = (tasks,) + ((1,) if p.ndim == 1 else ()) + p.shape
        copies.append(p + mt.zeros(shape, dtype=p.dtype))
    return copies


def adapt(params: Params, x: mt.Tensor, y: mt.Tensor, inner_lr: float, inner_steps: int,
          create_graph: bool) -> Params:
    """The fast weights of every task after `inner_steps` SGD steps on its support set. With
    create_graph they stay differentiable functions of `params` (second-order MAML); without,
    each inner gradient is a constant (first-order MAML)."""
    fast = per_task(params, x.shape[0])
    for _ in range(inner_steps):
        # retain_graph: the meta-gradient goes back through these nodes to `params` (first order too)
        grads = grad(task_losses(fast, x, y).sum(), fast, retain_graph=True, create_graph=create_graph)
        fast = [w - inner_lr * g for w, g in zip(fast, grads)]
    return fast


def meta_loss(params: Params, support: tuple, query: tuple, inner_lr: float, inner_steps: int,
              first_order: bool = False) -> mt.Tensor:
    """The mean over tasks of the query loss of the adapted network."""
    fast = adapt(params, *support, inner_lr, inner_steps, create_graph=not first_order)
    return task_losses(fast, *query).mean()


def meta_gradient(params: Params, support: tuple, query: tuple, inner_lr: float, inner_steps: int = 1,
                  first_order: bool = False) -> list[np.ndarray]:
    """d meta_loss / d params as arrays (FOMAML's approximation with first_order)."""
    loss = meta_loss(params, support, query, inner_lr, inner_steps, first_order)
    return [g.numpy() for g in grad(loss, params)]


# ---- training and evaluation -----------------------------------------------------------------

def evaluate(params: Params, x: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> tuple[float, float]:
    """(mean query loss before adaptation, after args.eval_steps inner steps) on held-out tasks."""
    support, query = split(x, y, args.shots)
    before = task_losses(params, *query).mean().item()
    fast = adapt(params, *support, args.inner_lr, args.eval_steps, create_graph=False)
    return before, task_losses(fast, *query).mean().item()


def train(args: argparse.Namespace) -> dict:
    """Meta-train; returns {"history": [(step, pre, post)], "params": the meta-parameters}."""
    rng = np.random.default_rng(args.seed)
    params = init_params(rng, (1, args.hidden, args.hidden, 1))
    held_out = sample_tasks(np.random.default_rng(args.seed + 1), args.eval_tasks, 2 * args.shots)
    optimizer = optim.Adam(params, lr=args.meta_lr)
    kind = "first-order MAML" if args.first_order else "MAML (second order)"
    print(f"{kind}: {args.steps} meta-steps of {args.meta_batch} tasks, K={args.shots}, "
          f"inner lr {args.inner_lr}, {args.inner_steps} inner step(s)")
    history, start = [], time.perf_counter()
    for step in range(args.steps + 1):
        if step % args.eval_every == 0 or step == args.steps:
            pre, post = evaluate(params, *held_out, args)
            history.append((step, pre, post))
            print(f"step {step:5d}  held-out loss: before adaptation {pre:.3f}, after {args.eval_steps} "
                  f"step(s) {post:.3f}  ({time.perf_counter() - start:.1f}s)")
        if step == args.steps:
            break
        support, query = split(*sample_tasks(rng, args.meta_batch, 2 * args.shots), args.shots)
        loss = meta_loss(params, support, query, args.inner_lr, args.inner_steps, args.first_order)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {"history": history, "params": params}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10000, help="meta-training steps")
    parser.add_argument("--meta-batch", type=int, default=25, help="tasks per meta-step")
    parser.add_argument("--shots", type=int, default=10, help="K: support (and query) points per task")
    parser.add_argument("--inner-lr", type=float, default=0.01, help="alpha, the inner SGD step size")
    parser.add_argument("--inner-steps", type=int, default=1, help="inner SGD steps during meta-training")
    parser.add_argument("--eval-steps", type=int, default=10, help="inner SGD steps on held-out tasks")
    parser.add_argument("--meta-lr", type=float, default=1e-3, help="Adam's learning rate on the meta-parameters")
    parser.add_argument("--hidden", type=int, default=40, help="width of both hidden layers")
    parser.add_argument("--first-order", action="store_true", help="FOMAML: no gradient through the inner step")
    parser.add_argument("--eval-tasks", type=int, default=100, help="held-out tasks")
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    result = train(parse_args(argv))
    _, pre, post = result["history"][-1]
    print(f"done: held-out loss {pre:.3f} before adaptation, {post:.3f} after")
    return result


if __name__ == "__main__":
    main()
