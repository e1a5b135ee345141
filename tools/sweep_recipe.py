"""Sweep training recipes on validation only: each candidate trains for the same time budget, then
its last checkpoints are averaged and the average is scored on the whole validation set.

    python tools/sweep_recipe.py --data ../shared/data/multi30k --out-dir runs/sweep --minutes 90 \
        --jobs 2 --threads 1 [--only tiny_d03 small_d03]      # trains, then reports
    python tools/sweep_recipe.py --data ... --out-dir runs/sweep --report-only  # the table of finished runs

Every candidate is `minitf train` with the shared settings of BASE and its own flags (CANDIDATES),
stopped by `--time-limit` (seconds of training steps; evaluation not counted). `--jobs` runs that
many at once, each on `--threads` threads: on a 2-core machine, 2 jobs x 1 thread measure each
candidate on one core, a conservative stand-in for the 2-core budget. The report gives, per run:
epochs and steps reached, the best greedy BLEU on the first `bleu_sentences` of val (the trainer's
own evaluation), and the cased sacreBLEU (beam 5, length penalty 0.6) on all of val of the best
checkpoint and of the average of the last `--average` checkpoints. The test sets are never read.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from minitf.data import read_parallel  # noqa: E402
from minitf.translation import Translator  # noqa: E402
from minitf.translation.average import average_checkpoints, select_checkpoints  # noqa: E402
from minitf.translation.metrics import bleu  # noqa: E402

BASE = dict(max_len=64, max_tokens=4096, label_smoothing=0.1, epochs=1000, patience=1000, keep_checkpoints=10,
            bleu_sentences=500)
CANDIDATES = {
    "base_d01": dict(d_model=256, d_ff=2048, n_heads=4, n_encoder_layers=3, n_decoder_layers=3, dropout=0.1,
                     vocab_size=8000, lr=1e-3, warmup=800),  # the recipe before this sweep
    "ff1024_b2048_d02": dict(d_model=256, d_ff=1024, n_heads=4, n_encoder_layers=3, n_decoder_layers=3,
                             dropout=0.2, vocab_size=8000, max_tokens=2048, lr=1e-3, warmup=1000),
    # ^ compute-bound: base_d01 was still improving when its 90 minutes ended, so a feed-forward half as wide
    #   (about 25% faster steps), batches half as large (twice the updates) and dropout 0.2 for the ~30 epochs
    "ff1024_b2048_d02_cos": dict(d_model=256, d_ff=1024, n_heads=4, n_encoder_layers=3, n_decoder_layers=3,
                                 dropout=0.2, vocab_size=8000, max_tokens=2048, lr=1e-3, warmup=1000,
                                 lr_decay="cosine"),
    # ^ the same, with a rate that anneals to 0 when the 90 minutes end: ff1024_b2048_d02's validation loss
    #   still fell at its last epoch, at a rate still 39% of the peak (inverse square root)
    "small_d03": dict(d_model=256, d_ff=1024, n_heads=4, n_encoder_layers=3, n_decoder_layers=3, dropout=0.3,
                      vocab_size=6000, bpe_dropout=0.1, lr=1e-3, warmup=800),
    "tiny_d03": dict(d_model=128, d_ff=512, n_heads=4, n_encoder_layers=4, n_decoder_layers=4, dropout=0.3,
                     vocab_size=6000, bpe_dropout=0.1, lr=2e-3, warmup=1000),
    "tiny_d03_wd": dict(d_model=128, d_ff=512, n_heads=4, n_encoder_layers=4, n_decoder_layers=4, dropout=0.3,
                        vocab_size=6000, bpe_dropout=0.1, word_dropout=0.1, lr=2e-3, warmup=1000),
}


def flags(settings: dict) -> list[str]:
    """{'d_model': 128} -> ['--d-model', '128']."""
    return [part for key, value in settings.items() for part in (f"--{key.replace('_', '-')}", str(value))]


def train_command(data: Path, out: Path, name: str, minutes: float) -> list[str]:
    files = dict(src_train=data / "train.de.gz", tgt_train=data / "train.en.gz", src_val=data / "val.de.gz",
                 tgt_val=data / "val.en.gz")
    return [sys.executable, "-m", "minitf.cli", "train", *flags({**files, **BASE, **CANDIDATES[name]}),
            "--time-limit", str(minutes * 60), "--out-dir", str(out / name)]


def train_all(names: list[str], data: Path, out: Path, minutes: float, jobs: int, threads: int) -> None:
    """Train the candidates, `jobs` at a time, each with `threads` threads; logs in OUT/NAME.out."""
    env = {**os.environ, "MINITF_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": "1"}
    waiting, running = list(names), []
    while waiting or running:
        while waiting and len(running) < jobs:
            name = waiting.pop(0)
            log = open(out / f"{name}.out", "w")  # noqa: SIM115 - closed when the process ends
            running.append((name, subprocess.Popen(train_command(data, out, name, minutes), stdout=log,
                                                   stderr=subprocess.STDOUT, env=env), log))
        time.sleep(5)
        for item in [r for r in running if r[1].poll() is not None]:
            running.remove(item)
            item[2].close()
            print(f"{item[0]}: exit status {item[1].returncode}", flush=True)


def val_bleu(checkpoint: str | Path, val: tuple[list[str], list[str]]) -> float:
    """Cased sacreBLEU of `checkpoint` on all of val, beam 5, length penalty 0.6."""
    hyps = Translator.from_checkpoint(str(checkpoint), log=lambda _: None).translate(
        val[0], beam_size=5, length_penalty=0.6)
    return bleu(hyps, val[1])


def summarize(name: str, out: Path, val: tuple[list[str], list[str]], average: int) -> dict:
    """One row of the report: how far the run got and its validation scores."""
    evals = [json.loads(line) for line in (out / name / "log.jsonl").read_text().splitlines()]
    evals = [r for r in evals if r.get("event") == "eval"]
    best = max(evals, key=lambda r: r["bleu"])
    averaged = out / name / f"average_last{average}.safetensors"
    average_checkpoints(select_checkpoints([out / name], last=average), averaged)
    return dict(name=name, epochs=evals[-1]["epoch"], steps=evals[-1]["step"],
                train_minutes=round(evals[-1]["train_seconds"] / 60, 1), best_greedy_500=round(best["bleu"], 2),
                best_epoch=best["epoch"], val_best=round(val_bleu(out / name / "best.safetensors", val), 2),
                val_average=round(val_bleu(averaged, val), 2))


def settings_text(name: str) -> str:
    return " ".join(f"{k}={v}" for k, v in CANDIDATES[name].items())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, type=Path, help="folder of {train,val}.{de,en}.gz")
    p.add_argument("--out-dir", required=True, type=Path)
    p.add_argument("--only", nargs="+", choices=sorted(CANDIDATES), help="these candidates (default: all)")
    p.add_argument("--minutes", type=float, default=90.0, help="training time of each candidate")
    p.add_argument("--jobs", type=int, default=1, help="candidates trained at once")
    p.add_argument("--threads", type=int, default=2, help="threads of each candidate")
    p.add_argument("--average", type=int, default=10, help="the last N checkpoints averaged")
    p.add_argument("--report-only", action="store_true", help="do not train: report the runs in --out-dir")
    args = p.parse_args(argv)
    names = args.only or list(CANDIDATES)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        train_all(names, args.data, args.out_dir, args.minutes, args.jobs, args.threads)
    val = read_parallel(args.data / "val.de.gz", args.data / "val.en.gz")
    val = (val.sources, val.targets)
    print(f"| candidate | settings | epochs | steps | train min | best greedy BLEU ({BASE['bleu_sentences']} val) "
          f"| val BLEU best ckpt | val BLEU avg last {args.average} |\n|---|---|---:|---:|---:|---:|---:|---:|")
    for name in names:
        if (args.out_dir / name / "log.jsonl").is_file():
            r = summarize(name, args.out_dir, val, args.average)
            print(f"| {name} | {settings_text(name)} | {r['epochs']} | {r['steps']} | {r['train_minutes']} | "
                  f"{r['best_greedy_500']} (epoch {r['best_epoch']}) | {r['val_best']} | {r['val_average']} |",
                  flush=True)


if __name__ == "__main__":
    main()
