"""A nanoGPT-style decoder-only character Transformer in minitf: token + learned position
embeddings, pre-norm blocks of causal self-attention and a GELU MLP, a final layer norm and a
linear head; AdamW with linear warm-up and cosine decay; then top-k / temperature sampling.

    python examples/char_transformer.py                    # a built-in generated text
    python examples/char_transformer.py --data input.txt   # any UTF-8 text file

The default text is generated here (counting sentences from a seeded grammar), so nothing is
downloaded. Reading the text uses NumPy and the standard library; the model, the training
loop and the sampling use minitf only.
"""
from __future__ import annotations

import argparse
import math
import random
import time
from pathlib import Path

import numpy as np

import minitf as mt
import minitf.functional as F
from minitf import nn, optim

NUMBERS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
THINGS = ["cats", "dogs", "birds", "boats", "trees", "stars", "books", "cups"]
PLACES = ["on the hill", "in the box", "by the sea", "under the bed", "at home"]


# ---- data (NumPy and the standard library) ---------------------------------------------------

def builtin_text(n_sentences: int = 3000, seed: int = 0) -> str:
    """Sentences such as 'three cats by the sea, four cats at home.': patterns a model can learn."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n_sentences):
        i, thing = rng.randrange(len(NUMBERS) - 1), rng.choice(THINGS)
        lines.append(f"{NUMBERS[i]} {thing} {rng.choice(PLACES)}, {NUMBERS[i + 1]} {thing} {rng.choice(PLACES)}.")
    return "\n".join(lines) + "\n"


def read_text(path: str | None, seed: int) -> str:
    if path is None:
        return builtin_text(seed=seed)
    text = Path(path).read_text(encoding="utf-8")
    if len(text) < 100:
        raise ValueError(f"{path}: {len(text)} characters; need at least 100 to train on")
    return text


# ---- model (minitf only) --------------------------------------------------------------------

class Block(nn.Module):
    """x + attention(norm(x)), then x + mlp(norm(x)) (pre-norm, as GPT-2)."""

    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attention = nn.FusedMultiHeadAttention(d_model, n_heads, dropout)
        self.mlp = nn.FeedForward(d_model, 4 * d_model, activation="gelu", dropout=dropout)

    def forward(self, x: mt.Tensor) -> mt.Tensor:
        x = x + self.attention(self.norm1(x), is_causal=True)
        return x + self.mlp(self.norm2(x))


class CharTransformer(nn.Module):
    def __init__(self, vocab: int, block: int, d_model: int, n_heads: int, n_layers: int,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.block = block
        self.tokens = nn.Embedding(vocab, d_model)
        self.positions = nn.Embedding(block, d_model)
        self.blocks = nn.ModuleList([Block(d_model, n_heads, dropout) for _ in range(n_layers)])
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)

    def forward(self, ids: mt.Tensor) -> mt.Tensor:
        """ids: (B, T) with T <= block -> logits (B, T, vocab)."""
        x = self.tokens(ids) + self.positions(mt.arange(ids.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


def loss_of(model: CharTransformer, x: mt.Tensor, y: mt.Tensor) -> mt.Tensor:
    logits = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def batch(data: mt.Tensor, block: int, size: int) -> tuple[mt.Tensor, mt.Tensor]:
    """`size` random windows of the text: inputs (size, block) and the next characters."""
    starts = mt.randint(0, len(data) - block, (size, 1))
    positions = starts + mt.arange(block)
    return mt.take(data, positions), mt.take(data, positions + 1)


def warmup_cosine(warmup: int, total: int, floor: float = 0.1):
    """The learning-rate factor: linear from 0 to 1 over `warmup` steps, then cosine to `floor`."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


def generate(model: CharTransformer, prompt: mt.Tensor, new_tokens: int, temperature: float,
             top_k: int) -> mt.Tensor:
    """prompt (1, T) ids -> (1, T + new_tokens): each next id drawn from the softmax of the
    top_k logits divided by the temperature."""
    ids = prompt
    with mt.no_grad():
        for _ in range(new_tokens):
            logits = model(ids[:, -model.block:])[:, -1, :] / temperature
            kth = logits.topk(min(top_k, logits.shape[-1]))[0][:, -1:]
            logits = logits.masked_fill(logits < kth, -math.inf)
            ids = mt.concat([ids, mt.multinomial(F.softmax(logits, dim=-1), 1)], dim=1)
    return ids


def train(args: argparse.Namespace) -> dict:
    mt.manual_seed(args.seed)
    text = read_text(args.data, args.seed)
    itos = sorted(set(text))
    stoi = {ch: i for i, ch in enumerate(itos)}
    encoded = np.array([stoi[ch] for ch in text], dtype=np.int64)
    split = int(0.9 * len(encoded))
    train_data, val_data = mt.tensor(encoded[:split]), mt.tensor(encoded[split:])
    print(f"{len(text)} characters, vocabulary of {len(itos)}")

    model = CharTransformer(len(itos), args.block, args.d_model, args.n_heads, args.n_layers, args.dropout)
    print(f"{model.num_parameters()} parameters")
    optimizer = optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=0.1)
    scheduler = optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(args.warmup, args.steps))

    def evaluate() -> tuple[float, float]:
        model.eval()
        with mt.no_grad():
            mt.manual_seed(args.seed + 1)  # the same evaluation windows every time
            losses = [float(loss_of(model, *batch(d, args.block, args.eval_batch))) for d in (train_data, val_data)]
        model.train()
        return losses[0], losses[1]

    history = {"train": [], "val": []}

    def report(step: int) -> None:
        tr, va = evaluate()
        history["train"].append(tr)
        history["val"].append(va)
        print(f"step {step:5d}: train {tr:.4f}, val {va:.4f}, lr {scheduler.get_last_lr()[0]:.2e}")

    report(0)
    mt.manual_seed(args.seed)
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        loss = loss_of(model, *batch(train_data, args.block, args.batch_size))
        optimizer.zero_grad()
        loss.backward()
        optim.clip_grad_norm(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        if step % args.eval_every == 0 or step == args.steps:
            report(step)
    seconds = time.perf_counter() - start

    model.eval()
    mt.manual_seed(args.seed)
    prompt = mt.tensor([[stoi[ch] for ch in (args.prompt or text.split()[0])]])
    out = generate(model, prompt, args.new_tokens, args.temperature, args.top_k)
    sample = "".join(itos[i] for i in out[0].tolist())
    print(f"trained {args.steps} steps in {seconds:.1f} s; sample (temperature {args.temperature}, "
          f"top-k {args.top_k}):\n{sample}")
    return {"history": history, "sample": sample, "alphabet": set(itos), "seconds": seconds}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="a UTF-8 text file (default: a built-in generated text)")
    parser.add_argument("--block", type=int, default=32, help="context length in characters")
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--n-heads", type=int, default=4)
    parser.add_argument("--n-layers", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--eval-batch", type=int, default=32)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--prompt", help="the text to continue (default: the text's first word)")
    parser.add_argument("--new-tokens", type=int, default=200)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1337)
    return parser.parse_args(argv)


if __name__ == "__main__":
    train(parse_args())
