"""A character-level LSTM language model in minitf: an embedding, a stacked nn.LSTM (batch_first,
dropout between layers) and a linear head, trained on random windows of a text with AdamW and
gradient clipping; then sampling one character at a time, carrying the LSTM's (h, c) state.

    python examples/char_lstm.py                    # the built-in generated text of char_transformer.py
    python examples/char_lstm.py --data input.txt   # any UTF-8 text file

Reading the text uses NumPy and the standard library; the model, the training loop and the
sampling use minitf only.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import minitf as mt
import minitf.functional as F
from minitf import nn, optim

sys.path.insert(0, str(Path(__file__).resolve().parent))
from char_transformer import batch, read_text, warmup_cosine  # noqa: E402  (the same data and schedule)


class CharLSTM(nn.Module):
    def __init__(self, vocab: int, d_embed: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d_embed)
        self.lstm = nn.LSTM(d_embed, hidden, num_layers=layers, dropout=dropout, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, ids: mt.Tensor, state: tuple[mt.Tensor, mt.Tensor] | None = None):
        """ids (B, T) -> logits (B, T, vocab) and the state (h, c) after the last character."""
        out, state = self.lstm(self.embed(ids), state)
        return self.head(out), state


def loss_of(model: CharLSTM, x: mt.Tensor, y: mt.Tensor) -> mt.Tensor:
    logits, _ = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def generate(model: CharLSTM, prompt: mt.Tensor, new_tokens: int, temperature: float) -> mt.Tensor:
    """prompt (1, T) ids -> (1, T + new_tokens): read the prompt once, then one character at a time
    from the softmax of the logits over the temperature, the state carried from step to step."""
    with mt.no_grad():
        logits, state = model(prompt)
        ids = [prompt]
        for _ in range(new_tokens):
            next_id = mt.multinomial(F.softmax(logits[:, -1] / temperature, dim=-1), 1)
            ids.append(next_id)
            logits, state = model(next_id, state)
    return mt.concat(ids, dim=1)


def train(args: argparse.Namespace) -> dict:
    mt.manual_seed(args.seed)
    text = read_text(args.data, args.seed)
    itos = sorted(set(text))
    stoi = {ch: i for i, ch in enumerate(itos)}
    encoded = np.array([stoi[ch] for ch in text], dtype=np.int64)
    split = int(0.9 * len(encoded))
    train_data, val_data = mt.tensor(encoded[:split]), mt.tensor(encoded[split:])
    model = CharLSTM(len(itos), args.d_embed, args.hidden, args.layers, args.dropout)
    print(f"{len(text)} characters, vocabulary of {len(itos)}; {model.num_parameters()} parameters")
    optimizer = optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
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
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        if step % args.eval_every == 0 or step == args.steps:
            report(step)
    seconds = time.perf_counter() - start

    model.eval()
    mt.manual_seed(args.seed)
    prompt = mt.tensor([[stoi[ch] for ch in (args.prompt or text.split()[0])]])
    sample = "".join(itos[i] for i in generate(model, prompt, args.new_tokens, args.temperature)[0].tolist())
    print(f"trained {args.steps} steps in {seconds:.1f} s; sample (temperature {args.temperature}):\n{sample}")
    return {"history": history, "sample": sample, "alphabet": set(itos), "seconds": seconds}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="a UTF-8 text file (default: a built-in generated text)")
    parser.add_argument("--block", type=int, default=64, help="characters per training window")
    parser.add_argument("--d-embed", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--eval-batch", type=int, default=64)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--prompt", help="the text to continue (default: the text's first word)")
    parser.add_argument("--new-tokens", type=int, default=200)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=1337)
    return parser.parse_args(argv)


if __name__ == "__main__":
    train(parse_args())
