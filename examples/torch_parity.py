"""minitf.nn.Seq2SeqTransformer against torch.nn.Transformer with identical weights.

    python examples/torch_parity.py          # needs PyTorch (pip install torch)

Builds a small minitf Seq2SeqTransformer, copies every weight into a torch.nn.Transformer
(plus the same embedding table scaled by sqrt(d_model), the same sinusoidal positions
and the output projection tied to the embedding), runs a padded batch through both,
and prints the logits' largest difference, both label-smoothed losses and the largest
gradient difference, for post-norm and pre-norm, in float64 and float32.

Parameter names, minitf -> torch:
    encoder_layers.i.*  -> transformer.encoder.layers.i.*
    decoder_layers.i.*  -> transformer.decoder.layers.i.*   (cross_attn -> multihead_attn)
    *.out_proj_weight / out_proj_bias -> *.out_proj.weight / out_proj.bias
    ff.linear1 / ff.linear2 -> linear1 / linear2
    encoder_norm / decoder_norm -> transformer.encoder.norm / transformer.decoder.norm
    tgt_embed.weight (shared, tied) -> embedding
"""
from __future__ import annotations

import math
import warnings

import numpy as np

try:
    import torch
except ImportError:
    raise SystemExit("this example compares with PyTorch, which is not installed: "
                     "pip install torch (the CPU build is enough)") from None

import minitf
import minitf.functional as F
from minitf.nn import Seq2SeqTransformer, TransformerConfig, sinusoidal_positions

DTYPES = {"float64": (np.float64, torch.float64), "float32": (np.float32, torch.float32)}


def torch_name(name: str) -> str:
    """The torch.nn.Transformer parameter that holds minitf's parameter `name`."""
    if name == "tgt_embed.weight":
        return "embedding"
    name = (name.replace("encoder_layers.", "transformer.encoder.layers.")
            .replace("decoder_layers.", "transformer.decoder.layers.")
            .replace("encoder_norm.", "transformer.encoder.norm.")
            .replace("decoder_norm.", "transformer.decoder.norm.")
            .replace(".cross_attn.", ".multihead_attn.")
            .replace(".out_proj_weight", ".out_proj.weight")
            .replace(".out_proj_bias", ".out_proj.bias")
            .replace(".ff.linear", ".linear"))
    return name


class TorchTransformer(torch.nn.Module):
    """torch.nn.Transformer wrapped with minitf's embedding, positions and tied output."""

    def __init__(self, c: TransformerConfig) -> None:
        super().__init__()
        if not (c.share_embeddings and c.tie_output):
            raise ValueError("this comparison covers the shared, tied embedding only")
        with warnings.catch_warnings():  # (norm_first disables torch's nested-tensor fast path)
            warnings.simplefilter("ignore")
            self.transformer = torch.nn.Transformer(
                c.d_model, c.n_heads, c.n_encoder_layers, c.n_decoder_layers, c.d_ff, dropout=0.0,
                activation=c.activation, batch_first=True, norm_first=c.norm_first)
        self.embedding = torch.nn.Parameter(torch.zeros(c.tgt_vocab_size, c.d_model))
        self.register_buffer("positions", torch.from_numpy(sinusoidal_positions(c.max_len, c.d_model)))
        self.config = c

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.embedding(ids, self.embedding, padding_idx=self.config.pad_id)
        return x * math.sqrt(self.config.d_model) + self.positions[: ids.shape[1]].to(x.dtype)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor, src_mask: torch.Tensor) -> torch.Tensor:
        length = tgt_in.shape[1]
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool), diagonal=1)  # True = blocked
        out = self.transformer(self.embed(src), self.embed(tgt_in), tgt_mask=causal,
                               src_key_padding_mask=~src_mask, memory_key_padding_mask=~src_mask)
        return torch.nn.functional.linear(out, self.embedding)


def build_pair(c: TransformerConfig, dtype: str = "float64",
               seed: int = 0) -> tuple[Seq2SeqTransformer, TorchTransformer]:
    """A minitf model with random (non-trivial) weights and a torch model holding the same values."""
    np_dtype, torch_dtype = DTYPES[dtype]
    minitf.manual_seed(seed)
    ours = Seq2SeqTransformer(c)
    rng = np.random.default_rng(seed)
    for p in ours.parameters():  # biases and norm gains are 0 and 1 at init: move them
        p.data = (p.data + 0.1 * rng.standard_normal(p.shape)).astype(np_dtype)
    ours.tgt_embed.weight.data[c.pad_id] = 0
    theirs = TorchTransformer(c).to(torch_dtype)
    params = dict(theirs.named_parameters())
    state = ours.state_dict(remove_duplicate=True)  # each parameter once, as named_parameters
    used = set()
    with torch.no_grad():
        for name, value in state.items():
            target = params[torch_name(name)]
            if tuple(target.shape) != value.shape:
                raise ValueError(f"{name} -> {torch_name(name)}: shapes {value.shape} and "
                                 f"{tuple(target.shape)}")
            target.copy_(torch.from_numpy(value))
            used.add(torch_name(name))
    if used != set(params):
        raise ValueError(f"torch parameters without a minitf counterpart: {sorted(set(params) - used)}")
    return ours, theirs


def example_batch(c: TransformerConfig, seed: int = 1) -> tuple[np.ndarray, ...]:
    """A padded batch: src (B, S), tgt_in and tgt_out (B, T), src_mask (B, S)."""
    rng = np.random.default_rng(seed)
    src_lengths, tgt_lengths = [7, 4, 2], [6, 3, 5]
    src = np.zeros((3, 7), dtype=np.int64)
    tgt = np.zeros((3, 7), dtype=np.int64)
    for i, (s, t) in enumerate(zip(src_lengths, tgt_lengths)):
        src[i, :s] = rng.integers(3, c.src_vocab_size, s)
        tgt[i, 0] = 1  # beginning of sentence
        tgt[i, 1:t + 1] = rng.integers(3, c.tgt_vocab_size, t)
    return src, tgt[:, :-1], tgt[:, 1:], src != c.pad_id


def compare(c: TransformerConfig, dtype: str = "float64", label_smoothing: float = 0.1) -> dict:
    """Run both models on one batch; return logits, losses and gradients, by minitf's names."""
    ours, theirs = build_pair(c, dtype)
    src, tgt_in, tgt_out, src_mask = example_batch(c)
    logits = ours(src, tgt_in, src_mask)
    loss = F.cross_entropy(logits, tgt_out, ignore_index=c.pad_id, label_smoothing=label_smoothing)
    loss.backward()

    t_logits = theirs(torch.from_numpy(src), torch.from_numpy(tgt_in), torch.from_numpy(src_mask))
    t_loss = torch.nn.functional.cross_entropy(t_logits.reshape(-1, c.tgt_vocab_size),
                                               torch.from_numpy(tgt_out).reshape(-1),
                                               ignore_index=c.pad_id, label_smoothing=label_smoothing)
    t_loss.backward()
    t_params = dict(theirs.named_parameters())
    grads = {name: (p.grad, t_params[torch_name(name)].grad.numpy()) for name, p in ours.named_parameters()}
    return {"logits": (logits.numpy(), t_logits.detach().numpy()), "loss": (loss.item(), t_loss.item()),
            "grads": grads}


def main() -> None:
    for dtype in ("float64", "float32"):
        for norm_first in (False, True):
            c = TransformerConfig(23, 23, d_model=16, n_heads=4, n_encoder_layers=2, n_decoder_layers=2,
                                  d_ff=32, dropout=0.0, norm_first=norm_first, max_len=16)
            r = compare(c, dtype)
            logits_diff = np.abs(r["logits"][0] - r["logits"][1]).max()
            grad_diff = max(np.abs(a - b).max() for a, b in r["grads"].values())
            ours, theirs = r["loss"]
            print(f"{dtype} {'pre-norm ' if norm_first else 'post-norm'}: loss minitf {ours:.10f} "
                  f"torch {theirs:.10f} (diff {abs(ours - theirs):.2e}); max |logits diff| "
                  f"{logits_diff:.2e}; max |grad diff| {grad_diff:.2e} over {len(r['grads'])} parameters")


if __name__ == "__main__":
    main()
