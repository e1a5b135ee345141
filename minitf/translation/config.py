"""The settings of a translation run (TrainConfig, DEMO_CONFIG, PRESETS), where it stands (Progress), and
the model it builds (model_config). Each field states its type, default, bounds, help and tags
once (minitf.config.setting); validation, from_dict, the CLI's train flags, FIXED_ON_RESUME,
MODEL_SETTINGS and the checkpoint schema are derived from them.

    config = TrainConfig(d_model=128, epochs=5)     # or TrainConfig.from_dict(json_values, source=...)
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any

from .. import backend, config as settings, distributed
from ..config import setting, setting_like
from ..data.synthetic import MAX_SUPPORTED
from ..errors import ConfigError
from ..nn import TransformerConfig
from .limits import LIMITS, MAX_TRAIN_LEN, PROGRESS_CAP, TRAIN_SECONDS_CAP, model_max_len
from .tokens import SPECIAL_TOKENS


def model_setting(name: str, **changes: Any) -> Any:
    """TransformerConfig's field `name` (default, bounds, help), tagged as passing unchanged into
    the model's configuration (MODEL_SETTINGS)."""
    return setting_like(TransformerConfig, name, model=True, **changes)


@dataclass
class TrainConfig:
    """Everything a run depends on; saved in every checkpoint. Data files None = synthetic task.

    Tags: fixed_on_resume (a resumed run cannot change it: it defines the saved model's weights or
    function, or its data: the seed draws the synthetic task's splits and shuffles every epoch),
    model (passes unchanged into the TransformerConfig)."""

    src_train: str | None = setting(None, help="source side of the training pairs (plain or .gz)")
    tgt_train: str | None = setting(None, help="target side of the training pairs, aligned with --src-train")
    src_val: str | None = setting(None, help="source side of the validation pairs")
    tgt_val: str | None = setting(None, help="target side of the validation pairs")
    train_tsv: str | None = setting(None, help="or the training pairs as one file of source<TAB>target lines")
    val_tsv: str | None = setting(None, help="the validation pairs as source<TAB>target lines")
    synthetic_sizes: tuple[int, int, int] = setting(
        (20000, 500, 1000), low=1, high=LIMITS["synthetic_pairs"], fixed_on_resume=True,
        help="train, val and test pairs of the synthetic task (no data files)")
    vocab_size: int = setting(8000, low=1, high=LIMITS["vocab_size"], fixed_on_resume=True,
                              help="BPE vocabulary size, special tokens included")
    max_len: int = setting(128, low=1, high=MAX_TRAIN_LEN, fixed_on_resume=True,
                           help="tokens per sentence; longer training pairs are dropped and counted")
    bpe_dropout: float = setting(0.0, low=0, below=1, help="BPE-dropout: probability of skipping each merge when "
                                 "the training pairs are re-encoded at each epoch (0 = off; never in validation)")
    word_dropout: float = setting(0.0, low=0, below=1, help="word dropout: probability of replacing each source "
                                  "and decoder-input token with a random one in training (0 = off)")
    max_tokens: int = setting(4096, low=1, help="tokens per batch in each process; a step takes this x "
                                                "processes x accumulate")
    d_model: int = model_setting("d_model", fixed_on_resume=True)
    n_heads: int = model_setting("n_heads", fixed_on_resume=True)
    n_encoder_layers: int = model_setting("n_encoder_layers", low=1, fixed_on_resume=True)
    n_decoder_layers: int = model_setting("n_decoder_layers", low=1, fixed_on_resume=True)
    d_ff: int = model_setting("d_ff", fixed_on_resume=True)
    dropout: float = model_setting("dropout", high=None, below=1)
    activation: str = model_setting("activation", fixed_on_resume=True)
    norm_first: bool = model_setting("norm_first", fixed_on_resume=True)
    epochs: int = setting(30, low=0, help="passes over the training data")
    lr: float = setting(1e-3, above=0, help="peak learning rate, reached after --warmup steps")
    warmup: int = setting(4000, low=1, help="steps of linear warm-up to --lr")
    lr_decay: str = setting("inverse_sqrt", choices=("inverse_sqrt", "cosine", "linear"),
                            help="after warm-up: inverse square root decay, or a cosine or linear decay that reaches 0 "
                                 "when the budget ends (--epochs, --max-steps or --time-limit, whichever comes first)")
    weight_decay: float = setting(0.0, low=0, help="AdamW's decoupled weight decay")
    label_smoothing: float = setting(0.1, low=0, below=1, help="label smoothing of the training loss")
    clip_norm: float = setting(1.0, low=0, help="largest global gradient norm, 0 = no clipping")
    patience: int = setting(5, low=1, help="epochs without a better validation score before stopping")
    select_metric: str = setting("bleu", choices=("bleu", "chrf", "exact_match"),
                                 help="validation score that picks best.safetensors")
    bleu_sentences: int = setting(500, low=0, help="validation sentences translated (greedily) each epoch")
    seed: int = setting(0, low=0, fixed_on_resume=True, help="seed of the data's order, the weights and dropout")
    device: str = setting("cpu", help="cpu, cuda or cuda:N")
    backend: str = setting("auto", choices=distributed.BACKENDS,
                           help="processes: auto = MPI under mpiexec, else one process")
    accumulate: int = setting(1, low=1, help="micro-batches per step in each process, for gradient accumulation")
    out_dir: str = setting("runs/model", help="folder of the run: log.jsonl, best and last checkpoints")
    keep_checkpoints: int = setting(0, low=0, help="also keep the weights of the last N evaluations as "
                                                   "epoch<E>.safetensors for `minitf average` (0 = none)")
    log_every: int = setting(50, low=1, help="steps between the log's step records")
    max_steps: int | None = setting(None, low=0, help="stop after this many optimizer steps")
    time_limit: float | None = setting(None, low=0, help="stop after this many seconds of training")

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> "TrainConfig":
        """A configuration from JSON-like values; an unknown key, a value of the wrong type or out of
        range raises ConfigError naming `source`, the key, what it expects and the value."""
        return settings.from_dict(cls, values, source)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def synthetic(self) -> bool:
        return self.src_train is None and self.train_tsv is None

    def validate(self) -> None:
        """Raise ConfigError (or DeviceError for an unknown device) for settings that cannot work:
        each field's type and bounds (its metadata), then the rules between fields."""
        settings.check(self)
        given = [self.src_train, self.tgt_train, self.src_val, self.tgt_val]
        if any(p is not None for p in given) and any(p is None for p in given):
            raise ConfigError("real data needs all four files: --src-train, --tgt-train, --src-val, --tgt-val")
        tsv = [self.train_tsv, self.val_tsv]
        if any(p is not None for p in tsv) and (any(p is None for p in tsv) or given[0] is not None):
            raise ConfigError("TSV data needs --train-tsv and --val-tsv, and no separate source/target files")
        backend.parse_device(self.device)
        _check_together(self)
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if self.backend == "nccl" and backend.parse_device(self.device).kind != "cuda":
            raise ConfigError(f"backend 'nccl' needs --device cuda, got device {self.device!r}")


def _check_together(config: TrainConfig) -> None:
    def fail(name: str, rule: str) -> ConfigError:
        return ConfigError(f"setting {name!r} must be {rule}, got {getattr(config, name)!r}")

    positions = model_max_len(config.max_len) * config.d_model
    if positions > LIMITS["position_table"]:
        raise ConfigError(f"settings 'max_len' {config.max_len} and 'd_model' {config.d_model} give a position "
                          f"table of {positions:,} values ({model_max_len(config.max_len)} positions x d_model), "
                          f"more than the cap of {LIMITS['position_table']:,}: lower --max-len or --d-model")
    specials = len(SPECIAL_TOKENS)
    if config.vocab_size < 256 + specials:
        raise fail("vocab_size", f">= {256 + specials} (256 bytes and {specials} special tokens)")
    sizes = config.synthetic_sizes
    if sum(sizes) > MAX_SUPPORTED + 1:
        raise fail("synthetic_sizes", f"3 sizes (train, val, test) that sum to at most {MAX_SUPPORTED + 1:,}")
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


PRESETS: dict[str, dict[str, Any]] = {
    # A small, strongly regularized model for corpora of some 10,000-100,000 pairs, after the
    # low-resource NMT literature (Araabi & Monz 2020; the "tiny" Transformer of Wu et al. 2021):
    # 128 wide, 4+4 layers, dropout 0.3, BPE-dropout 0.1, a 6,000-token joint vocabulary. It learns
    # slowly: on Multi30k it was still far behind the wider recipe after 90 CPU-minutes
    # (BENCHMARKS.md, the sweep), so it is for runs of many epochs, not for that budget.
    "small-data": dict(d_model=128, d_ff=512, n_heads=4, n_encoder_layers=4, n_decoder_layers=4, dropout=0.3,
                       vocab_size=6000, bpe_dropout=0.1, lr=2e-3, warmup=1000, label_smoothing=0.1),
}
"""Named sets of settings that `minitf train --preset NAME` starts from (--config and flags override them)."""

MODEL_SETTINGS = settings.fields_with(TrainConfig, "model")
"""The TrainConfig fields that pass unchanged into the TransformerConfig."""

FIXED_ON_RESUME = settings.fields_with(TrainConfig, "fixed_on_resume")
"""Settings that a resumed run cannot change (see TrainConfig's tags)."""

TRAIN_CAPS = {f.name: settings.spec_of(f).high for f in dataclasses.fields(TrainConfig)
              if typing.get_type_hints(TrainConfig)[f.name] is int and settings.spec_of(f).high is not None}
"""The largest value of each integer setting that has one (the model's caps, which checkpoints hold too)."""


@dataclass
class Progress:
    """Where training stands: the next batch to run is batch `batch` of epoch `epoch`. Saved in
    every checkpoint; its bounds are those the checkpoint loader accepts."""

    epoch: int = setting(0, low=0, high=PROGRESS_CAP)
    batch: int = setting(0, low=0, high=PROGRESS_CAP)
    step: int = setting(0, low=0, high=PROGRESS_CAP)
    best_score: float = setting(-math.inf, high=100.0, finite=False)  # -inf: nothing scored yet
    bad_epochs: int = setting(0, low=0, high=PROGRESS_CAP)
    train_seconds: float = setting(0.0, low=0, high=TRAIN_SECONDS_CAP)
    history: list[dict[str, Any]] = setting(default_factory=list)  # each evaluation's record (EvalRecord)


@dataclass
class EvalRecord:
    """One evaluation in Progress.history and the log (Trainer._evaluate_and_save): `step` is the
    step it evaluated."""

    step: int = setting(low=0, high=PROGRESS_CAP)
    event: str = setting("eval", choices=("eval",))
    epoch: int = setting(1, low=1, high=PROGRESS_CAP + 1)
    train_seconds: float = setting(0.0, low=0, high=TRAIN_SECONDS_CAP)
    val_loss: float = setting(0.0, low=0)
    bleu: float = setting(0.0, low=0, high=100)
    chrf: float = setting(0.0, low=0, high=100)
    exact_match: float = setting(0.0, low=0, high=1)


def model_config(config: TrainConfig, vocab_size: int, pad_id: int) -> TransformerConfig:
    """The model of a run: a joint vocabulary, positions for 2 max_len + 16 tokens."""
    return TransformerConfig(src_vocab_size=vocab_size, tgt_vocab_size=vocab_size, pad_id=pad_id,
                             max_len=model_max_len(config.max_len),
                             **{name: getattr(config, name) for name in MODEL_SETTINGS})
