"""The classic PyTorch MNIST CNN in minitf, on a small offline digit set.

conv 32 3x3 -> relu -> conv 64 3x3 -> relu -> max_pool 2 -> dropout 0.25 -> flatten -> linear 128
-> relu -> dropout 0.5 -> linear 10 -> log_softmax, trained with nll_loss, Adadelta(lr=1.0) and
StepLR(step_size=1, gamma=0.7), as in pytorch/examples/mnist. The images are 8x8, so both
convolutions pad by 1 and one pooling leaves 4x4x64 features.

Data: scikit-learn's 8x8 handwritten digits (1797 images) when scikit-learn is installed
(`pip install -e ".[examples]"`), else digits rendered from stroke templates (minitf.data.make_digits).
At the end the model is saved with minitf.save, loaded into a fresh model and evaluated again.

    python examples/digits_cnn.py [--epochs 8] [--data auto|sklearn|generated] [--device cuda]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import minitf
import minitf.functional as F
from minitf import nn, optim
from minitf.data import make_digits


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1, padding=1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(64 * 4 * 4, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: minitf.Tensor) -> minitf.Tensor:
        """x: (N, 1, 8, 8) -> class log-probabilities (N, 10)."""
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = self.dropout1(F.max_pool2d(x, 2))
        x = F.relu(self.fc1(minitf.flatten(x, 1)))
        return F.log_softmax(self.fc2(self.dropout2(x)), axis=1)


def load_data(source: str, seed: int) -> tuple[str, tuple[np.ndarray, ...]]:
    """(name, (train images, train labels, test images, test labels)): images (N, 1, 8, 8) float32
    standardized with the training set's mean and std, 80/20 split."""
    if source in ("auto", "sklearn"):
        try:
            from sklearn.datasets import load_digits  # noqa: PLC0415 (optional)
        except ImportError:
            if source == "sklearn":
                raise SystemExit('scikit-learn is not installed: pip install -e ".[examples]"') from None
        else:
            digits = load_digits()
            name, images, labels = "scikit-learn digits", digits.images / 16.0, digits.target
    if source == "generated" or (source == "auto" and "images" not in locals()):
        name, (images, labels) = "generated digits", make_digits(1800, seed=seed)
    order = np.random.default_rng(seed).permutation(len(labels))
    images, labels = images[order].astype(np.float32)[:, None], labels[order].astype(np.int64)
    cut = int(0.8 * len(labels))
    mean, std = images[:cut].mean(), images[:cut].std()
    images = (images - mean) / std
    return name, (images[:cut], labels[:cut], images[cut:], labels[cut:])


def evaluate(model: nn.Module, images: np.ndarray, labels: np.ndarray, device: str,
             batch_size: int = 500) -> tuple[float, float]:
    """(mean loss, accuracy) over a data set, in eval mode and without recording a graph."""
    model.eval()
    total, correct = 0.0, 0
    with minitf.no_grad():
        for i in range(0, len(labels), batch_size):
            x = minitf.tensor(images[i:i + batch_size], device=device)
            y = minitf.tensor(labels[i:i + batch_size], device=device)
            out = model(x)
            total += F.nll_loss(out, y, reduction="sum").item()
            correct += int((out.numpy().argmax(axis=1) == labels[i:i + batch_size]).sum())
    return total / len(labels), correct / len(labels)


def train_epoch(model: nn.Module, optimizer: optim.Optimizer, images: np.ndarray, labels: np.ndarray,
                batch_size: int, device: str, rng: np.random.Generator) -> float:
    model.train()
    order, losses = rng.permutation(len(labels)), []
    for i in range(0, len(labels), batch_size):
        idx = order[i:i + batch_size]
        x, y = minitf.tensor(images[idx], device=device), minitf.tensor(labels[idx], device=device)
        optimizer.zero_grad()
        loss = F.nll_loss(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return float(np.mean(losses))


def main(argv: list[str] | None = None) -> float:
    """Train, save, reload and evaluate; returns the reloaded model's test accuracy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--gamma", type=float, default=0.7)
    parser.add_argument("--data", choices=["auto", "sklearn", "generated"], default="auto")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--save", type=Path, default=None, help="where to save the weights (default: a temp dir)")
    args = parser.parse_args(argv)

    minitf.manual_seed(args.seed)
    name, (x_train, y_train, x_test, y_test) = load_data(args.data, args.seed)
    print(f"{name}: {len(y_train)} training and {len(y_test)} test images of {x_train.shape[2:]}")
    model = Net().to(args.device)
    optimizer = optim.Adadelta(model.parameters(), lr=args.lr)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=args.gamma)
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        train_loss = train_epoch(model, optimizer, x_train, y_train, args.batch_size, args.device, rng)
        test_loss, accuracy = evaluate(model, x_test, y_test, args.device)
        scheduler.step()
        print(f"epoch {epoch}: train loss {train_loss:.4f}, test loss {test_loss:.4f}, "
              f"accuracy {accuracy:.1%}, {time.perf_counter() - start:.1f} s")

    with tempfile.TemporaryDirectory() as tmp:
        path = args.save or Path(tmp) / "digits_cnn.safetensors"
        minitf.save(model.state_dict(), path)
        reloaded = Net()
        reloaded.load_state_dict(minitf.load(path))
        _, accuracy = evaluate(reloaded.to(args.device), x_test, y_test, args.device)
    print(f"saved to {path.name} and reloaded: test accuracy {accuracy:.1%}")
    return accuracy


if __name__ == "__main__":
    main()
