"""Train a 2-layer MLP on "two moons" with minitf's autograd alone (no nn, no optim).

    python examples/mlp_toy.py

Parameters are plain tensors with requires_grad=True, the loss is softmax cross-entropy
written with exp/log/sum/max, and the update is SGD with momentum, written out below.
"""
import numpy as np

import minitf as mt


def two_moons(n, rng, noise=0.1):
    """n points on two interleaved half circles, labelled 0 and 1."""
    t = rng.uniform(0, np.pi, n)
    label = rng.integers(0, 2, n)
    x = np.where(label == 0, np.cos(t), 1 - np.cos(t))
    y = np.where(label == 0, np.sin(t), 0.5 - np.sin(t))
    points = np.stack([x, y], axis=1) + noise * rng.standard_normal((n, 2))
    return points.astype(np.float32), label


def cross_entropy(logits, labels):
    """Mean of -log softmax(logits)[label], stabilized by subtracting the row maximum."""
    z = logits - logits.max(axis=1, keepdims=True).detach()
    log_probs = z - z.exp().sum(axis=1, keepdims=True).log()
    return -log_probs[np.arange(len(labels)), labels].mean()


def main(steps=300, hidden=32, lr=0.3, momentum=0.9, seed=0, log_every=50):
    rng = np.random.default_rng(seed)
    points, labels = two_moons(256, rng)
    x = mt.tensor(points)
    params = [
        mt.tensor(rng.standard_normal((2, hidden)).astype(np.float32) * 0.5, requires_grad=True),
        mt.tensor(np.zeros(hidden, np.float32), requires_grad=True),
        mt.tensor(rng.standard_normal((hidden, 2)).astype(np.float32) * 0.2, requires_grad=True),
        mt.tensor(np.zeros(2, np.float32), requires_grad=True),
    ]
    velocity = [np.zeros_like(p.data) for p in params]
    losses = []
    for step in range(steps + 1):
        w1, b1, w2, b2 = params
        logits = (x @ w1 + b1).tanh() @ w2 + b2
        loss = cross_entropy(logits, labels)
        losses.append(loss.item())
        if step % log_every == 0:
            print(f"step {step:4d}  loss {losses[-1]:.4f}")
        if step == steps:
            break
        for p in params:
            p.zero_grad()
        loss.backward()
        for p, v in zip(params, velocity):
            v *= momentum
            v -= lr * p.grad
            p.data += v
    accuracy = float((logits.numpy().argmax(axis=1) == labels).mean())
    print(f"final loss {losses[-1]:.4f} (initial {losses[0]:.4f}), accuracy {accuracy:.1%}")
    return losses, accuracy


if __name__ == "__main__":
    main()
