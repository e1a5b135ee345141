"""Fine-tune a pretrained BERT-family encoder (e.g. all-MiniLM-L6-v2) for text classification in minitf.

    python examples/finetune_classifier.py MODEL_FOLDER [--epochs 3] [--freeze-encoder]

The data set is generated here, seeded, so nothing is downloaded: sentences about one of four topics
(sports, cooking, weather, music), each a topic-neutral template ("I heard that the {thing} {event}.")
filled with a topic's thing and event. The splits use different templates, and the test split also
different words: training sentences come from 8 templates and two thirds of each topic's things and
events, validation sentences from 3 other templates (same words), test sentences from 3 further
templates and only the held-out third of the words. Test accuracy thus measures how well the encoder
carries its knowledge of words it was not fine-tuned on, not memorization.

The classifier is a linear layer (with dropout before it) on the mean of the encoder's last hidden
states over the real tokens. We use this mean rather than [CLS] because it is the sentence embedding the
sentence-transformers encoders were trained to produce (their [CLS] state was never trained as a summary),
so the head starts from a representation that already separates meanings. The unit-length normalization
of `model.encode` is left out: it would only shrink the head's inputs.

Training: AdamW (no weight decay on biases and LayerNorm), a learning rate rising linearly over the
first --warmup fraction of the steps and then falling linearly to 0 (`LambdaLR`), gradient clipping at
norm 1 (`clip_grad_norm_`), dropout active in training mode; validation accuracy after each epoch, test
accuracy at the end, and the time per step. --freeze-encoder trains only the head (a fast baseline).
`tools/bench_pretrained.py FOLDER --case finetune` runs this same fine-tuning (data, schedule, loop) in
PyTorch/transformers too and compares accuracy and time per step.
"""
from __future__ import annotations

import argparse
import copy
import random
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

import minitf as mt
import minitf.functional as F
from minitf import nn, optim
from minitf.pretrained.bert import load_bert
from minitf.tokenizer.wordpiece import WordPieceTokenizer

TOPICS = {
    "sports": (["match", "tournament", "final", "race", "derby", "relay", "championship", "playoff", "marathon",
                "rematch", "league game", "cup tie"],
               ["went to penalties", "ended in a draw", "drew a record crowd", "went into extra time",
                "was decided by a late goal", "ended with a narrow win", "was won on the last lap",
                "saw the home team score twice", "finished with a surprising upset"]),
    "cooking": (["soup", "stew", "bread", "pie", "curry", "sauce", "risotto", "pastry", "omelette", "casserole",
                 "cake", "dumpling"],
                ["simmered for three hours", "came out of the oven golden", "needed more salt",
                 "was seasoned with fresh herbs", "burned on the bottom of the pan", "rose slowly overnight",
                 "was served with roasted garlic", "was stirred until it thickened", "tasted of butter and pepper"]),
    "weather": (["storm", "blizzard", "heatwave", "fog", "hailstorm", "thunderstorm", "drizzle", "frost", "gale",
                 "downpour", "cold front", "monsoon"],
                ["flooded the low streets", "dropped a foot of snow", "knocked out the power lines",
                 "kept the temperature above forty degrees", "brought strong gusts to the coast",
                 "left ice on every road", "lasted until the clouds cleared", "soaked the fields with rain",
                 "was on every forecast"]),
    "music": (["concert", "album", "symphony", "song", "recital", "opera", "jazz set", "chorus", "ballad",
               "guitar solo", "string quartet", "duet"],
              ["sold out in minutes", "was recorded in a single take", "ended with a standing ovation",
               "featured a long piano solo", "was played slightly out of tune", "topped the charts",
               "was performed by the orchestra", "had a catchy melody", "was sung in harmony"]),
}
TEMPLATES = {
    "train": ["Everyone was talking about the {thing} after it {event}.", "I heard that the {thing} {event}.",
              "The {thing} {event}, and nobody expected that.", "According to my sister, the {thing} {event}.",
              "Last night the {thing} {event}.", "It is rare that a {thing} {event}.",
              "We all agreed the {thing} {event}.", "The news said the {thing} {event} yesterday."],
    "val": ["Did you know the {thing} {event}?", "Apparently the {thing} {event} again.",
            "My friend wrote to say the {thing} {event}."],
    "test": ["Somebody mentioned that the {thing} {event} this week.", "Honestly, the {thing} {event}!",
             "The whole town remembers how the {thing} {event}."],
}
LABELS = list(TOPICS)
EVAL_BATCH_SIZE = 64  # sentences per batch when measuring accuracy
CLIP_NORM = 1.0  # the largest total gradient norm of a step


def words(topic: str, split: str) -> tuple[list[str], list[str]]:
    """The things and events of a topic a split draws from: every third one is held out for test."""
    things, events = TOPICS[topic]
    held_out = split == "test"
    return ([w for i, w in enumerate(things) if (i % 3 == 2) == held_out],
            [w for i, w in enumerate(events) if (i % 3 == 2) == held_out])


def make_split(split: str, size: int, seed: int) -> tuple[list[str], np.ndarray]:
    """`size` generated sentences of a split (topics in turn, so balanced) and their (size,) labels."""
    rng = random.Random(f"{seed}-{split}")
    texts, labels = [], []
    for i in range(size):
        label = i % len(LABELS)
        things, events = words(LABELS[label], split)
        template = rng.choice(TEMPLATES[split])
        texts.append(template.format(thing=rng.choice(things), event=rng.choice(events)))
        labels.append(label)
    order = rng.sample(range(size), size)
    return [texts[i] for i in order], np.array([labels[i] for i in order], dtype=np.int64)


def vocabulary() -> list[str]:
    """Every lower-cased word and punctuation mark the generator writes (for a test's tiny tokenizer)."""
    pieces = [w for things, events in TOPICS.values() for w in things + events]
    pieces += [t.replace("{thing}", " ").replace("{event}", " ") for ts in TEMPLATES.values() for t in ts]
    text = " ".join(pieces).lower()
    return sorted(set(text.replace(".", " . ").replace(",", " , ").replace("?", " ? ").replace("!", " ! ").split()))


class Classifier(nn.Module):
    """encoder -> mean of the last hidden states over real tokens -> dropout -> linear (hidden -> classes)."""

    def __init__(self, encoder: nn.Module, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, num_classes)

    def forward(self, ids: np.ndarray, mask: np.ndarray) -> mt.Tensor:
        """(B, L) token ids and attention mask -> (B, classes) logits."""
        states = self.encoder(ids, mask).last_hidden_state  # (B, L, H)
        weight = mask[:, :, None].astype(states.dtype)
        pooled = (states * mt.tensor(weight)).sum(axis=1) / mt.tensor(np.maximum(weight.sum(axis=1), 1.0))
        return self.head(self.dropout(pooled))


def tokenize(tokenizer: WordPieceTokenizer, texts: list[str], max_length: int,
             lowercase: bool = False) -> list[list[int]]:
    """Token ids of each text ([CLS] ... [SEP]), truncated to max_length, not padded; the texts
    lower-cased first if `lowercase` (a sentence-transformers folder's do_lower_case)."""
    tokenizer = copy.copy(tokenizer)  # the model's own keeps its settings
    tokenizer.enable_truncation(max_length)
    tokenizer.no_padding()
    texts = [t.lower() for t in texts] if lowercase else texts
    return [e.ids for e in tokenizer.encode_batch(texts)]


def batch(rows: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad token id lists to the longest: (B, L) ids and (B, L) attention mask."""
    length = max(len(r) for r in rows)
    ids = np.full((len(rows), length), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), length), dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, :len(r)], mask[i, :len(r)] = r, 1
    return ids, mask


def accuracy(model: Classifier, rows: list[list[int]], labels: np.ndarray, pad_id: int,
             size: int = EVAL_BATCH_SIZE) -> float:
    """The fraction of rows whose highest logit is their label (evaluation mode, no gradients)."""
    model.eval()
    right = 0
    with mt.no_grad():
        for start in range(0, len(rows), size):
            logits = model(*batch(rows[start:start + size], pad_id)).numpy()
            right += int((logits.argmax(axis=1) == labels[start:start + size]).sum())
    model.train()
    return right / len(rows)


def warmup_then_linear(warmup: int, total: int):
    """The LambdaLR factor: rising linearly to 1 over `warmup` steps, then linearly down to 0 at `total`."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))
    return factor


def schedule(args: argparse.Namespace) -> tuple[int, Callable[[int], float]]:
    """The number of optimizer steps and the LambdaLR factor (warm-up over args.warmup of them)."""
    total = -(-args.train_size // args.batch_size) * args.epochs
    return total, warmup_then_linear(round(args.warmup * total), total)


def decay_groups(named_parameters: Iterable[tuple[str, Any]], weight_decay: float = 0.01) -> list[dict]:
    """AdamW parameter groups of the trainable (name, parameter) pairs: weight decay on matrices only
    (not on biases and LayerNorm). Any framework's parameters with ``ndim`` and ``requires_grad``."""
    params = [(n, p) for n, p in named_parameters if p.requires_grad]
    decayed = [p.ndim >= 2 and "LayerNorm" not in n for n, p in params]
    groups = [{"params": [p for (_, p), d in zip(params, decayed) if d], "weight_decay": weight_decay},
              {"params": [p for (_, p), d in zip(params, decayed) if not d], "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def optimizer_for(model: Classifier, lr: float, freeze_encoder: bool) -> optim.AdamW:
    """AdamW over the trained parameters (the decay_groups); the encoder frozen if asked."""
    if freeze_encoder:
        model.encoder.requires_grad_(False)
    return optim.AdamW(decay_groups(model.named_parameters()), lr=lr)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path, help="the model folder (config.json, model.safetensors, tokenizer.json)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-5, help="peak learning rate (try 1e-3 with --freeze-encoder)")
    p.add_argument("--warmup", type=float, default=0.1, help="fraction of the steps spent warming up")
    p.add_argument("--max-length", type=int, default=32, help="tokens per sentence, [CLS] and [SEP] included")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--freeze-encoder", action="store_true", help="train only the head")
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--train-size", type=int, default=800)
    p.add_argument("--val-size", type=int, default=200)
    p.add_argument("--test-size", type=int, default=400)
    args = p.parse_args(argv)
    for name in ("epochs", "batch_size", "max_length", "train_size", "val_size", "test_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.max_length < 3:
        p.error(f"--max-length must be at least 3 ([CLS], a token, [SEP]), got {args.max_length}")
    if not 0 <= args.warmup < 1:
        p.error(f"--warmup is a fraction of the steps in [0, 1), got {args.warmup}")
    if not 0 <= args.dropout < 1 or args.lr <= 0:
        p.error("--dropout must be in [0, 1) and --lr positive")
    return args


def make_splits(args: argparse.Namespace) -> dict[str, tuple[list[str], np.ndarray]]:
    """The train, val and test splits of the sizes args asks for, seeded by args.seed."""
    return {s: make_split(s, getattr(args, f"{s}_size"), args.seed) for s in ("train", "val", "test")}


def fit(args: argparse.Namespace, rows: dict[str, list[list[int]]], labels: dict[str, np.ndarray], pad_id: int,
        step: Callable[[np.ndarray, np.ndarray, np.ndarray], Any], evaluate: Callable[[str], float]) -> dict:
    """The training loop, whatever the framework: each epoch the training rows in a seeded random order,
    in padded batches; ``step(ids, mask, labels)`` trains on one batch and returns its loss (anything
    ``float`` takes); ``evaluate(split)`` is a split's accuracy, taken on "val" after each epoch and on
    "test" at the end. Returns the history: loss and ms of each step, per epoch the validation accuracy
    and median ms per step, the test accuracy, and the seconds the whole loop took."""
    rng = np.random.default_rng(args.seed)
    history = {"loss": [], "step_ms": [], "val_accuracy": [], "ms_per_step": []}
    began_all = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        order, times, losses = rng.permutation(args.train_size), [], []
        for start in range(0, args.train_size, args.batch_size):
            take = order[start:start + args.batch_size]
            ids, mask = batch([rows["train"][i] for i in take], pad_id)
            began = time.perf_counter()
            loss = step(ids, mask, labels["train"][take])
            times.append((time.perf_counter() - began) * 1e3)
            losses.append(float(loss))
        history["loss"] += losses
        history["step_ms"] += times
        history["val_accuracy"].append(evaluate("val"))
        history["ms_per_step"].append(float(np.median(times)))
        print(f"epoch {epoch}: train loss {np.mean(losses):.4f}, validation accuracy "
              f"{history['val_accuracy'][-1]:.3f}, {history['ms_per_step'][-1]:.0f} ms/step (median)")
    history["test_accuracy"] = evaluate("test")
    history["seconds"] = time.perf_counter() - began_all
    print(f"test accuracy {history['test_accuracy']:.3f} (held-out templates and words; chance "
          f"{1 / len(LABELS):.2f})")
    return history


def main(argv: list[str] | None = None) -> dict:
    """Fine-tune as the command line says; returns fit's history and the number of trained parameters
    in each AdamW group ("group_sizes": weight-decayed first, then the others)."""
    args = parse_args(argv)
    encoder, _ = load_bert(args.model)
    if args.max_length > encoder.config.max_position_embeddings:
        raise SystemExit(f"--max-length {args.max_length} is more than the model's "
                         f"{encoder.config.max_position_embeddings} positions")
    mt.manual_seed(args.seed)
    model = Classifier(encoder, len(LABELS), args.dropout)
    model.train()
    splits = make_splits(args)
    rows = {s: tokenize(encoder.tokenizer, texts, args.max_length, encoder.pooling.lowercase)
            for s, (texts, _) in splits.items()}
    labels = {s: y for s, (_, y) in splits.items()}
    pad = encoder.config.pad_token_id
    total, factor = schedule(args)
    optimizer = optimizer_for(model, args.lr, args.freeze_encoder)
    scheduler = optim.lr_scheduler.LambdaLR(optimizer, factor)
    trained = [p for g in optimizer.param_groups for p in g["params"]]
    sizes = [sum(p.size for p in g["params"]) for g in optimizer.param_groups]
    print(f"{sum(sizes):,} trained parameters; {total} steps; example: {splits['train'][0][0]!r}")

    def step(ids: np.ndarray, mask: np.ndarray, y: np.ndarray) -> mt.Tensor:
        loss = F.cross_entropy(model(ids, mask), y)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(trained, CLIP_NORM)
        optimizer.step()
        scheduler.step()
        return loss
    history = fit(args, rows, labels, pad, step, lambda split: accuracy(model, rows[split], labels[split], pad))
    return {**history, "group_sizes": sizes}


if __name__ == "__main__":
    main()
