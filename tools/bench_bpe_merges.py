"""Time BPE merge learning (``minitf.tokenizer.train.train_merges``) on long words and on Multi30k.

Long words: one line of N random lowercase letters (no spaces, so the GPT-4 pattern makes it a
single chunk) for each N in ``--lengths``; CPU time of ``train_merges`` alone (chunk counting is
not timed). Multi30k (``--data DIR``): the chunks of train de+en, as tools/bench_tokenizer.py
trains on. With ``--baseline REV`` the trainer of git revision REV (its
``minitf/tokenizer/train.py``) runs too, alternated run by run with the working tree's on the
same input, and the table gives both and their ratio; both must learn the same merges.

    python tools/bench_bpe_merges.py --baseline main --data ../shared/data/multi30k
"""
from __future__ import annotations

import argparse
import gzip
import importlib.util
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from minitf.tokenizer import train as current  # noqa: E402
from minitf.tokenizer.patterns import make_splitter  # noqa: E402


def trainer_at(revision: str) -> ModuleType:
    """minitf/tokenizer/train.py of git `revision`, imported as a module of minitf.tokenizer."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{revision}:minitf/tokenizer/train.py"],
                            capture_output=True, text=True, check=True).stdout
    name = "minitf.tokenizer._train_baseline"
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "minitf.tokenizer"
    exec(compile(source, f"{revision}:minitf/tokenizer/train.py", "exec"), module.__dict__)  # noqa: S102
    return module


def long_word(length: int, seed: int = 0) -> str:
    return "".join(random.Random(seed).choices("abcdefghijklmnopqrstuvwxyz", k=length))


def multi30k_texts(data: Path) -> list[str]:
    texts = []
    for lang in ("de", "en"):
        with gzip.open(data / f"train.{lang}.gz", "rt", encoding="utf-8", newline="") as f:
            texts += [line.rstrip("\r\n") for line in f]
    return texts


def cpu_seconds(module: ModuleType, counts, vocab_size: int) -> tuple[float, list]:
    start = time.process_time()
    merges = module.train_merges(counts, vocab_size)
    return time.process_time() - start, merges


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="*", default=[50_000, 100_000, 200_000, 1_000_000],
                        help="long-word lengths in characters (default 50k 100k 200k 1M)")
    parser.add_argument("--data", type=Path, help="Multi30k folder (train.de.gz, train.en.gz)")
    parser.add_argument("--vocab-size", type=int, default=8000, help="bytes + merges (default 8000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per case (median)")
    parser.add_argument("--baseline", metavar="REV", help="git revision whose trainer to compare with")
    parser.add_argument("--max-baseline-length", type=int, default=200_000,
                        help="longest word the baseline runs on (it is quadratic; default 200k)")
    args = parser.parse_args(argv)

    contenders = {"current": current}
    if args.baseline:
        contenders[args.baseline] = trainer_at(args.baseline)
    split = make_splitter("gpt4")
    cases = [(f"one word of {n:,} letters", n, current.count_chunks([long_word(n)], split))
             for n in args.lengths]
    if args.data:
        cases.append(("Multi30k train de+en", 0, current.count_chunks(multi30k_texts(args.data), split)))

    names = list(contenders)
    print(f"train_merges CPU seconds, vocab {args.vocab_size}, median of {args.repeats} "
          f"(alternated); Python {sys.version.split()[0]}")
    print("| case | " + " | ".join(names) + (" | current / baseline |" if len(names) > 1 else " |"))
    print("| --- |" + " ---: |" * (len(names) + (len(names) > 1)))
    for label, length, counts in cases:
        times: dict[str, list[float]] = {name: [] for name in names}
        merges = {}
        for run in range(args.repeats):
            for name in (names if run % 2 == 0 else names[::-1]):
                if name != "current" and length > args.max_baseline_length:
                    continue
                seconds, merges[name] = cpu_seconds(contenders[name], counts, args.vocab_size)
                times[name].append(seconds)
        if len(set(map(tuple, merges.values()))) > 1:
            sys.exit(f"error: the trainers learned different merges on {label}")
        medians = {name: statistics.median(t) if t else None for name, t in times.items()}
        cells = [f"{medians[n]:.3f}" if medians[n] is not None else "skipped" for n in names]
        if len(names) > 1:
            base = medians[names[1]]
            cells.append(f"{medians['current'] / base:.3f}" if base else "")
        print(f"| {label} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
