"""Sweep beam size and length penalty: one table of a metric per (beam, alpha) on a test set.

    python tools/sweep_decoding.py --checkpoint runs/multi30k/best.safetensors \
        --src test.de.gz --ref test.en.gz --beams 1,2,3,5,10 --alphas 0,0.6,1.0,1.5

Beam 1 is greedy search, the same for every alpha (decoded once). A source line that cannot be
translated (empty, blank, too long for the model) gets an empty translation, as in
`minitf evaluate`. Each row also gives the seconds its decodings took.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from minitf.data import read_parallel  # noqa: E402
from minitf.translation import Translator  # noqa: E402
from minitf.translation.metrics import bleu, chrf, exact_match  # noqa: E402

METRICS = {"bleu": bleu, "chrf": chrf, "exact": lambda h, r: 100.0 * exact_match(h, r)}


def numbers(text: str, kind: type) -> list:
    """'1,2,5' -> [1, 2, 5] (as `kind`)."""
    try:
        return [kind(item) for item in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__}s, got {text!r}") from None


def translate_all(translator: Translator, sources: list[str], **options) -> list[str]:
    """Translations of `sources`, aligned with them; "" for a line `translator.problem` refuses."""
    kept = [i for i, line in enumerate(sources) if translator.problem(line) is None]
    outputs = [""] * len(sources)
    for i, out in zip(kept, translator.translate([sources[i] for i in kept], **options)):
        outputs[i] = out
    return outputs


def sweep(translator: Translator, sources: list[str], references: list[str], beams: list[int],
          alphas: list[float], metric: str, batch_size: int = 64) -> list[tuple[int, list[float], float]]:
    """(beam, the metric per alpha, seconds) per beam size."""
    score = METRICS[metric]
    rows = []
    for beam in beams:
        start, row = time.perf_counter(), []
        for alpha in ([0.0] if beam == 1 else alphas):
            hyps = translate_all(translator, sources, beam_size=beam, length_penalty=alpha,
                                 batch_size=batch_size)
            row.append(score(hyps, references))
        rows.append((beam, row * len(alphas) if beam == 1 else row, time.perf_counter() - start))
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--src", required=True, help="source sentences, one per line (plain or .gz)")
    p.add_argument("--ref", required=True, help="reference translations, aligned with --src")
    p.add_argument("--beams", type=lambda t: numbers(t, int), default=[1, 2, 3, 5, 10])
    p.add_argument("--alphas", type=lambda t: numbers(t, float), default=[0.0, 0.6, 1.0, 1.5])
    p.add_argument("--metric", choices=sorted(METRICS), default="bleu")
    p.add_argument("--limit", type=int, help="only the first N sentences")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    if any(b < 1 for b in args.beams):
        p.error(f"--beams must all be >= 1, got {args.beams}")
    corpus = read_parallel(args.src, args.ref)
    sources, references = corpus.sources[:args.limit], corpus.targets[:args.limit]
    translator = Translator.from_checkpoint(args.checkpoint, device=args.device)
    rows = sweep(translator, sources, references, args.beams, args.alphas, args.metric, args.batch_size)
    print(f"{args.metric} on {len(sources)} sentences of {args.src} ({args.checkpoint}); "
          "alpha = GNMT length penalty, beam 1 = greedy")
    print("| beam | " + " | ".join(f"alpha {a:g}" for a in args.alphas) + " | seconds |")
    print("|---:|" + "---:|" * (len(args.alphas) + 1))
    for beam, values, seconds in rows:
        print(f"| {beam} | " + " | ".join(f"{v:.2f}" for v in values) + f" | {seconds:.1f} |")


if __name__ == "__main__":
    main()
