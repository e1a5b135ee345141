"""The top of a network's training-loss Hessian spectrum by Lanczos iteration on Hessian-vector
products: the Hessian (n x n for n parameters) is never formed.

    python examples/hessian_spectrum.py                       # a 2-16-16-2 tanh MLP on two moons
    python examples/hessian_spectrum.py --check --hidden 4    # also form H and compare with eigvalsh

The parameters are one flat vector theta (the network slices and reshapes it), so the loss is a
function L(theta) and each product H v is minitf.func.hvp(L, theta, v): reverse mode over
reverse mode, the gradient of (grad L . v), one double backward pass. Lanczos with full
reorthogonalization turns k products into a k x k tridiagonal matrix whose extreme eigenvalues
(Ritz values) converge to H's first. The spectrum is printed at initialization and after
--steps Adam steps. With --check, minitf.func.hessian also forms H (n double backward passes)
and numpy.linalg.eigvalsh gives the exact eigenvalues to compare.
"""
from __future__ import annotations

import argparse
import time
from typing import Callable

import numpy as np

import minitf as mt
from minitf import func, optim


# ---- data and the network as a function of one flat parameter vector -------------------------

def two_moons(n: int, rng: np.random.Generator, noise: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """n points (n, 2) on two interleaved half circles and their one-hot labels (n, 2)."""
    t = rng.uniform(0, np.pi, n)
    label = rng.integers(0, 2, n)
    x = np.where(label == 0, np.cos(t), 1 - np.cos(t))
    y = np.where(label == 0, np.sin(t), 0.5 - np.sin(t))
    points = np.stack([x, y], axis=1) + noise * rng.standard_normal((n, 2))
    return points, np.eye(2)[label]


def layer_shapes(sizes: tuple[int, ...]) -> list[tuple[int, ...]]:
    """[(n_in, n_out), (n_out,), ...]: the weights and biases, in theta's order."""
    shapes = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        shapes += [(n_in, n_out), (n_out,)]
    return shapes


def init_theta(sizes: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """A flat parameter vector: weights U(+-1/sqrt(n_in)) (PyTorch's bounds), zero biases."""
    parts = [rng.uniform(-1, 1, s) / np.sqrt(s[0]) if len(s) == 2 else np.zeros(s) for s in layer_shapes(sizes)]
    return np.concatenate([p.ravel() for p in parts])


def unflatten(theta: mt.Tensor, sizes: tuple[int, ...]) -> list[mt.Tensor]:
    """theta's slices reshaped to the layers' weights and biases (differentiable views)."""
    params, start = [], 0
    for shape in layer_shapes(sizes):
        count = int(np.prod(shape))
        params.append(theta[start:start + count].reshape(shape))
        start += count
    return params


def make_loss(points: np.ndarray, onehot: np.ndarray, sizes: tuple[int, ...]) -> Callable[[mt.Tensor], mt.Tensor]:
    """L(theta): the mean cross-entropy of the tanh MLP with parameters theta on the data."""
    x, targets = mt.tensor(points), mt.tensor(onehot)

    def loss(theta: mt.Tensor) -> mt.Tensor:
        params = unflatten(theta, sizes)
        h = x
        for i in range(0, len(params), 2):
            h = h @ params[i] + params[i + 1]
            if i + 2 < len(params):
                h = mt.tanh(h)
        return (h.logsumexp(axis=1) - (h * targets).sum(axis=1)).mean()
    return loss


# ---- Lanczos on Hessian-vector products -------------------------------------------------------

def hvp_operator(loss: Callable[[mt.Tensor], mt.Tensor], theta: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """v -> H v at theta, by func.hvp (no Hessian formed)."""
    at = mt.tensor(theta)

    def matvec(v: np.ndarray) -> np.ndarray:
        return func.hvp(loss, at, mt.tensor(v))[1].numpy()
    return matvec


def lanczos(matvec: Callable[[np.ndarray], np.ndarray], n: int, iterations: int,
            rng: np.random.Generator) -> np.ndarray:
    """The Ritz values (ascending) of a symmetric n x n operator after `iterations` Lanczos steps with
    full reorthogonalization (fewer when the Krylov space is exhausted first)."""
    basis = np.zeros((min(iterations, n) + 1, n))
    q = rng.standard_normal(n)
    basis[0] = q / np.linalg.norm(q)
    alphas, betas = [], []
    for j in range(min(iterations, n)):
        w = matvec(basis[j])
        alphas.append(basis[j] @ w)
        for _ in range(2):  # Gram-Schmidt twice against rounding ("twice is enough")
            w -= basis[:j + 1].T @ (basis[:j + 1] @ w)
        beta = np.linalg.norm(w)
        if j + 1 == len(basis) - 1 or beta <= 1e-10 * max(abs(a) for a in alphas):
            break
        betas.append(beta)
        basis[j + 1] = w / beta
    tridiagonal = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
    return np.linalg.eigvalsh(tridiagonal)


def top_eigenvalues(loss: Callable, theta: np.ndarray, iterations: int, top: int, seed: int = 0) -> dict:
    """{"top": the `top` largest Ritz values (descending), "min": the smallest, "products": how many
    Hessian-vector products Lanczos took, "seconds"}."""
    start = time.perf_counter()
    ritz = lanczos(hvp_operator(loss, theta), theta.size, iterations, np.random.default_rng(seed))
    return {"top": ritz[::-1][:top], "min": ritz[0], "products": len(ritz), "seconds": time.perf_counter() - start}


def explicit_eigenvalues(loss: Callable, theta: np.ndarray) -> np.ndarray:
    """numpy.linalg.eigvalsh of the Hessian formed by func.hessian (n x n), descending."""
    hessian = func.hessian(loss)(mt.tensor(theta)).numpy()
    return np.linalg.eigvalsh((hessian + hessian.T) / 2)[::-1]


# ---- the script -------------------------------------------------------------------------------

def train(loss: Callable, theta: np.ndarray, steps: int, lr: float) -> np.ndarray:
    """theta after `steps` Adam steps on the loss."""
    t = mt.tensor(theta.copy(), requires_grad=True)
    optimizer = optim.Adam([t], lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        loss(t).backward()
        optimizer.step()
    return t.detach().numpy().copy()


def report(name: str, loss: Callable, theta: np.ndarray, args: argparse.Namespace) -> dict:
    spectrum = top_eigenvalues(loss, theta, args.iterations, args.top, args.seed)
    values = ", ".join(f"{v:.5g}" for v in spectrum["top"])
    print(f"{name}: loss {loss(mt.tensor(theta)).item():.4f}; top eigenvalues {values}; smallest Ritz value "
          f"{spectrum['min']:.4g} ({spectrum['products']} Hessian-vector products, {spectrum['seconds']:.2f}s)")
    if args.check:
        start = time.perf_counter()
        exact = explicit_eigenvalues(loss, theta)[:len(spectrum["top"])]
        spectrum["exact"] = exact
        print(f"  check: eigvalsh of the {theta.size}x{theta.size} Hessian ({time.perf_counter() - start:.2f}s) "
              f"{', '.join(f'{v:.5g}' for v in exact)}; largest difference "
              f"{np.abs(exact - spectrum['top']).max():.2e}")
    return spectrum


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hidden", type=int, default=16, help="width of both hidden layers")
    parser.add_argument("--points", type=int, default=200, help="training points (two moons)")
    parser.add_argument("--steps", type=int, default=500, help="Adam steps before the second spectrum")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--iterations", type=int, default=80, help="Lanczos steps (Hessian-vector products)")
    parser.add_argument("--top", type=int, default=5, help="eigenvalues to print")
    parser.add_argument("--check", action="store_true", help="also form the Hessian and compare (small networks)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    sizes = (2, args.hidden, args.hidden, 2)
    loss = make_loss(*two_moons(args.points, rng), sizes)
    theta = init_theta(sizes, rng)
    print(f"MLP {'-'.join(map(str, sizes))} (tanh): {theta.size} parameters, {args.points} points, float64")
    results = {"init": report("initialization", loss, theta, args)}
    theta = train(loss, theta, args.steps, args.lr)
    results["trained"] = report(f"after {args.steps} Adam steps", loss, theta, args)
    return results


if __name__ == "__main__":
    main()
