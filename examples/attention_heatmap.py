"""Save the cross-attention of a trained model for one sentence as a PNG heatmap.

    pip install ".[plot]"          # from the minitf checkout
    python examples/attention_heatmap.py --checkpoint runs/demo/best.safetensors \
        --sentence "twenty-one thousand four hundred six" --output attention.png

Rows are output tokens, columns source tokens; the weights are those of the last decoder
layer's cross-attention, averaged over heads, when the model translates greedily.
"""
from __future__ import annotations

import argparse

import numpy as np

import minitf as mt
from minitf.translation import Translator, translate_ids


def cross_attention(translator: Translator, sentence: str) -> tuple[list[str], list[str], np.ndarray]:
    """(source tokens, output tokens, weights (len_out, len_src)) of the last decoder layer."""
    tok, model = translator.tokenizer, translator.model
    src_ids = tok.encode(sentence)
    output_ids = translate_ids(model, [src_ids], bos_id=translator.bos_id, eos_id=translator.eos_id,
                               pad_id=translator.pad_id, banned_ids=translator.banned_ids)[0]
    out_ids = [translator.bos_id] + output_ids
    src = np.array([src_ids]); mask = np.ones_like(src, dtype=bool)  # noqa: E702
    layer = model.decoder_layers[len(model.decoder_layers) - 1]
    captured = {}
    original = layer.cross_attn.forward

    def capture(*args, **kwargs):
        out, weights = original(*args, **kwargs, return_weights=True)
        captured["weights"] = weights.numpy()
        return out

    layer.cross_attn.forward = capture
    with mt.no_grad():
        model.decode(np.array([out_ids]), model.encode(src, mask), mask)
    layer.cross_attn.forward = original
    weights = captured["weights"][0].mean(axis=0)  # (len_out, len_src)
    labels = lambda ids: [tok.decode([i], errors="replace") for i in ids]  # noqa: E731
    return labels(src_ids), labels(out_ids[1:]) + ["<eos>"], weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--sentence", required=True)
    parser.add_argument("--output", default="attention.png")
    args = parser.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit('this example needs matplotlib: pip install ".[plot]" from the minitf checkout') from None
    source, target, weights = cross_attention(Translator.from_checkpoint(args.checkpoint), args.sentence)
    fig, ax = plt.subplots(figsize=(1 + 0.5 * len(source), 1 + 0.4 * len(target)))
    ax.imshow(weights[: len(target)], cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(source)), source, rotation=60, ha="right")
    ax.set_yticks(range(len(target)), target)
    ax.set_xlabel("source token"), ax.set_ylabel("output token")
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    print(f"saved {args.output}")


if __name__ == "__main__":
    main()
