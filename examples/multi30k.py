"""Multi30k German -> English with a 7.6M-parameter Transformer, then sacreBLEU on test_2016_flickr.

    python examples/multi30k.py --data ../shared/data/multi30k --out-dir runs/multi30k
    python examples/multi30k.py --data ... --out-dir runs/multi30k --resume   # after Ctrl-C or SIGTERM

The data directory holds {train,val,test_2016_flickr}.{de,en}.gz (Multi30k task 1, raw).
Training takes 90 minutes of training steps (`--time-limit`, evaluations not counted), the learning
rate reaching 0 as they end; 40 epochs, or 6 without a better validation BLEU, end it sooner. Ctrl-C (or
SIGTERM) saves OUT_DIR/last.safetensors and ends the script (exit status 130) without testing.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from minitf import cpu
from minitf.data import read_parallel
from minitf.errors import UserError
from minitf.translation import Trainer, TrainConfig
from minitf.translation.evaluate_sets import one_line, write_hypotheses
from minitf.translation import Translator, bleu, chrf

# The recipe of 2026-12-07 (tools/sweep_recipe.py's ff1024_b2048_d02_cos; BENCHMARKS.md): training is compute-bound
# in 90 CPU-minutes, so a narrower feed-forward (faster steps), half-size batches (twice the updates), dropout 0.2,
# and a rate that anneals to 0 when the budget (TIME_LIMIT, or 40 epochs on a faster machine) ends.
RECIPE = dict(vocab_size=8000, max_len=64, max_tokens=2048, d_model=256, n_heads=4, n_encoder_layers=3,
              n_decoder_layers=3, d_ff=1024, dropout=0.2, epochs=40, lr=1e-3, warmup=1000, lr_decay="cosine",
              label_smoothing=0.1, patience=6, bleu_sentences=500, keep_checkpoints=5)
TIME_LIMIT = 90 * 60  # seconds of training steps (evaluations not counted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder with the Multi30k .gz files")
    parser.add_argument("--out-dir", default="runs/multi30k")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--time-limit", type=float, default=TIME_LIMIT,
                        help=f"seconds of training (default {TIME_LIMIT}: the recipe's 90 minutes); the learning "
                             "rate reaches 0 when they end")
    parser.add_argument("--resume", action="store_true", help="continue from OUT_DIR/last.safetensors")
    parser.add_argument("--overwrite", action="store_true", help="start afresh in an OUT_DIR that holds a run")
    parser.add_argument("--beam", type=int, default=5)
    args = parser.parse_args()
    try:
        run(args)
    except (UserError, OSError) as exc:  # bad settings or files: one line, no traceback
        sys.exit(f"multi30k.py: error: {exc}")


def run(args: argparse.Namespace) -> None:
    cpu.retain_freed_memory()  # a training process: keep freed activations for reuse (glibc)
    data = Path(args.data)
    overrides = dict(device=args.device, time_limit=args.time_limit)
    if args.resume:
        trainer = Trainer.from_checkpoint(str(Path(args.out_dir) / "last.safetensors"), **overrides)
    else:
        files = {f"{side}_{split}": str(data / f"{split}.{lang}.gz") for side, lang in (("src", "de"), ("tgt", "en"))
                 for split in ("train", "val")}
        trainer = Trainer(TrainConfig(**RECIPE, **files, out_dir=args.out_dir, **overrides),
                          overwrite=args.overwrite)
    argv = [a for a in sys.argv[1:] if a not in ("--resume", "--overwrite")]
    trainer.resume_hint = shlex.join([sys.executable, sys.argv[0], *argv, "--resume"])
    trainer.fit()
    if trainer.stop_requested:  # interrupted: last.safetensors is saved; the test set waits for the end
        sys.exit(130)
    test = read_parallel(data / "test_2016_flickr.de.gz", data / "test_2016_flickr.en.gz")
    translator = Translator.from_checkpoint(str(Path(args.out_dir) / "best.safetensors"), device=args.device)
    hyps = translator.translate(test.sources, beam_size=args.beam)
    write_hypotheses(Path(args.out_dir, "test_2016_flickr.hyp.en"), map(one_line, hyps))  # a line each
    print(json.dumps({"test_bleu": round(bleu(hyps, test.targets), 2),
                      "test_bleu_lowercase": round(bleu(hyps, test.targets, lowercase=True), 2),
                      "test_chrf": round(chrf(hyps, test.targets), 2), "beam": args.beam,
                      "train_seconds": round(trainer.progress.train_seconds), "epochs": trainer.progress.epoch}))


if __name__ == "__main__":
    main()
