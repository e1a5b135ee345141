"""Reading a BERT ``model.safetensors`` into a BertModel: every key the config needs checked for
presence, shape and a floating-point dtype from the header before any array is read (minitf's
bounded safetensors reader; never pickle). Keys are Hugging Face's, bare or prefixed ``bert.``
(as a BertForMaskedLM checkpoint saves them); other keys (``embeddings.position_ids``, heads) are
not used."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..nn import Module
from ..serialization import CheckpointError, open_file
from ._bert_config import BertConfig

_PREFIX = "bert."


@dataclass(frozen=True)
class WeightNames:
    """How the file names the weights: a common prefix ("" or "bert."), and whether it has a pooler."""

    prefix: str
    has_pooler: bool


def expected_shapes(c: BertConfig, pooler: bool) -> dict[str, tuple[int, ...]]:
    """Hugging Face key -> shape of each weight of a BertModel of config ``c``."""
    h, inner = c.hidden_size, c.intermediate_size
    shapes = {"embeddings.word_embeddings.weight": (c.vocab_size, h),
              "embeddings.position_embeddings.weight": (c.max_position_embeddings, h),
              "embeddings.token_type_embeddings.weight": (c.type_vocab_size, h),
              "embeddings.LayerNorm.weight": (h,), "embeddings.LayerNorm.bias": (h,)}
    dense = {"attention.self.query": (h, h), "attention.self.key": (h, h), "attention.self.value": (h, h),
             "attention.output.dense": (h, h), "intermediate.dense": (inner, h), "output.dense": (h, inner)}
    for i in range(c.num_hidden_layers):
        for name, (n_out, n_in) in dense.items():
            shapes[f"encoder.layer.{i}.{name}.weight"] = (n_out, n_in)
            shapes[f"encoder.layer.{i}.{name}.bias"] = (n_out,)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[f"encoder.layer.{i}.{norm}.weight"] = shapes[f"encoder.layer.{i}.{norm}.bias"] = (h,)
    if pooler:
        shapes["pooler.dense.weight"], shapes["pooler.dense.bias"] = (h, h), (h,)
    return shapes


def weight_names(path: Path, config: BertConfig) -> WeightNames:
    """Check the header of ``path`` against ``config``; CheckpointError names a missing or mis-shaped
    key, or one that is not floating point."""
    arrays = open_file(path).arrays
    first = "embeddings.word_embeddings.weight"
    prefix = _PREFIX if first not in arrays and _PREFIX + first in arrays else ""
    names = WeightNames(prefix, prefix + "pooler.dense.weight" in arrays)
    for key, shape in expected_shapes(config, names.has_pooler).items():
        ref = arrays.get(prefix + key)
        if ref is None:
            raise CheckpointError(f"{path}: missing weight {prefix + key!r} (config.json asks for "
                                  f"{config.num_hidden_layers} layers of hidden size {config.hidden_size})")
        if ref.shape != shape:
            raise CheckpointError(f"{path}: weight {prefix + key!r} has shape {ref.shape}; config.json "
                                  f"implies {shape}")
        if ref.dtype.kind != "f":
            raise CheckpointError(f"{path}: weight {prefix + key!r} has dtype {ref.dtype}, not floating point")
    return names


def load_weights(model: Module, path: Path, names: WeightNames) -> None:
    """Read each of ``model``'s parameters from ``path`` (checked by weight_names), in the model's dtype."""
    stored = open_file(path)
    for name, param in model.named_parameters():
        array = stored.read(stored.arrays[names.prefix + name])
        param.data = array.astype(param.data.dtype, copy=False)
