"""A makemore-style character MLP (Bengio et al. 2003) in minitf: the embeddings of the last
3 characters, a tanh hidden layer and a softmax over the next character; then samples names.

    python examples/char_mlp.py                       # a generated corpus of name-like words
    python examples/char_mlp.py --data names.txt      # your own words, one per line

The default corpus is generated here (syllables drawn by a seeded generator), so nothing is
downloaded. Data loading uses NumPy and the standard library; the model, the training loop
and the sampling use minitf only.
"""
from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np

import minitf as mt
import minitf.functional as F
from minitf import nn, optim

END = "."  # marks both the start (as context padding) and the end of a word

ONSETS = ["b", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "ch",
          "cl", "dr", "sh", "st", "th", "tr"]
VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ia", "io", "y"]
CODAS = ["", "", "", "n", "l", "r", "s", "th", "x", "nd"]


# ---- data (NumPy and the standard library) ---------------------------------------------------

def synthetic_names(n: int, seed: int = 0) -> list[str]:
    """n name-like words of 1 to 3 syllables (onset + vowel + optional coda), deterministic."""
    rng = random.Random(seed)
    words = []
    for _ in range(n):
        syllables = rng.choice([1, 2, 2, 2, 3])
        word = "".join(rng.choice(ONSETS) * (i > 0 or rng.random() < 0.8) + rng.choice(VOWELS)
                       + (rng.choice(CODAS) if i == syllables - 1 else "") for i in range(syllables))
        words.append(word)
    return words


def read_words(path: str) -> list[str]:
    words = [line.strip().lower() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    words = [w for w in words if w]
    if not words:
        raise ValueError(f"{path}: no words (expected one word per line)")
    if any(END in w for w in words):
        raise ValueError(f"{path}: words may not contain {END!r}, which marks a word's end")
    return words


def build_dataset(words: list[str], stoi: dict[str, int], block: int) -> tuple[np.ndarray, np.ndarray]:
    """(contexts (N, block), next characters (N,)): every position of every word, then its end."""
    contexts, targets = [], []
    for word in words:
        context = [0] * block
        for ch in word + END:
            contexts.append(context)
            targets.append(stoi[ch])
            context = context[1:] + [stoi[ch]]
    return np.array(contexts, dtype=np.int64), np.array(targets, dtype=np.int64)


# ---- model, training and sampling (minitf only) ----------------------------------------------

class CharMLP(nn.Module):
    def __init__(self, vocab: int, block: int, n_embd: int, n_hidden: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, n_embd)
        self.hidden = nn.Linear(block * n_embd, n_hidden)
        self.out = nn.Linear(n_hidden, vocab)

    def forward(self, contexts: mt.Tensor) -> mt.Tensor:
        """contexts: (B, block) ids -> logits (B, vocab)."""
        return self.out(self.hidden(self.embedding(contexts).flatten(1)).tanh())


def evaluate(model: CharMLP, x: mt.Tensor, y: mt.Tensor) -> float:
    with mt.no_grad():
        return float(F.cross_entropy(model(x), y))


def sample(model: CharMLP, itos: list[str], block: int, n: int, temperature: float,
           max_len: int = 30) -> list[str]:
    """n words drawn character by character from softmax(logits / temperature)."""
    words = []
    with mt.no_grad():
        for _ in range(n):
            context, chars = mt.zeros((1, block), dtype=np.int64), []
            for _ in range(max_len):
                probs = F.softmax(model(context) / temperature, dim=-1)
                ix = mt.multinomial(probs, 1)  # (1, 1)
                if int(ix) == 0:
                    break
                chars.append(itos[int(ix)])
                context = mt.concat([context[:, 1:], ix], dim=1)
            words.append("".join(chars))
    return words


def train(args: argparse.Namespace) -> dict:
    mt.manual_seed(args.seed)
    words = read_words(args.data) if args.data else synthetic_names(args.words, args.seed)
    chars = sorted(set("".join(words)))
    itos = [END] + chars
    stoi = {ch: i for i, ch in enumerate(itos)}
    random.Random(args.seed).shuffle(words)
    split = int(0.9 * len(words))
    xtr, ytr = (mt.tensor(a) for a in build_dataset(words[:split], stoi, args.block))
    xva, yva = (mt.tensor(a) for a in build_dataset(words[split:], stoi, args.block))
    print(f"{len(words)} words, {len(itos)} characters, {len(ytr)} train / {len(yva)} val examples")

    model = CharMLP(len(itos), args.block, args.n_embd, args.n_hidden)
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=max(1, args.steps * 3 // 4), gamma=0.1)
    history = {"train": [evaluate(model, xtr, ytr)], "val": [evaluate(model, xva, yva)]}
    print(f"step {0:5d}: train {history['train'][-1]:.4f}, val {history['val'][-1]:.4f}")
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        ix = mt.randint(0, len(ytr), (args.batch_size,))
        loss = F.cross_entropy(model(xtr.index_select(0, ix)), ytr.index_select(0, ix))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        if step % args.eval_every == 0 or step == args.steps:
            history["train"].append(evaluate(model, xtr, ytr))
            history["val"].append(evaluate(model, xva, yva))
            print(f"step {step:5d}: train {history['train'][-1]:.4f}, val {history['val'][-1]:.4f} "
                  f"(batch loss {float(loss):.4f}, lr {scheduler.get_last_lr()[0]:.3g})")
    seconds = time.perf_counter() - start
    samples = sample(model, itos, args.block, args.num_samples, args.temperature)
    print(f"trained {args.steps} steps in {seconds:.1f} s; samples at temperature {args.temperature}:")
    print("  " + " ".join(samples))
    return {"history": history, "samples": samples, "alphabet": set(chars), "seconds": seconds}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="a text file with one word per line (default: generated names)")
    parser.add_argument("--words", type=int, default=4000, help="generated words when --data is not given")
    parser.add_argument("--block", type=int, default=3, help="context length in characters")
    parser.add_argument("--n-embd", type=int, default=10)
    parser.add_argument("--n-hidden", type=int, default=200)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--num-samples", type=int, default=10)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args(argv)


if __name__ == "__main__":
    train(parse_args())
