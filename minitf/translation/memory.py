"""How much memory training needs, estimated from the settings before anything is allocated.

The estimate is a lower bound (float32 values that must exist at once), so a refusal means the
run could not fit; a run that passes may still need more (NumPy temporaries, the data, Python).
"""
from __future__ import annotations

import math
import os

from .. import backend
from ..errors import ConfigError
from ..nn import TransformerConfig, parameter_shapes

FLOAT_BYTES = 4
ADAM_COPIES = 5  # each parameter, its gradient, Adam's two moments and its scratch buffer


def training_bytes(model: TransformerConfig, max_tokens: int) -> tuple[int, int]:
    """(parameters + gradients + Adam state, a full micro-batch's activations) in bytes.

    `model`: the run's model configuration; a full micro-batch holds `max_tokens` tokens per side.
    Activations kept for the backward pass: per layer a few (tokens, d_model) arrays and one
    (tokens, d_ff), per attention the (heads, tokens, length) scores and probabilities at the shortest
    length (1), and the (tokens, vocabulary) logits and their gradient.
    """
    n_params = sum(math.prod(shape) for shape in parameter_shapes(model).values())
    d, f, h = model.d_model, model.d_ff, model.n_heads
    attention = 2 * h * max_tokens
    encoder = max_tokens * (6 * d + f) + attention
    decoder = max_tokens * (10 * d + f) + 2 * attention
    logits = 2 * max_tokens * model.tgt_vocab_size
    values = model.n_encoder_layers * encoder + model.n_decoder_layers * decoder + logits
    return ADAM_COPIES * n_params * FLOAT_BYTES, values * FLOAT_BYTES


def available_bytes(device: str) -> int | None:
    """Memory free for a new run on `device`: the host's MemAvailable (else its physical memory),
    or the GPU's free memory; None where it cannot be told."""
    if backend.parse_device(device).kind == "cuda":
        try:
            return int(backend.cupy().cuda.runtime.memGetInfo()[0])
        except (AttributeError, RuntimeError):
            return None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_training_memory(model: TransformerConfig, max_tokens: int, device: str) -> None:
    """Raise ConfigError, with the estimate, if training this model cannot fit in `device`'s memory."""
    weights, activations = training_bytes(model, max_tokens)
    free = available_bytes(device)
    if free is not None and weights + activations > free:
        raise ConfigError(
            f"training this model needs at least {_gib(weights + activations)} of memory on {device} "
            f"({_gib(weights)} for the parameters, gradients and Adam state, {_gib(activations)} for a "
            f"batch of --max-tokens {max_tokens}), but only {_gib(free)} is available: lower --d-model, "
            "--d-ff, the layers, --vocab-size or --max-tokens")


def _gib(n: int) -> str:
    return f"{n / 2**30:,.2f} GiB"
