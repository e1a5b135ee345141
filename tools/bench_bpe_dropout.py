"""What BPE-dropout costs: encoding time of a corpus with ``encode(dropout=p)`` against the plain encoding.

Trains a BPE tokenizer on the given files (as ``minitf train`` does: one joint vocabulary, the
trainer's special tokens), then encodes each file line by line, alternating round by round: plain
on a fresh tokenizer (empty chunk cache, as the trainer's first encoding), plain again (warm cache,
what later encodings of the same text cost), and with BPE-dropout ``p`` (no cache: it draws anew
for every chunk).  Prints medians of the rounds and the tokens each way (what a
``--bpe-dropout p`` run pays at each epoch to re-encode its training pairs, both sides).

    python tools/bench_bpe_dropout.py --data ../shared/data/multi30k --files train.de.gz train.en.gz
"""
from __future__ import annotations

import argparse
import gzip
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from minitf.tokenizer import BPETokenizer  # noqa: E402
from minitf.translation.tokens import SPECIAL_TOKENS  # noqa: E402


def read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        return [line.rstrip("\r\n") for line in f]


def timed(encode, lines: list[str]) -> tuple[float, int]:
    started = time.perf_counter()
    tokens = sum(len(encode(line)) for line in lines)
    return time.perf_counter() - started, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "multi30k")
    parser.add_argument("--files", nargs="+", default=["train.de.gz", "train.en.gz"])
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    texts = {name: read_lines(args.data / name) for name in args.files}
    state = BPETokenizer.train([t for lines in texts.values() for t in lines], args.vocab_size,
                               special_tokens=SPECIAL_TOKENS).to_dict()
    print(f"tokenizer: {args.vocab_size} tokens; BPE-dropout p = {args.dropout}; {args.rounds} rounds (medians)")
    print("| file | lines | plain, cold cache (s) | plain, warm (s) | dropout (s) | dropout / cold | "
          "tokens plain | tokens dropout |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, lines in texts.items():
        cold, warm, drop = [], [], []
        for r in range(args.rounds):
            tok = BPETokenizer.from_dict(state)
            seconds, plain_tokens = timed(tok.encode, lines)
            cold.append(seconds)
            warm.append(timed(tok.encode, lines)[0])
            rng = random.Random(r)
            seconds, drop_tokens = timed(lambda s: tok.encode(s, dropout=args.dropout, rng=rng), lines)
            drop.append(seconds)
        c, w, d = (statistics.median(x) for x in (cold, warm, drop))
        print(f"| {name} | {len(lines):,} | {c:.2f} | {w:.2f} | {d:.2f} | {d / c:.1f}x | {plain_tokens:,} | "
              f"{drop_tokens:,} ({drop_tokens / plain_tokens - 1:+.0%}) |")


if __name__ == "__main__":
    main()
