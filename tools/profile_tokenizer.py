"""Where minitf's BPE training time goes, stage by stage (CPU seconds; used by bench_tokenizer.py).

Runs the stages of ``BPETokenizer.train`` one after another on the Multi30k training texts, each
timed alone (median of ``repeats``), then the whole ``train`` call for comparison.  Reading the
corpus is timed on the .gz files through minitf's reader; the benchmark itself trains from the
strings in memory, so that row is not part of the total.
"""
from __future__ import annotations

import contextlib
import inspect
import statistics
import time
from pathlib import Path


def cpu(function) -> tuple[float, object]:
    """CPU seconds of ``function()`` and its result, with the cycle collector as training has
    it (paused by the trees that pause it)."""
    from minitf.tokenizer import train
    with getattr(train, "gc_paused", contextlib.nullcontext)():
        start = time.process_time()
        result = function()
        return time.process_time() - start, result


def stage_times(data: Path, texts: list[str], vocab_size: int) -> dict[str, float]:
    """CPU seconds of each training stage, in order, for one run."""
    from minitf.tokenizer import BPETokenizer
    from minitf.tokenizer.corpus import iter_texts
    from minitf.tokenizer.patterns import make_splitter
    from minitf.tokenizer.train import _chunks_to_words, _MergeState, count_chunks
    from minitf.tokenizer.vocab import default_layout

    files = [data / "train.de.gz", data / "train.en.gz"]
    split = make_splitter("gpt4")
    times = {"reading and decoding the .gz files (not in the total)": cpu(lambda: list(iter_texts(files)))[0],
             "regex findall on every line alone (not in the total)":
                 cpu(lambda: [split(t) for t in texts])[0]}
    by_words = {"at_spaces": True} if "at_spaces" in inspect.signature(count_chunks).parameters else {}
    times["pre-tokenization: regex split and counting unique chunks"], counts = cpu(
        lambda: count_chunks(texts, split, **by_words))
    times["UTF-8 encoding and byte mapping of unique chunks"], (words, weights) = cpu(
        lambda: _chunks_to_words(counts))
    times["initial pair counts, pair index and heap"], state = cpu(
        lambda: _MergeState(words, weights, vocab_size))
    times["merge loop"] = cpu(lambda: sum(1 for _ in state.run(2)))[0]
    merges = state.merges_as_bytes()
    build = getattr(BPETokenizer, "_from_vocabulary",  # the trees before it built two
                    lambda vocab, pattern: BPETokenizer(vocab.merges, pattern=pattern))
    times["vocabulary and tokenizer construction"] = cpu(
        lambda: build(default_layout([], merges), "gpt4"))[0]
    times["whole BPETokenizer.train (for comparison)"] = cpu(
        lambda: BPETokenizer.train(texts, vocab_size))[0]
    return times


def profile_training(data: Path, texts: list[str], vocab_size: int, repeats: int) -> str:
    """Markdown table: stage, CPU seconds (median of ``repeats`` runs), share of the stage total."""
    runs = [stage_times(data, texts, vocab_size) for _ in range(repeats)]
    medians = {name: statistics.median(run[name] for run in runs) for name in runs[0]}
    total = sum(t for name, t in medians.items() if "(" not in name)
    lines = ["| stage | CPU s | share |", "| --- | ---: | ---: |"]
    for name, seconds in medians.items():
        share = "" if "(" in name else f"{seconds / total:.0%}"
        lines.append(f"| {name} | {seconds:.3f} | {share} |")
    lines.append(f"| sum of the stages in the total | {total:.3f} | 100% |")
    return "\n".join(lines) + "\n"
