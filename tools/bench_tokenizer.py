"""Benchmark minitf's BPE tokenizer against Hugging Face ``tokenizers`` on Multi30k.

Trains both on Multi30k train German + English (one sentence per text) with the same
settings (vocab 8000, GPT-4 pattern, min_frequency 2, full byte alphabet), on one thread
(``tokenizers`` with RAYON_NUM_THREADS=1 and TOKENIZERS_PARALLELISM=false, set before it is
imported; the header reports the threads its process ran), alternating the two run by run,
and reports training time (wall and CPU seconds, medians, and the per-round ratios),
single-``encode`` throughput over the val sentences (de + en), and compression (UTF-8 bytes
per token on val).  ``--baseline-tree DIR`` adds the minitf of another checkout (e.g. a
``git worktree`` at an older commit), run in a child process in the same alternation, for
before/after figures.  ``--profile`` prints where minitf's training time goes instead.  The
data is read from ``--data`` (never copied into the repository).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tools/bench_tokenizer.py --data ../shared/data/multi30k
"""

from __future__ import annotations

import os

os.environ["RAYON_NUM_THREADS"] = "1"          # before tokenizers is imported
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse  # noqa: E402
import datetime  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def import_minitf(tree: Path) -> None:
    """Put the checkout ``tree`` first on sys.path (minitf is imported from there)."""
    sys.path.insert(0, str(tree))
    sys.path.insert(1, str(ROOT / "tools"))


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
    from minitf.tokenizer import GPT4_PATTERN
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


def os_threads() -> int | str:
    """Threads of this process now (Linux): tokenizers adds none when it runs on one."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/multi30k"))
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--repeats", type=int, default=5, help="training rounds (median)")
    parser.add_argument("--passes", type=int, default=6, help="encoding passes over val")
    parser.add_argument("--baseline-tree", type=Path, metavar="DIR",
                        help="also time the minitf of this checkout (child process, alternated)")
    parser.add_argument("--tree", type=Path, default=ROOT, metavar="DIR",
                        help="checkout whose minitf is measured (default: this one)")
    parser.add_argument("--profile", action="store_true",
                        help="print the CPU time of each stage of minitf's training and exit")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS_tokenizer.md")
    parser.add_argument("--no-write", action="store_true", help="only print the table")
    args = parser.parse_args(argv)
    import_minitf(args.tree)

    train = read_sentences(args.data, "train")
    if args.worker:
        return serve_baseline(train, args.vocab_size)
    if args.profile:
        from profile_tokenizer import profile_training
        print(profile_training(args.data, train, args.vocab_size, args.repeats))
        return 0
    val = read_sentences(args.data, "val")
    val_bytes = sum(len(s.encode("utf-8")) for s in val)
    contenders = {"minitf": MinitfContender(args.vocab_size)}
    try:
        import tokenizers
        contenders["tokenizers"] = HFContender(args.vocab_size)
        versions = f"tokenizers {tokenizers.__version__}"
    except ImportError:
        versions = "tokenizers not installed"
    if args.baseline_tree:
        contenders["baseline"] = BaselineContender(args)
    results = run_interleaved(contenders, train, val, args)
    args.threads_seen = results.pop("threads")
    text = describe(args, len(train), len(val), val_bytes, versions) + render(results, val_bytes)
    print(text)
    if not args.no_write:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    return 0


def run_interleaved(contenders: dict, train: list[str], val: list[str], args) -> dict:
    """Alternate the contenders run by run, so that other load on the machine hits both."""
    results = {name: {"wall": [], "cpu": [], "passes": []} for name in contenders}
    before = os_threads()
    for _ in range(args.repeats):
        for name, contender in contenders.items():
            wall, cpu = contender.train(train)
            results[name]["wall"].append(wall)
            results[name]["cpu"].append(cpu)
    results["threads"] = f"{before} before and {os_threads()} after training"
    encoders = {name: c for name, c in contenders.items() if name != "baseline"}
    for contender in encoders.values():
        contender.fresh_copy()  # empty encode caches
    for _ in range(args.passes):
        for name, contender in encoders.items():
            start = time.perf_counter()
            tokens = sum(len(contender.encode(t)) for t in val)
            results[name]["passes"].append(time.perf_counter() - start)
            results[name]["tokens"] = tokens
    for name, contender in contenders.items():
        result = results[name]
        result["merges"] = contender.merges()
        if result["passes"]:
            result["cold"] = result["passes"][0]
            result["warm"] = statistics.median(result["passes"][1:] or result["passes"])
    return results


def timed(train) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    train()
    return time.perf_counter() - wall, time.process_time() - cpu


class MinitfContender:
    def __init__(self, vocab_size: int) -> None:
        self.vocab_size, self.tok = vocab_size, None

    def train(self, texts: list[str]) -> tuple[float, float]:
        from minitf.tokenizer import BPETokenizer

        def run() -> None:
            self.tok = BPETokenizer.train(texts, self.vocab_size)
        return timed(run)

    def fresh_copy(self) -> None:
        from minitf.tokenizer import BPETokenizer
        self.tok = BPETokenizer.from_dict(self.tok.to_dict())

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text)

    def merges(self) -> list[bytes]:
        return [self.tok.id_to_bytes(a) + b"|" + self.tok.id_to_bytes(b)
                for a, b, _ in self.tok.merges]


class HFContender:
    def __init__(self, vocab_size: int) -> None:
        self.vocab_size, self.tok = vocab_size, None

    def train(self, texts: list[str]) -> tuple[float, float]:
        def run() -> None:
            self.tok = train_hf(texts, self.vocab_size)
        return timed(run)

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


class BaselineContender:
    """minitf of another checkout, trained in a child process on request (one JSON line each)."""

    def __init__(self, args) -> None:
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--data",
                   str(args.data), "--vocab-size", str(args.vocab_size),
                   "--tree", str(args.baseline_tree)]
        self.child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      text=True)
        self.last: dict = {}

    def train(self, texts: list[str]) -> tuple[float, float]:
        self.child.stdin.write("train\n")
        self.child.stdin.flush()
        line = self.child.stdout.readline()
        if not line:
            sys.exit("error: the baseline worker died (see its error above)")
        self.last = json.loads(line)
        return self.last["wall"], self.last["cpu"]

    def merges(self) -> list[bytes]:
        self.child.stdin.close()
        self.child.wait()
        return [bytes.fromhex(m) for m in self.last["merges"]]


def serve_baseline(train: list[str], vocab_size: int) -> int:
    """Worker side of BaselineContender: train on each 'train' line read from stdin."""
    contender = MinitfContender(vocab_size)
    for _ in sys.stdin:
        wall, cpu = contender.train(train)
        merges = [m.hex() for m in contender.merges()]
        print(json.dumps({"wall": wall, "cpu": cpu, "merges": merges}), flush=True)
    return 0


def describe(args, n_train: int, n_val: int, val_bytes: int, versions: str) -> str:
    from machine import describe as machine
    baseline = (f"; baseline: the minitf of `{args.baseline_tree}` in a child process, in the "
                "same alternation" if args.baseline_tree else "")
    return (
        "## Tokenizer: minitf BPE vs Hugging Face tokenizers\n\n"
        f"- command: `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python "
        f"tools/bench_tokenizer.py --data {args.data} --repeats {args.repeats}"
        f"{' --baseline-tree ' + str(args.baseline_tree) if args.baseline_tree else ''}`\n"
        f"- machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the end (shared)\n"
        f"- threads: one each (RAYON_NUM_THREADS=1, TOKENIZERS_PARALLELISM=false; OS threads of the "
        f"process: {args.threads_seen}); runs alternated{baseline}\n"
        f"- date: {datetime.date.today()}; Python {platform.python_version()}, {versions}\n"
        f"- data: Multi30k train de+en ({n_train} sentences) for training; val de+en "
        f"({n_val} sentences, {val_bytes} UTF-8 bytes) for encoding\n"
        f"- settings: vocab {args.vocab_size}, GPT-4 (cl100k) pattern, min_frequency 2, "
        f"all 256 bytes; training: {args.repeats} alternated rounds, medians of wall and CPU "
        f"seconds; encoding: one `encode` call per sentence, first pass (cold cache) and "
        f"median of the {args.passes - 1} later passes (warm cache)\n\n")


def render(results: dict, val_bytes: int) -> str:
    ours, theirs = results["minitf"], results.get("tokenizers")
    med = statistics.median
    rows = [
        ("training time, wall (s)", med(ours["wall"]), theirs and med(theirs["wall"]), "{:.2f}", ""),
        ("training time, CPU (s)", med(ours["cpu"]), theirs and med(theirs["cpu"]), "{:.2f}",
         "<= 1.0x"),
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
    return "\n".join(lines) + "\n" + rounds(results)


def rounds(results: dict) -> str:
    """Per-round training times and ratios (each round ran the contenders back to back)."""
    names = [n for n in ("minitf", "tokenizers", "baseline") if n in results]
    head = " | ".join(f"{n} wall / CPU (s)" for n in names)
    lines = ["", f"| round | {head} | ratios, CPU |", "| ---: |" + " ---: |" * len(names) + " --- |"]
    for i in range(len(results["minitf"]["cpu"])):
        cells = " | ".join(f"{results[n]['wall'][i]:.2f} / {results[n]['cpu'][i]:.2f}" for n in names)
        lines.append(f"| {i + 1} | {cells} | {ratio_text(results, i)} |")
    lines.append(f"| median | {' | '.join('' for _ in names)} | {ratio_text(results, None)} |")
    baseline = results.get("baseline")
    if baseline:
        same = sum(a == b for a, b in zip(results["minitf"]["merges"], baseline["merges"]))
        lines.append(f"\nbaseline merges identical to minitf's: {same} / {len(baseline['merges'])}")
    return "\n".join(lines) + "\n"


def ratio_text(results: dict, i: int | None) -> str:
    pick = (lambda n: statistics.median(results[n]["cpu"])) if i is None else \
        (lambda n: results[n]["cpu"][i])
    parts = []
    if "tokenizers" in results:
        parts.append(f"minitf / tokenizers {pick('minitf') / pick('tokenizers'):.2f}x")
    if "baseline" in results:
        parts.append(f"minitf / baseline {pick('minitf') / pick('baseline'):.2f}x")
    if "tokenizers" in results and "baseline" in results:
        parts.append(f"baseline / tokenizers {pick('baseline') / pick('tokenizers'):.2f}x")
    return "; ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
