"""WGAN-GP (Gulrajani et al. 2017) on 2-D data: 8 Gaussians on a ring, small MLPs, a gradient penalty.

    python examples/gradient_penalty.py
    python examples/gradient_penalty.py --steps 500 --penalty 1.0 --activation leaky_relu

The critic D estimates the Wasserstein distance between the data and the generator's samples,
E[D(real)] - E[D(fake)], and is kept near 1-Lipschitz by the penalty
    lambda * E[(||grad_x D(x_hat)|| - 1)^2],  x_hat = t real + (1 - t) fake, t ~ U(0, 1),
whose gradient with respect to D's weights goes through grad_x D: the input gradient is taken
with create_graph=True and differentiated again (the double backward). The critic takes
--critic-steps Adam steps per generator step; the generator G(z), z ~ N(0, I_2), minimizes
-E[D(G(z))]. The log prints the Wasserstein estimate, the penalty, and how far the generated
samples lie from the nearest of the 8 modes (and how many modes they cover).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import minitf as mt
from minitf import nn, optim
from minitf.autograd import grad

MODES = 8


# ---- data --------------------------------------------------------------------------------------

def mode_centers(radius: float) -> np.ndarray:
    """The 8 modes (8, 2), evenly spaced on a circle."""
    angles = 2 * np.pi * np.arange(MODES) / MODES
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def sample_ring(rng: np.random.Generator, n: int, radius: float, std: float) -> np.ndarray:
    """n points (n, 2) drawn from the mixture of the 8 Gaussians, float32."""
    centers = mode_centers(radius)[rng.integers(0, MODES, n)]
    return (centers + std * rng.standard_normal((n, 2))).astype(np.float32)


def mode_distances(samples: np.ndarray, radius: float) -> np.ndarray:
    """Each sample's distance to its nearest mode."""
    centers = mode_centers(radius)
    return np.linalg.norm(samples[:, None, :] - centers[None], axis=2).min(axis=1)


def modes_covered(samples: np.ndarray, radius: float, within: float) -> int:
    """How many modes have at least one sample within `within` of them."""
    centers = mode_centers(radius)
    near = np.linalg.norm(samples[:, None, :] - centers[None], axis=2) < within
    return int(near.any(axis=0).sum())


# ---- models and losses -----------------------------------------------------------------------

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.2), "tanh": nn.Tanh}


def mlp(n_in: int, hidden: int, n_out: int, activation: str = "relu", layers: int = 3) -> nn.Sequential:
    """Linear-activation blocks then a Linear: `layers` Linear layers in all."""
    blocks, width = [], n_in
    for _ in range(layers - 1):
        blocks += [nn.Linear(width, hidden), ACTIVATIONS[activation]()]
        width = hidden
    return nn.Sequential(*blocks, nn.Linear(width, n_out))


def gradient_penalty(critic: nn.Module, real: mt.Tensor, fake: mt.Tensor, t: np.ndarray) -> mt.Tensor:
    """E[(||d critic(x_hat) / d x_hat|| - 1)^2] at x_hat = t real + (1 - t) fake (t: (batch, 1)), a
    differentiable function of the critic's weights: the input gradient keeps its graph."""
    x_hat = mt.tensor(t * real.numpy() + (1 - t) * fake.detach().numpy(), requires_grad=True)
    scores = critic(x_hat)
    (slopes,) = grad(scores.sum(), x_hat, create_graph=True)  # row i: d critic(x_hat_i) / d x_hat_i
    return ((slopes.norm(axis=1) - 1) ** 2).mean()


def critic_terms(critic, generator, real: mt.Tensor, z: mt.Tensor, rng) -> tuple[mt.Tensor, mt.Tensor]:
    """(the Wasserstein estimate E[D(real)] - E[D(G(z))], the gradient penalty), functions of D's weights."""
    with mt.no_grad():
        fake = generator(z)
    estimate = critic(real).mean() - critic(fake).mean()
    return estimate, gradient_penalty(critic, real, fake, rng.uniform(size=(real.shape[0], 1)).astype(real.dtype))


def critic_step(critic, generator, optimizer, real: mt.Tensor, z: mt.Tensor, rng, penalty_weight: float) -> None:
    """One Adam step on E[D(fake)] - E[D(real)] + lambda * penalty."""
    estimate, penalty = critic_terms(critic, generator, real, z, rng)
    optimizer.zero_grad()
    (penalty_weight * penalty - estimate).backward()
    optimizer.step()


def generator_step(critic, generator, optimizer, z: mt.Tensor) -> None:
    """One Adam step on -E[D(G(z))] (only the generator's parameters move)."""
    loss = -critic(generator(z)).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


# ---- training ----------------------------------------------------------------------------------

def batch(rng: np.random.Generator, args: argparse.Namespace, n: int) -> tuple[mt.Tensor, mt.Tensor]:
    """(n real points, n noise vectors z)."""
    return (mt.tensor(sample_ring(rng, n, args.radius, args.std)),
            mt.tensor(rng.standard_normal((n, 2)).astype(np.float32)))


def log_line(step: int, critic, generator, rng: np.random.Generator, args: argparse.Namespace,
             seconds: float) -> dict:
    """Print and return the critic's Wasserstein estimate and penalty on a fresh batch of
    args.eval_samples, and how close the generated samples lie to the modes."""
    real, z = batch(rng, args, args.eval_samples)
    estimate, penalty = critic_terms(critic, generator, real, z, rng)
    stats = {"wasserstein": estimate.item(), "penalty": penalty.item()}
    with mt.no_grad():
        samples = generator(z).numpy()
    distances = mode_distances(samples, args.radius)
    row = {"step": step, **stats, "samples": samples, "mean_distance": float(distances.mean()),
           "near": float((distances < 3 * args.std).mean()), "modes": modes_covered(samples, args.radius, 3 * args.std)}
    print(f"step {step:5d}  Wasserstein estimate {stats['wasserstein']:7.4f}  penalty {stats['penalty']:.4f}  "
          f"samples: mean distance to nearest mode {row['mean_distance']:.3f}, {row['near']:.0%} within 3 std of "
          f"one, modes covered {row['modes']}/{MODES}  ({seconds:.1f}s)")
    return row


def train(args: argparse.Namespace) -> dict:
    """Returns {"history": [log rows], "samples": the last generated samples}."""
    mt.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    generator, critic = mlp(2, args.hidden, 2, args.activation), mlp(2, args.hidden, 1, args.activation)
    opt_g = optim.Adam(generator.parameters(), lr=args.lr, betas=(0.5, 0.9))
    opt_d = optim.Adam(critic.parameters(), lr=args.lr, betas=(0.5, 0.9))
    eval_rng = np.random.default_rng(args.seed + 1)
    print(f"WGAN-GP on 8 Gaussians (radius {args.radius}, std {args.std}): {args.critic_steps} critic steps per "
          f"generator step, lambda {args.penalty}, batch {args.batch}")
    history, start = [], time.perf_counter()
    for step in range(args.steps + 1):
        if step % args.log_every == 0 or step == args.steps:
            history.append(log_line(step, critic, generator, eval_rng, args, time.perf_counter() - start))
        if step == args.steps:
            break
        for _ in range(args.critic_steps):
            critic_step(critic, generator, opt_d, *batch(rng, args, args.batch), rng, args.penalty)
        generator_step(critic, generator, opt_g, batch(rng, args, args.batch)[1])
    return {"history": history, "samples": history[-1]["samples"]}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2000, help="generator steps")
    parser.add_argument("--critic-steps", type=int, default=5, help="critic steps per generator step")
    parser.add_argument("--penalty", type=float, default=10.0, help="lambda, the gradient penalty's weight")
    parser.add_argument("--hidden", type=int, default=64, help="width of the MLPs' hidden layers")
    parser.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu", help="of both MLPs")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate (betas 0.5, 0.9)")
    parser.add_argument("--radius", type=float, default=2.0, help="radius of the ring of modes")
    parser.add_argument("--std", type=float, default=0.05, help="standard deviation of each mode")
    parser.add_argument("--eval-samples", type=int, default=1000, help="points of each logged evaluation")
    parser.add_argument("--log-every", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    result = train(parse_args(argv))
    last = result["history"][-1]
    print(f"done: samples lie {last['mean_distance']:.3f} from the nearest mode on average "
          f"(started at {result['history'][0]['mean_distance']:.3f}), {last['modes']}/{MODES} modes covered")
    return result


if __name__ == "__main__":
    main()
