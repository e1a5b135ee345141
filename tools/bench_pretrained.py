"""Pretrained-encoder benchmark: minitf's BERT against sentence-transformers / transformers on the same CPU.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tools/bench_pretrained.py models/all-MiniLM-L6-v2
    python tools/bench_pretrained.py FOLDER --config tiny --rounds 1 --repeats 1 --only minitf   # a smoke run
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tools/bench_pretrained.py models/all-MiniLM-L6-v2 \
        --case finetune --rounds 5   # the example's whole fine-tuning in each framework

Three measures on one model folder (e.g. all-MiniLM-L6-v2), each in a subprocess per framework; the
frameworks alternate for --rounds rounds (who goes first too) and the table shows medians over rounds
and the median of the per-round ratios:
  encode     sentences per second of minitf's `model.encode` and sentence-transformers'
             `SentenceTransformer.encode` on the same generated sentences (1 to 3 of the fine-tuning
             example's sentences each), same batch size, float32, tokenization and pooling included
             (median of --repeats passes after --warmup)
  step       ms per fine-tuning step: forward, cross-entropy, backward, clip_grad_norm_ (1.0) and an
             AdamW step (lr 5e-5, weight decay 0.01 on every parameter) of the encoder with the fine-tuning
             example's head (mean of the last hidden states over real tokens, dropout 0.1, a linear layer),
             on a fixed (batch, length) batch of token ids; PyTorch runs transformers' `BertModel` (its
             default attention); both with the folder's dropout inside the encoder (train mode)
  memory     the loaded encoder's parameter bytes, and the growth of the process's resident memory
             (/proc/self/statm, else the peak from resource.getrusage) over loading it, imports done first
             (what a library imports lazily while loading still counts)
The sentences are generated (examples/finetune_classifier.py), so nothing is downloaded.

--case finetune runs instead the example's whole fine-tuning in each framework (tools/pretrained_finetune.py:
its data, hyperparameters and loop; each framework's tokenizer, model and optimizer), round r with seed
--seed + r, and tabulates test and per-epoch validation accuracy, ms per step and total seconds.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import resource
import statistics
import sys
from pathlib import Path

import machine  # tools/machine.py: the CPU and the BLAS kernel NumPy runs
from rounds import add_round_arguments, alternate, spawn, timed  # tools/rounds.py: workers, alternating rounds
import pretrained_finetune  # tools/pretrained_finetune.py: the finetune case

CONFIGS = {
    "ref": dict(sentences=512, encode_batch=32, batch=32, length=48, classes=4),
    "tiny": dict(sentences=8, encode_batch=4, batch=4, length=8, classes=4),
}
ROWS = (("encode", "encode (sentences/s)", ",.1f"), ("step_ms", "fine-tuning step (ms)", ",.1f"),
        ("param_mb", "parameters (MB)", ",.3f"), ("rss_mb", "RSS growth on load (MB)", ",.1f"))
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "finetune_classifier.py"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path, help="the model folder (config.json, model.safetensors, tokenizer.json, ...)")
    p.add_argument("--config", choices=sorted(CONFIGS), default="ref")
    add_round_arguments(p, repeats=5, warmup=1, rounds=3)
    p.add_argument("--case", choices=["measures", "finetune"], default="measures",
                   help="measures: encode, step and memory; finetune: the example's whole fine-tuning")
    p.add_argument("--seed", type=int, default=0, help="finetune: round r trains with seed SEED + r")
    args = p.parse_args()
    if not args.model.is_dir():
        p.error(f"model folder {args.model} not found")
    if args.worker:
        print(json.dumps(run_worker(args)))
        return
    frameworks = [args.only] if args.only else ["minitf", "torch"]
    rounds = alternate(frameworks, args.rounds,
                       lambda name, r: spawn(__file__, name, args.threads, ["--seed", str(args.seed + r)]))
    print(f"machine: {machine.describe()}")
    if args.case == "finetune":
        pretrained_finetune.print_tables(example(), args, frameworks, rounds)
        return
    print(f"model {args.model.name}; config {args.config}: {CONFIGS[args.config]}; {args.threads} threads; float32; "
          f"medians of {args.repeats} calls in each of {args.rounds} alternating rounds")
    print("| measure | " + " | ".join(frameworks) + (" | minitf / torch |" if len(frameworks) == 2 else " |"))
    print("|---|" + "---:|" * (len(frameworks) + (len(frameworks) == 2)))
    for key, label, form in ROWS:
        cells = [format(statistics.median(r[f][key] for r in rounds), form) for f in frameworks]
        ratio = (f" | {statistics.median(r['minitf'][key] / r['torch'][key] for r in rounds):.2f}"
                 if len(frameworks) == 2 else "")
        print(f"| {label} | " + " | ".join(cells) + ratio + " |")




def rss_bytes() -> int:
    """The resident memory now (/proc/self/statm), or where that is missing the peak so far (getrusage)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


def example():
    spec = importlib.util.spec_from_file_location("finetune_classifier", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sentences(ex, count: int) -> list[str]:
    """`count` generated texts of 1 to 3 of the fine-tuning example's sentences (varied lengths), seeded."""
    pool, _ = ex.make_split("train", 3 * count, seed=0)
    rng = random.Random(0)
    return [" ".join(rng.sample(pool, rng.randint(1, 3))) for _ in range(count)]


def step_inputs(ex, tokenizer, c: dict):
    """A (batch, length) batch of token ids (texts truncated or padded to `length`), its mask and labels."""
    import numpy as np

    tokenizer.enable_truncation(c["length"])
    tokenizer.enable_padding(length=c["length"])
    encodings = tokenizer.encode_batch(sentences(ex, c["batch"]))
    ids, mask = (np.array([getattr(e, f) for e in encodings], dtype=np.int64) for f in ("ids", "attention_mask"))
    return ids, mask, np.arange(c["batch"]) % c["classes"]


def run_worker(args: argparse.Namespace) -> dict:
    c = CONFIGS[args.config]
    ex = example()
    if args.case == "finetune":
        return pretrained_finetune.run(ex, args.worker, args.model, args.config, args.seed, args.threads)
    measure = minitf_measures if args.worker == "minitf" else torch_measures
    out = measure(ex, args, c)
    out["encode"] = c["sentences"] / (out.pop("encode_ms") / 1e3)
    return out


def minitf_measures(ex, args: argparse.Namespace, c: dict) -> dict:
    import copy

    import minitf as mt
    import minitf.functional as F
    from minitf import nn, optim
    from minitf.pretrained.bert import load_bert

    texts = sentences(ex, c["sentences"])
    before = rss_bytes()
    encoder, tokenizer = load_bert(args.model)
    memory = {"rss_mb": (rss_bytes() - before) / 2**20,
              "param_mb": sum(p.data.nbytes for p in encoder.parameters()) / 2**20}
    encode_ms = timed(lambda: encoder.encode(texts, batch_size=c["encode_batch"]), args.repeats, args.warmup)
    mt.manual_seed(0)
    model = ex.Classifier(encoder, c["classes"], 0.1)
    model.train()
    ids, mask, labels = step_inputs(ex, copy.copy(tokenizer), c)
    optimizer = optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.01)

    def step():
        optimizer.zero_grad()
        F.cross_entropy(model(ids, mask), labels).backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return {**memory, "encode_ms": encode_ms, "step_ms": timed(step, args.repeats, args.warmup)}


def torch_measures(ex, args: argparse.Namespace, c: dict) -> dict:
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import BertModel

    from minitf.tokenizer.wordpiece import WordPieceTokenizer

    torch.set_num_threads(args.threads)
    texts = sentences(ex, c["sentences"])
    before = rss_bytes()
    st = SentenceTransformer(str(args.model), device="cpu")
    memory = {"rss_mb": (rss_bytes() - before) / 2**20,
              "param_mb": sum(p.numel() * p.element_size() for p in st.parameters()) / 2**20}
    encode_ms = timed(lambda: st.encode(texts, batch_size=c["encode_batch"], convert_to_numpy=True),
                      args.repeats, args.warmup)
    torch.manual_seed(0)
    bert = BertModel.from_pretrained(str(args.model))  # the folder's dropout (0.1), as minitf's
    dropout, head = torch.nn.Dropout(0.1), torch.nn.Linear(bert.config.hidden_size, c["classes"])
    params = list(bert.parameters()) + list(head.parameters())
    bert.train()
    dropout.train()
    ids, mask, labels = (torch.from_numpy(a) for a in step_inputs(
        ex, WordPieceTokenizer.from_file(args.model / "tokenizer.json"), c))
    weight = mask[:, :, None].float()
    optimizer = torch.optim.AdamW(params, lr=5e-5, weight_decay=0.01)

    def step():
        optimizer.zero_grad()
        states = bert(input_ids=ids, attention_mask=mask).last_hidden_state
        pooled = (states * weight).sum(1) / weight.sum(1).clamp(min=1.0)
        torch.nn.functional.cross_entropy(head(dropout(pooled)), labels).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
    return {**memory, "encode_ms": encode_ms, "step_ms": timed(step, args.repeats, args.warmup)}


if __name__ == "__main__":
    main()
