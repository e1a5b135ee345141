"""Benchmark minitf's BPE tokenizer against Hugging Face ``tokenizers`` on Multi30k.

Trains both on Multi30k train German + English (one sentence per text) with the same
settings (vocab 8000, GPT-4 pattern, min_frequency 2, full byte alphabet), on one core,
and reports training time (median of repeats), single-``encode`` throughput over the
val sentences (de + en), and compression (UTF-8 bytes per token on val).  The data is
read from ``--data`` (never copied into the repository).

    python tools/bench_tokenizer.py --data ../shared/data/multi30k
"""

from __future__ import annotations

import os

os.environ["RAYON_NUM_THREADS"] = "1"          # before tokenizers is imported
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from minitf.tokenizer import GPT4_PATTERN, BPETokenizer  # noqa: E402

DATE = "2026-11-23"


def read_sentences(data: Path, split: str) -> list[str]:
    """Lines of ``{split}.de.gz`` then ``{split}.en.gz``, terminators removed."""
    sentences = []
    for lang in ("de", "en"):
        path = data / f"{split}.{lang}.gz"
        if not path.is_file():
            sys.exit(f"error: {path} not found (pass --data DIR with Multi30k's .gz files)")
        with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
            sentences += [line.rstrip("\r\n") for line in f]
    return sentences


def train_hf(texts: list[str], vocab_size: int):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(GPT4_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return tok


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines()
                    if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/multi30k"))
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--repeats", type=int, default=5, help="training runs (median)")
    parser.add_argument("--passes", type=int, default=6, help="encoding passes over val")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS_tokenizer.md")
    parser.add_argument("--no-write", action="store_true", help="only print the table")
    args = parser.parse_args(argv)

    train, val = read_sentences(args.data, "train"), read_sentences(args.data, "val")
    val_bytes = sum(len(s.encode("utf-8")) for s in val)
    contenders = {"minitf": MinitfContender(args.vocab_size)}
    try:
        import tokenizers
        contenders["tokenizers"] = HFContender(args.vocab_size)
        versions = f"tokenizers {tokenizers.__version__}"
    except ImportError:
        versions = "tokenizers not installed"
    results = run_interleaved(contenders, train, val, args)
    table = render(results, val_bytes)
    header = describe(args, len(train), len(val), val_bytes, versions)
    print(header + table)
    if not args.no_write:
        args.output.write_text(header + table, encoding="utf-8")
        print(f"wrote {args.output}")
    return 0


def run_interleaved(contenders: dict, train: list[str], val: list[str], args) -> dict:
    """Alternate the contenders run by run, so that other load on the machine hits both."""
    results = {name: {"train": [], "passes": []} for name in contenders}
    for _ in range(args.repeats):
        for name, contender in contenders.items():
            start = time.perf_counter()
            contender.train(train)
            results[name]["train"].append(time.perf_counter() - start)
    for name, contender in contenders.items():
        contender.fresh_copy()  # empty encode caches
    for _ in range(args.passes):
        for name, contender in contenders.items():
            start = time.perf_counter()
            tokens = sum(len(contender.encode(t)) for t in val)
            results[name]["passes"].append(time.perf_counter() - start)
            results[name]["tokens"] = tokens
    for name, contender in contenders.items():
        result = results[name]
        result["merges"] = contender.merges()
        result["train"] = statistics.median(result["train"])
        result["cold"] = result["passes"][0]
        result["warm"] = statistics.median(result["passes"][1:] or result["passes"])
    return results


class MinitfContender:
    def __init__(self, vocab_size: int) -> None:
        self.vocab_size, self.tok = vocab_size, None

    def train(self, texts: list[str]) -> None:
        self.tok = BPETokenizer.train(texts, self.vocab_size)

    def fresh_copy(self) -> None:
        self.tok = BPETokenizer.from_dict(self.tok.to_dict())

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text)

    def merges(self) -> list[bytes]:
        return [self.tok.id_to_bytes(a) + b"|" + self.tok.id_to_bytes(b)
                for a, b, _ in self.tok.merges]


class HFContender:
    def __init__(self, vocab_size: int) -> None:
        self.vocab_size, self.tok = vocab_size, None

    def train(self, texts: list[str]) -> None:
        self.tok = train_hf(texts, self.vocab_size)

    def fresh_copy(self) -> None:
        from tokenizers import Tokenizer
        self.tok = Tokenizer.from_str(self.tok.to_str())

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids

    def merges(self) -> list[bytes]:
        from minitf.tokenizer.byte_level import chars_to_bytes
        raw = json.loads(self.tok.to_str())["model"]["merges"]
        pairs = (m.split(" ") if isinstance(m, str) else m for m in raw)
        return [chars_to_bytes(a) + b"|" + chars_to_bytes(b) for a, b in pairs]


def describe(args, n_train: int, n_val: int, val_bytes: int, versions: str) -> str:
    return (
        "## Tokenizer: minitf BPE vs Hugging Face tokenizers\n\n"
        f"- command: `python tools/bench_tokenizer.py --data {args.data}`\n"
        f"- machine: {cpu_model()}, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f} at the end (shared machine); one thread each "
        "(RAYON_NUM_THREADS=1, TOKENIZERS_PARALLELISM=false), runs alternated\n"
        f"- date: {DATE}; Python {platform.python_version()}, {versions}\n"
        f"- data: Multi30k train de+en ({n_train} sentences) for training; val de+en "
        f"({n_val} sentences, {val_bytes} UTF-8 bytes) for encoding\n"
        f"- settings: vocab {args.vocab_size}, GPT-4 (cl100k) pattern, min_frequency 2, "
        f"all 256 bytes; training: median of {args.repeats} runs each; encoding: one `encode` "
        f"call per sentence, first pass (cold cache) and median of the {args.passes - 1} "
        "later passes (warm cache)\n\n")


def render(results: dict, val_bytes: int) -> str:
    ours, theirs = results["minitf"], results.get("tokenizers")
    rows = [
        ("training time (s)", ours["train"], theirs and theirs["train"], "{:.2f}", "<= 3x"),
        ("encode throughput, warm (MB/s)", val_bytes / ours["warm"] / 1e6,
         theirs and val_bytes / theirs["warm"] / 1e6, "{:.2f}", ">= 0.5x"),
        ("encode throughput, cold first pass (MB/s)", val_bytes / ours["cold"] / 1e6,
         theirs and val_bytes / theirs["cold"] / 1e6, "{:.2f}", ""),
        ("compression on val (bytes/token)", val_bytes / ours["tokens"],
         theirs and val_bytes / theirs["tokens"], "{:.4f}", "within 1%"),
    ]
    lines = ["| metric | minitf | tokenizers | minitf / tokenizers | target |",
             "| --- | ---: | ---: | ---: | --- |"]
    for name, mine, other, fmt, target in rows:
        ratio = f"{mine / other:.2f}x" if other else "n/a"
        other_text = fmt.format(other) if other else "n/a"
        lines.append(f"| {name} | {fmt.format(mine)} | {other_text} | {ratio} | {target} |")
    if theirs:
        same = sum(a == b for a, b in zip(ours["merges"], theirs["merges"]))
        lines.append(f"| identical merges (same rank) | {same} / {len(ours['merges'])} | "
                     f"{len(theirs['merges'])} merges | | |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
