"""The finetune case of tools/bench_pretrained.py: the whole fine-tuning of examples/finetune_classifier.py
in minitf and in PyTorch/transformers, one worker process per framework and round, and its tables.

Both workers take the example's hyperparameters from its own argument parser (its defaults for
--config ref) and run its training loop (`fit`: the same generated splits, seeded batch order,
padding, schedule, per-epoch validation and final test accuracy); only the model, the optimizer and
the tokenizer are each framework's own:
  minitf   the example's `main` as is (load_bert, WordPiece tokenizer, Classifier, minitf's AdamW,
           LambdaLR, clip_grad_norm_)
  torch    transformers' `AutoTokenizer` on the folder (its ids are checked equal to minitf's: a
           difference stops the run), `BertModel` (the folder's dropout, train mode) with the same
           head (mean of the last hidden states over real tokens, dropout, Linear),
           `torch.optim.AdamW` over the same parameter groups (`decay_groups`), `LambdaLR` with the
           same factor, `clip_grad_norm_`
The heads' initial weights and the dropout masks come from each framework's generator (seeded with
the round's seed), so the accuracies of the two differ by chance; the rounds show by how much.
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from types import ModuleType

# the example's flags per config (ref: its defaults)
CONFIGS = {
    "ref": [],
    "tiny": ["--epochs", "2", "--batch-size", "4", "--train-size", "16", "--val-size", "8", "--test-size", "8",
             "--max-length", "12"],
}
SHOWN = ("epochs", "batch_size", "lr", "warmup", "max_length", "dropout", "train_size", "val_size", "test_size")


def example_args(ex: ModuleType, folder: Path, config: str, seed: int) -> argparse.Namespace:
    """The example's parsed arguments for `config` and `seed`."""
    return ex.parse_args([str(folder), *CONFIGS[config], "--seed", str(seed)])


def run(ex: ModuleType, framework: str, folder: Path, config: str, seed: int, threads: int) -> dict:
    """One whole fine-tuning in `framework`: the numbers the tables need."""
    if framework == "minitf":
        history = ex.main([str(folder), *CONFIGS[config], "--seed", str(seed)])
    else:
        history = torch_fit(ex, example_args(ex, folder, config, seed), threads)
    per_epoch = len(history["loss"]) // len(history["val_accuracy"])
    return {"test_accuracy": history["test_accuracy"], "val_accuracy": history["val_accuracy"],
            "ms_per_step": statistics.median(history["step_ms"]), "seconds": history["seconds"],
            "steps": len(history["step_ms"]), "final_loss": statistics.fmean(history["loss"][-per_epoch:]),
            "group_sizes": history["group_sizes"], "seed": seed}


def torch_fit(ex: ModuleType, args: argparse.Namespace, threads: int) -> dict:
    """The example's fine-tuning with transformers' BertModel and tokenizer and torch's optimizer."""
    import torch
    from transformers import AutoTokenizer, BertModel

    from minitf.pretrained._bert_config import read_pooling

    torch.set_num_threads(threads)
    torch.manual_seed(args.seed)
    encoder = BertModel.from_pretrained(str(args.model))  # dropout as the folder's config.json says
    if args.max_length > encoder.config.max_position_embeddings:
        raise SystemExit(f"max length {args.max_length} is more than the model's "
                         f"{encoder.config.max_position_embeddings} positions")
    if args.freeze_encoder:
        encoder.requires_grad_(False)
    model = torch_classifier(encoder, len(ex.LABELS), args.dropout)
    model.train()
    splits = ex.make_splits(args)
    lowercase = read_pooling(args.model).lowercase  # the folder's do_lower_case, as minitf's run applies it
    tokenizer = AutoTokenizer.from_pretrained(str(args.model))
    rows = {s: tokenizer([t.lower() for t in texts] if lowercase else texts, truncation=True,
                         max_length=args.max_length)["input_ids"] for s, (texts, _) in splits.items()}
    check_same_ids(ex, args, splits, rows, lowercase)
    labels = {s: y for s, (_, y) in splits.items()}
    groups = ex.decay_groups(model.named_parameters())
    optimizer = torch.optim.AdamW(groups, lr=args.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, ex.schedule(args)[1])
    trained = [p for g in groups for p in g["params"]]

    def step(ids, mask, y):
        loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(ids), torch.from_numpy(mask)),
                                                 torch.from_numpy(y))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, ex.CLIP_NORM)
        optimizer.step()
        scheduler.step()
        return loss.detach()

    def evaluate(split: str) -> float:
        model.eval()
        right = 0
        with torch.no_grad():
            for start in range(0, len(rows[split]), ex.EVAL_BATCH_SIZE):
                ids, mask = ex.batch(rows[split][start:start + ex.EVAL_BATCH_SIZE], encoder.config.pad_token_id)
                guess = model(torch.from_numpy(ids), torch.from_numpy(mask)).argmax(1).numpy()
                right += int((guess == labels[split][start:start + ex.EVAL_BATCH_SIZE]).sum())
        model.train()
        return right / len(rows[split])
    history = ex.fit(args, rows, labels, encoder.config.pad_token_id, step, evaluate)
    return {**history, "group_sizes": [sum(p.numel() for p in g["params"]) for g in groups]}


def torch_classifier(encoder, num_classes: int, dropout: float):
    """The example's Classifier in torch: encoder -> mean over real tokens -> dropout -> Linear; its
    parameter names are the example's (encoder.*, head.*), so decay_groups splits them alike."""
    import torch

    class Classifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.dropout = torch.nn.Dropout(dropout)
            self.head = torch.nn.Linear(encoder.config.hidden_size, num_classes)

        def forward(self, ids, mask):
            states = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, L, H)
            weight = mask[:, :, None].to(states.dtype)
            return self.head(self.dropout((states * weight).sum(1) / weight.sum(1).clamp(min=1.0)))
    return Classifier()


def check_same_ids(ex: ModuleType, args: argparse.Namespace, splits: dict, rows: dict, lowercase: bool) -> None:
    """Stop (SystemExit naming the sentence) unless transformers' ids equal minitf's WordPiece ids."""
    from minitf.tokenizer.wordpiece import WordPieceTokenizer

    ours = WordPieceTokenizer.from_file(args.model / "tokenizer.json")
    for split, (texts, _) in splits.items():
        expected = ex.tokenize(ours, texts, args.max_length, lowercase)
        for text, theirs, mine in zip(texts, rows[split], expected):
            if list(theirs) != mine:
                raise SystemExit(f"token ids differ on the {split} sentence {text!r}: transformers {list(theirs)}, "
                                 f"minitf {mine}")
        if len(rows[split]) != len(expected):
            raise SystemExit(f"{split}: transformers gave {len(rows[split])} rows, minitf {len(expected)}")


def print_tables(ex: ModuleType, args: argparse.Namespace, frameworks: list[str], rounds: list[dict]) -> None:
    """The settings, the medians over rounds (and the median per-round ratio of times), then each round."""
    settings = vars(example_args(ex, args.model, args.config, args.seed))
    print(f"model {args.model.name}; case finetune, config {args.config}: "
          + ", ".join(f"{k} {settings[k]}" for k in SHOWN) + f"; {args.threads} threads; float32; "
          f"{args.rounds} alternating rounds (a fresh process each), seed {args.seed} + round")
    print_summary(frameworks, rounds)
    print()
    print_rounds(frameworks, rounds)


def print_summary(frameworks: list[str], rounds: list[dict]) -> None:
    both = len(frameworks) == 2
    print("| measure | " + " | ".join(frameworks) + (" | minitf / torch |" if both else " |"))
    print("|---|" + "---:|" * (len(frameworks) + both))
    epochs = len(rounds[0][frameworks[0]]["val_accuracy"])
    rows = [("test accuracy", lambda r: r["test_accuracy"], ".3f", False)]
    rows += [(f"validation accuracy, epoch {e + 1}", lambda r, e=e: r["val_accuracy"][e], ".3f", False)
             for e in range(epochs)]
    rows += [("last epoch's train loss", lambda r: r["final_loss"], ".4f", False),
             ("ms per step (median)", lambda r: r["ms_per_step"], ",.1f", True),
             ("total seconds (training and evaluation)", lambda r: r["seconds"], ",.2f", True)]
    for label, get, form, ratio in rows:
        cells = [format(statistics.median(get(r[f]) for r in rounds), form) for f in frameworks]
        if both:
            cells.append(format(statistics.median(get(r["minitf"]) / get(r["torch"]) for r in rounds), ".2f")
                         if ratio else "")
        print(f"| {label} | " + " | ".join(cells) + " |")
    spread = [f"{min(r[f]['test_accuracy'] for r in rounds):.3f} to {max(r[f]['test_accuracy'] for r in rounds):.3f}"
              for f in frameworks]
    print("| test accuracy, lowest to highest round | " + " | ".join(spread) + (" | |" if both else " |"))
    sizes = [" + ".join(f"{n:,}" for n in rounds[0][f]["group_sizes"]) for f in frameworks]
    print("| trained parameters (decayed + not) | " + " | ".join(sizes) + (" | |" if both else " |"))


def print_rounds(frameworks: list[str], rounds: list[dict]) -> None:
    """One row per round: its seed, who went first, each framework's accuracies and ms/step, the ratio."""
    both = len(frameworks) == 2
    print("| round | seed | first | " + " | ".join(f"{f} test acc | {f} val acc per epoch | {f} ms/step"
                                                   for f in frameworks)
          + (" | ms/step minitf / torch |" if both else " |"))
    print("|---:|---:|---|" + "---:|---|---:|" * len(frameworks) + ("---:|" if both else ""))
    for i, r in enumerate(rounds):
        cells = [f"{r[f]['test_accuracy']:.3f} | " + ", ".join(f"{a:.3f}" for a in r[f]["val_accuracy"])
                 + f" | {r[f]['ms_per_step']:,.1f}" for f in frameworks]
        ratio = f" | {r['minitf']['ms_per_step'] / r['torch']['ms_per_step']:.2f}" if both else ""
        print(f"| {i} | {r[frameworks[0]]['seed']} | {next(iter(r))} | " + " | ".join(cells) + ratio + " |")
