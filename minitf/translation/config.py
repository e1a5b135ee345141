"""The settings of a translation run (TrainConfig, DEMO_CONFIG), where it stands (Progress), and
the model it builds (model_config).

    config = TrainConfig(d_model=128, epochs=5)     # or TrainConfig.from_dict(json_values, source=...)
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from .. import backend, distributed
from ..data.synthetic import MAX_SUPPORTED
from ..errors import ConfigError
from ..nn import TransformerConfig
from .limits import LIMITS, TRAIN_CAPS, model_max_len
from .tokens import SPECIAL_TOKENS


@dataclass
class TrainConfig:
    """Everything a run depends on; saved in every checkpoint. Data files None = synthetic task."""

    src_train: str | None = None
    tgt_train: str | None = None
    src_val: str | None = None
    tgt_val: str | None = None
    train_tsv: str | None = None  # or each split as one file of "source<TAB>target" lines
    val_tsv: str | None = None
    synthetic_sizes: tuple[int, int, int] = (20000, 500, 1000)  # train, val, test pairs
    vocab_size: int = 8000
    max_len: int = 128  # tokens per sentence; longer training pairs are dropped and counted
    max_tokens: int = 4096  # batch budget: sentences x padded length
    d_model: int = 256
    n_heads: int = 4
    n_encoder_layers: int = 3
    n_decoder_layers: int = 3
    d_ff: int = 1024
    dropout: float = 0.1
    activation: str = "relu"
    norm_first: bool = False
    epochs: int = 30
    lr: float = 1e-3  # peak rate, reached after `warmup` steps
    warmup: int = 4000
    weight_decay: float = 0.0
    label_smoothing: float = 0.1
    clip_norm: float = 1.0  # largest global gradient norm; 0 = no clipping
    patience: int = 5  # epochs without a better validation score before stopping
    select_metric: str = "bleu"  # validation score that picks best.safetensors: bleu, chrf or exact_match
    bleu_sentences: int = 500  # validation sentences decoded (greedily) for BLEU each epoch
    seed: int = 0
    device: str = "cpu"
    backend: str = "auto"  # processes: auto (MPI under mpiexec, else one), single, mpi or nccl
    accumulate: int = 1  # micro-batches per step in each process (gradient accumulation)
    out_dir: str = "runs/model"
    log_every: int = 50
    max_steps: int | None = None  # None = no limit
    time_limit: float | None = None  # seconds of training, then stop as if early-stopped; None = no limit

    def __post_init__(self) -> None:
        self.synthetic_sizes = _check_types(self)
        self.validate()

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> "TrainConfig":
        """A configuration from JSON-like values; an unknown key, a value of the wrong type or out of
        range raises ConfigError naming `source`, the key, what it expects and the value."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown setting(s) {unknown}; known: {sorted(known)}")
        try:
            return cls(**values)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def synthetic(self) -> bool:
        return self.src_train is None and self.train_tsv is None

    def validate(self) -> None:
        """Raise ConfigError (or DeviceError for an unknown device) for settings that cannot work."""
        given = [self.src_train, self.tgt_train, self.src_val, self.tgt_val]
        if any(p is not None for p in given) and any(p is None for p in given):
            raise ConfigError("real data needs all four files: --src-train, --tgt-train, --src-val, --tgt-val")
        tsv = [self.train_tsv, self.val_tsv]
        if any(p is not None for p in tsv) and (any(p is None for p in tsv) or given[0] is not None):
            raise ConfigError("TSV data needs --train-tsv and --val-tsv, and no separate source/target files")
        backend.parse_device(self.device)
        _check_ranges(self)
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if self.backend == "nccl" and backend.parse_device(self.device).kind != "cuda":
            raise ConfigError(f"backend 'nccl' needs --device cuda, got device {self.device!r}")


_CHOICES = {"activation": ("relu", "gelu"), "select_metric": ("bleu", "chrf", "exact_match"),
            "backend": distributed.BACKENDS}
_AT_LEAST_ONE = ("max_len", "max_tokens", "d_model", "n_heads", "n_encoder_layers", "n_decoder_layers",
                 "d_ff", "warmup", "patience", "log_every", "accumulate")
_AT_LEAST_ZERO = ("epochs", "bleu_sentences", "seed", "weight_decay", "max_steps", "time_limit")
_TYPES = {"str": str, "int": int, "float": float, "bool": bool, "None": type(None)}


def _check_types(config: TrainConfig) -> tuple[int, int, int]:
    """Raise ConfigError for a value of the wrong type (a bool is not a number); return
    synthetic_sizes as a tuple (JSON gives a list)."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name == "synthetic_sizes":
            ok = (isinstance(value, (list, tuple)) and len(value) == 3
                  and all(isinstance(n, int) and not isinstance(n, bool) for n in value))
            expected = "a list of 3 integers (train, val, test)"
        else:
            kinds = [_TYPES[name] for name in f.type.split(" | ")]
            if float in kinds:
                kinds.append(int)  # 1 is a fine learning rate
            ok = isinstance(value, tuple(kinds)) and (bool in kinds or not isinstance(value, bool))
            expected = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
        if not ok:
            raise ConfigError(f"setting {f.name!r} expects {expected}, got {value!r} "
                              f"({type(value).__name__})")
    return tuple(config.synthetic_sizes)


def _check_ranges(config: TrainConfig) -> None:
    def fail(name: str, rule: str) -> ConfigError:
        return ConfigError(f"setting {name!r} must be {rule}, got {getattr(config, name)!r}")

    for name in _AT_LEAST_ONE + _AT_LEAST_ZERO:
        value = getattr(config, name)
        low = 1 if name in _AT_LEAST_ONE else 0
        if value is not None and not (math.isfinite(value) and value >= low):
            raise fail(name, f"a finite number >= {low}" if isinstance(value, float) else f">= {low}")
    for name, cap in TRAIN_CAPS.items():  # the checkpoint loader's limits (translate/limits.py)
        if getattr(config, name) > cap:
            raise fail(name, f"at most {cap:,}, the largest a checkpoint may hold")
    positions = model_max_len(config.max_len) * config.d_model
    if positions > LIMITS["position_table"]:
        raise ConfigError(f"settings 'max_len' {config.max_len} and 'd_model' {config.d_model} give a position "
                          f"table of {positions:,} values ({model_max_len(config.max_len)} positions x d_model), "
                          f"more than the cap of {LIMITS['position_table']:,}: lower --max-len or --d-model")
    if not (math.isfinite(config.lr) and config.lr > 0):
        raise fail("lr", "a finite number > 0")
    if not (math.isfinite(config.clip_norm) and config.clip_norm >= 0):
        raise fail("clip_norm", "a finite number > 0, or 0 for no clipping")
    for name in ("dropout", "label_smoothing"):
        if not 0 <= getattr(config, name) < 1:
            raise fail(name, "in [0, 1)")
    for name, choices in _CHOICES.items():
        if getattr(config, name) not in choices:
            raise fail(name, " or ".join(choices))
    specials = len(SPECIAL_TOKENS)
    if config.vocab_size < 256 + specials:
        raise fail("vocab_size", f">= {256 + specials} (256 bytes and {specials} special tokens)")
    sizes = config.synthetic_sizes
    if min(sizes) < 1 or sum(sizes) > MAX_SUPPORTED + 1:
        raise fail("synthetic_sizes", f"3 sizes >= 1 (train, val, test) that sum to at most {MAX_SUPPORTED + 1:,}")
    if config.synthetic and config.accumulate > sizes[0]:  # more pairs than that for real data (Trainer)
        raise fail("accumulate", f"at most the {sizes[0]:,} synthetic training pairs (each micro-batch needs one)")


# A small model that learns the synthetic task in a few minutes on two CPU cores. It stops
# after a fixed 900 steps (about 6 epochs of 147 batches; patience never ends it earlier) and
# never on a clock, so it learns the same model however busy the machine is.
DEMO_CONFIG = TrainConfig(
    vocab_size=320, max_len=40, max_tokens=2048, d_model=96, n_heads=4, n_encoder_layers=2,
    n_decoder_layers=2, d_ff=256, dropout=0.0, epochs=10, lr=2e-3, warmup=300, label_smoothing=0.0,
    patience=10, select_metric="exact_match", bleu_sentences=300, out_dir="runs/demo", max_steps=900,
)


@dataclass
class Progress:
    """Where training stands: the next batch to run is batch `batch` of epoch `epoch`."""

    epoch: int = 0
    batch: int = 0
    step: int = 0
    best_score: float = -math.inf
    bad_epochs: int = 0
    train_seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)


MODEL_SETTINGS = ("d_model", "n_heads", "n_encoder_layers", "n_decoder_layers", "d_ff", "dropout",
                  "activation", "norm_first")
"""The TrainConfig fields that pass unchanged into the TransformerConfig."""

FIXED_ON_RESUME = tuple(name for name in MODEL_SETTINGS if name != "dropout") + (
    "vocab_size", "max_len", "seed", "synthetic_sizes")
"""Settings that a resumed run cannot change: they define the saved model's weights or function,
or its data (the seed draws the synthetic task's splits, and shuffles every epoch's batches)."""


def model_config(config: TrainConfig, vocab_size: int, pad_id: int) -> TransformerConfig:
    """The model of a run: a joint vocabulary, positions for 2 max_len + 16 tokens."""
    return TransformerConfig(src_vocab_size=vocab_size, tgt_vocab_size=vocab_size, pad_id=pad_id,
                             max_len=model_max_len(config.max_len),
                             **{name: getattr(config, name) for name in MODEL_SETTINGS})
