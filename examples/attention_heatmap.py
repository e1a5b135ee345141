"""Save the cross-attention of a trained model for one sentence as a PNG heatmap.

    pip install ".[plot]"          # from the minitf checkout
    python examples/attention_heatmap.py --checkpoint runs/demo/best.safetensors \
        --sentence "twenty-one thousand four hundred six" --output attention.png

Rows are output tokens, columns source tokens; the weights are those of the last decoder
layer's cross-attention, averaged over heads, when the model translates greedily. The work is
minitf.translation.plots' (as for `minitf translate --attention-png DIR`, which draws one per line).
"""
from __future__ import annotations

import argparse

from minitf.errors import UserError
from minitf.translation import Translator
from minitf.translation.plots import attention_maps, draw_attention


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--sentence", required=True)
    parser.add_argument("--output", default="attention.png")
    args = parser.parse_args()
    try:
        attention = attention_maps(Translator.from_checkpoint(args.checkpoint), [args.sentence])[0]
        print(f"saved {draw_attention(attention, args.output)}")
    except UserError as exc:  # no matplotlib, a bad checkpoint or sentence, an output that is not .png
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    main()
