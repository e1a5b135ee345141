"""The settings of a BERT encoder, read from a Hugging Face ``config.json``, and of its sentence
pooling, read from a sentence-transformers folder (``modules.json``, ``1_Pooling/config.json``,
``sentence_bert_config.json``). Files are untrusted: size-checked, every field read is type- and
range-checked, and a setting this encoder does not implement is a ValueError naming it."""
from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

MAX_JSON_BYTES = 1 << 20  # a config of a few hundred bytes; id2label tables stay far below this
MAX_SIZE = 1 << 20  # hidden and intermediate sizes, vocabulary, positions
MAX_LAYERS = 256

# settings that must have these values if present (the forms of BERT that are not implemented)
_REQUIRED = {"model_type": ("bert",), "hidden_act": ("gelu",), "position_embedding_type": ("absolute",),
             "is_decoder": (False,), "add_cross_attention": (False,), "chunk_size_feed_forward": (0,)}


@dataclass(frozen=True)
class BertConfig:
    """The architecture: sizes, as Hugging Face's ``BertConfig`` names them."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    hidden_dropout_prob: float = 0.1  # in train mode only (fine-tuning), as Hugging Face's
    attention_probs_dropout_prob: float = 0.1

    @classmethod
    def from_dict(cls, data: Any, source: str = "config") -> "BertConfig":
        """Check ``data`` (a parsed config.json) and build the config; ValueError names the field."""
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a JSON object, got {type(data).__name__}")
        for key, allowed in _REQUIRED.items():
            if key in data and not any(data[key] == a and type(data[key]) is type(a) for a in allowed):
                raise ValueError(f"{source}: {key}={data[key]!r:.60} is not supported (only {allowed[0]!r})")
        values = {}
        for f in fields(cls):
            if f.name not in data:
                if f.default is MISSING:
                    raise ValueError(f"{source}: missing setting {f.name!r}")
                continue
            values[f.name] = _check(f.name, data[f.name], source)
        config = cls(**values)
        if config.hidden_size % config.num_attention_heads:
            raise ValueError(f"{source}: hidden_size {config.hidden_size} is not a multiple of "
                             f"num_attention_heads {config.num_attention_heads}")
        return config


def _check(name: str, value: Any, source: str) -> Any:
    if name.endswith("dropout_prob"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise ValueError(f"{source}: {name} must be a probability in [0, 1), got {value!r:.60}")
        return float(value)
    if name == "layer_norm_eps":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise ValueError(f"{source}: layer_norm_eps must be a number in (0, 1), got {value!r:.60}")
        return float(value)
    low = 0 if name == "pad_token_id" else 1
    high = MAX_LAYERS if name == "num_hidden_layers" else MAX_SIZE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{source}: {name} must be an integer in {low} .. {high}, got {value!r:.60}")
    return value


def read_json(path: Path) -> Any:
    """The JSON value in ``path``, its size checked first; errors name the file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise ValueError(f"{path}: {path.stat().st_size:,} bytes, more than the limit of {MAX_JSON_BYTES:,}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None


def read_config(folder: Path) -> BertConfig:
    path = folder / "config.json"
    return BertConfig.from_dict(read_json(path), str(path))


# ---- sentence-transformers ------------------------------------------------------------------

POOLING_MODES = ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens")
_TRANSFORMER, _POOLING, _NORMALIZE = (f"sentence_transformers.models.{n}" for n in
                                       ("Transformer", "Pooling", "Normalize"))


@dataclass(frozen=True)
class Pooling:
    """How token states become a sentence embedding: one of POOLING_MODES, then L2 normalization
    or not; texts are cut to ``max_seq_length`` tokens (lowercased first if ``lowercase``)."""

    mode: str = "mean_tokens"
    normalize: bool = False
    max_seq_length: int | None = None
    lowercase: bool = False


def read_pooling(folder: Path) -> Pooling:
    """The folder's pooling: from its sentence-transformers files, else mean pooling, not normalized."""
    if not (folder / "modules.json").exists():
        return Pooling()
    path = folder / "modules.json"
    modules = read_json(path)
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise ValueError(f"{path}: expected a list of module objects")
    types = [m.get("type") for m in modules]
    unknown = [t for t in types if t not in (_TRANSFORMER, _POOLING, _NORMALIZE)]
    if unknown or types[:2] != [_TRANSFORMER, _POOLING] or modules[0].get("path", "") != "":
        raise ValueError(f"{path}: modules {types!r:.200} are not supported (a Transformer in the folder "
                         f"itself, a Pooling, optionally a Normalize){': unknown ' + repr(unknown) if unknown else ''}")
    pooling_path = modules[1].get("path")
    if not isinstance(pooling_path, str) or not pooling_path or Path(pooling_path).is_absolute() or ".." in Path(pooling_path).parts:
        raise ValueError(f"{path}: the Pooling module's path {pooling_path!r:.60} is not a folder inside the model folder")
    settings = _st_settings(folder)
    return Pooling(_pooling_mode(folder / pooling_path / "config.json"), _NORMALIZE in types[2:],
                   settings.get("max_seq_length"), settings.get("do_lower_case", False))


def _pooling_mode(path: Path) -> str:
    config = read_json(path)
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a JSON object")
    modes = [k[len("pooling_mode_"):] for k, v in config.items() if k.startswith("pooling_mode_") and v is not False]
    if len(modes) != 1 or modes[0] not in POOLING_MODES or config[f"pooling_mode_{modes[0]}"] is not True:
        raise ValueError(f"{path}: pooling modes {modes!r:.120} are not supported (exactly one of "
                         f"{', '.join('pooling_mode_' + m for m in POOLING_MODES)} true)")
    if config.get("include_prompt", True) is not True:
        raise ValueError(f"{path}: include_prompt={config['include_prompt']!r:.40} is not supported")
    return modes[0]


def _st_settings(folder: Path) -> dict[str, Any]:
    path = folder / "sentence_bert_config.json"
    if not path.exists():
        return {}
    settings = read_json(path)
    if not isinstance(settings, dict):
        raise ValueError(f"{path}: expected a JSON object")
    length = settings.get("max_seq_length")
    if length is not None and (isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= MAX_SIZE):
        raise ValueError(f"{path}: max_seq_length must be an integer in 1 .. {MAX_SIZE}, got {length!r:.40}")
    if not isinstance(settings.get("do_lower_case", False), bool):
        raise ValueError(f"{path}: do_lower_case must be true or false, got {settings['do_lower_case']!r:.40}")
    return settings
