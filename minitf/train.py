"""Training of translation models: data, the loop, evaluation, checkpoints and exact resume.

    trainer = Trainer(TrainConfig(...))      # or Trainer.from_checkpoint("runs/x/last.safetensors")
    trainer.fit()

With no data files configured, it trains on the built-in synthetic task (English number
words -> German number words), so it runs offline on a fresh machine.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm import tqdm

from . import backend, distributed, rng
from . import functional as F
from .autograd import no_grad
from .data import (Batch, Example, TokenBatcher, encode_pairs, number_translation_task, read_parallel,
                   read_tsv, shard_batch)
from .data.synthetic import MAX_SUPPORTED
from .errors import ConfigError, InputError, TrainingError
from .nn import Transformer, TransformerConfig
from .optim import AdamW, InverseSqrtSchedule, clip_grad_norm
from .tokenizer import BPETokenizer
from .translate.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .translate.limits import LIMITS, TRAIN_CAPS, check_accumulate, model_max_len
from .translate.memory import check_training_memory
from .translate.metrics import bleu, chrf, exact_match
from .translate.training_state import (check_optimizer_settings, check_progress_fits, check_resumable,
                                       check_same_batches, check_same_model, check_tokenizer_size)
from .translate.translator import SPECIAL_TOKENS, Translator
from .translate.interrupt import graceful_interrupt
from .translate.run_dir import RunLock, append_log, check_out_dir, out_dir_path, prepare_out_dir


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


class Trainer:
    """Trains a Transformer on a parallel corpus; writes best.safetensors, last.safetensors and log.jsonl."""

    resume_hint = "minitf train --resume {path}"  # printed after an interrupt; a script sets its own

    def __init__(self, config: TrainConfig, tokenizer: BPETokenizer | None = None,
                 log: Callable[[str], None] = print, overwrite: bool = False, *,
                 _resuming: bool = False) -> None:
        """Check the settings, the device and the output folder, then load data and build the model.

        A folder that already holds a run (run_dir.RUN_NAMES: log.jsonl, best/last checkpoints) raises ConfigError
        unless `overwrite` is true: then fit() first deletes that run's files. (`_resuming`:
        from_checkpoint continues the run in its own folder.)
        """
        config.validate()
        backend.require_device(config.device)
        _check_memory(config, min(config.vocab_size, 256 + len(SPECIAL_TOKENS)))  # at once, before any data
        self.comm = distributed.init(config.backend)
        self.config = config
        self.log = log if self.comm.is_main else _quiet  # rank 0 alone speaks and writes files
        self.out_dir = out_dir_path(config.out_dir)
        if not _resuming:  # checked again when fit() starts, holding the folder's lock
            check_out_dir(self.out_dir, overwrite)
        self._on_rank_0(RunLock(self.out_dir).check_free)  # another run training there now
        self._overwrite, self._claimed = overwrite, _resuming
        self.progress = Progress()
        self._evaluated_step = 0  # the last evaluation's step, in every process (history is rank 0's)
        # Set by Ctrl-C, SIGTERM (or you): fit() stops after the current step. A signal only sets
        # `_signalled`; the processes agree on stopping inside the step, so that all stop together.
        self.stop_requested = False
        self._signalled = False
        rng.manual_seed(config.seed)
        self.splits = load_splits(config)
        if not self.splits["train"]:
            raise InputError("the training data holds no sentence pairs")
        if not self.splits["val"]:  # (the synthetic task's has at least one)
            files = config.val_tsv or f"{config.src_val}, {config.tgt_val}"
            raise InputError(f"the validation data ({files}) holds no sentence pairs")
        self.tokenizer = tokenizer or train_tokenizer(config, self.splits["train"], self.log)
        self.pad_id, self.bos_id, self.eos_id = (self.tokenizer.special_id(t) for t in SPECIAL_TOKENS)
        _check_memory(config, self.tokenizer.vocab_size)
        self.batcher = self._make_batcher()
        # All processes must train the same run: refuse at once if their settings or data differ
        # (not the device: each process may name its own GPU).
        distributed.check_same_settings(self.comm, {
            **{name: value for name, value in config.to_dict().items() if name != "device"},
            "tokenizer (digest)": distributed.digest(self.tokenizer.to_dict()),
            "training pairs": len(self.splits["train"]), "validation pairs": len(self.splits["val"]),
            "training pairs kept": len(self.batcher.examples)})
        self.model = Transformer(model_config(config, self.tokenizer.vocab_size, self.pad_id))
        self.model.to(config.device)
        self.optimizer = AdamW(self.model.parameters(), lr=config.lr, betas=(0.9, 0.98), eps=1e-9,
                               weight_decay=config.weight_decay)
        self.schedule = InverseSqrtSchedule(self.optimizer, config.warmup)
        self.ddp = distributed.DistributedDataParallel(self.model, self.comm)
        self.log(f"model: {self.model.num_parameters():,} parameters on {config.device}; "
                 f"vocabulary {self.tokenizer.vocab_size}"
                 + (f"; {self.comm.size} processes ({self.comm.name})" if self.comm.size > 1 else ""))

    # ---- data ---------------------------------------------------------------------------
    def _make_batcher(self) -> TokenBatcher:
        examples, dropped = encode_pairs(self.splits["train"], self.tokenizer, self.config.max_len)
        if not examples:
            raise InputError(f"no training pair fits max_len {self.config.max_len} tokens")
        check_accumulate(self.config.accumulate, self.comm.size, len(examples))
        self.log(f"training pairs: {len(examples):,} kept, {dropped:,} dropped "
                 f"(longer than {self.config.max_len} tokens or empty source)")
        # A step's batch is the union of every process's micro-batches: each of the comm.size
        # processes runs `accumulate` micro-batches of about max_tokens (see _micro_batches).
        budget = self.config.max_tokens * self.comm.size * self.config.accumulate
        return TokenBatcher(examples, budget, pad_id=self.pad_id, bos_id=self.bos_id,
                            eos_id=self.eos_id, seed=self.config.seed)

    def _device_arrays(self, batch: Batch) -> tuple[Any, Any, Any, Any]:
        move = lambda a: backend.to_device(a, self.config.device)  # noqa: E731
        return move(batch.src), move(batch.tgt_in), move(batch.tgt_out), move(batch.src_mask)

    # ---- training -----------------------------------------------------------------------
    def train_step(self, batch: Batch) -> float:
        """One optimizer step on one batch; returns the (label-smoothed) mean token loss.

        With several processes, `batch` is the step's whole batch: each process takes its
        shard, gradients are summed over all of them, and the loss is divided by the number
        of target tokens of the whole batch, so the step equals one process's on `batch`.
        A loss or gradient norm that is nan or inf raises TrainingError before the step changes
        any parameter. Also adds the step's time (rank 0's) to progress.train_seconds.
        """
        started = time.perf_counter()
        self._seed_generators()
        parts = self._micro_batches(batch)
        total = self.comm.allreduce_numbers([sum(part.n_tgt_tokens for part in parts)])[0]
        self.optimizer.zero_grad()
        loss_sum = 0.0
        for i, part in enumerate(parts):
            with self.ddp.no_sync() if i < len(parts) - 1 else contextlib.nullcontext():
                src, tgt_in, tgt_out, src_mask = self._device_arrays(part)
                loss = F.cross_entropy(self.model(src, tgt_in, src_mask), tgt_out, ignore_index=self.pad_id,
                                       label_smoothing=self.config.label_smoothing, reduction="sum")
                loss_sum += loss.item()
                (loss * (1.0 / total)).backward()
        self.ddp.finish()
        loss_sum, stop, seconds = self.comm.allreduce_numbers(
            [loss_sum, float(self.stop_requested or self._signalled),
             (time.perf_counter() - started) * self.comm.is_main])
        self.stop_requested = stop > 0  # any process's Ctrl-C or SIGTERM stops them all, after this step
        value = loss_sum / total
        if not math.isfinite(value):
            raise self._diverged(f"the loss is {value}")
        norm = clip_grad_norm(self.model.parameters(), self.config.clip_norm)
        if not math.isfinite(norm):
            raise self._diverged(f"the gradient norm is {norm}")
        self.optimizer.step()
        self.schedule.step()
        self.progress.train_seconds += seconds
        return value

    def _micro_batches(self, batch: Batch) -> list[Batch]:
        """This process's shard of `batch`, cut into `accumulate` micro-batches (empty ones left out)."""
        shard = shard_batch(batch, self.comm.rank, self.comm.size)
        if shard is None:
            return []
        parts = [shard_batch(shard, k, self.config.accumulate) for k in range(min(self.config.accumulate,
                                                                                  shard.size))]
        return [part for part in parts if part is not None]

    def _diverged(self, what: str) -> TrainingError:
        p = self.progress
        return TrainingError(f"training stopped at step {p.step + 1} (epoch {p.epoch + 1}, batch {p.batch + 1}): "
                             f"{what}; the step was not taken and the checkpoints in {self.out_dir} are "
                             "left as they were (try a lower --lr, or --clip-norm)")

    def _seed_generators(self) -> None:
        """Seed every generator (dropout's draws) from (seed, step), and the rank when several
        processes train (each draws its own masks). A step's masks then depend on nothing that
        happened before it, in this process or another: a run stopped anywhere (a signal in a
        step, in an evaluation, in a save) and resumed draws what an uninterrupted one draws."""
        key = [self.config.seed, self.progress.step] + [self.comm.rank] * (self.comm.size > 1)
        rng.manual_seed(int(np.random.SeedSequence(key).generate_state(1)[0]))

    def fit(self) -> Progress:
        """Train until `epochs`, early stopping, `max_steps`, `time_limit` or Ctrl-C; return progress.

        Ctrl-C (SIGINT) or SIGTERM finishes the current step, writes last.safetensors and returns
        (resume with `Trainer.from_checkpoint`). A second one interrupts at once.
        A loss or gradient norm that turns nan or inf stops training with TrainingError and
        saves nothing. Rank 0 holds the output folder's lock meanwhile: another run into it
        raises ConfigError (minitf.translate.run_dir.RunLock).
        """
        lock = RunLock(self.out_dir)
        try:
            # Check the folder again under the lock: another run may have written there since __init__.
            self._on_rank_0(lambda: (lock.acquire(), self._claimed or prepare_out_dir(self.out_dir, self._overwrite)))
            self._claimed = True
            with graceful_interrupt(self):
                # A run stopped after its last step but before evaluating it evaluates on resume.
                while self.progress.epoch < self.config.epochs and not (
                        self._finished() and self.progress.step == self._evaluated_step):
                    self._train_epoch()
                    if self._stopping():
                        break
                    self._end_epoch()
            self.save("last")
        finally:
            lock.release()
        if self.stop_requested:
            last = self.out_dir / "last.safetensors"
            self.log(f"interrupted: saved {last}; continue with `{self.resume_hint.format(path=last)}`")
        return self.progress

    def _on_rank_0(self, check: Callable[[], Any]) -> None:
        """Run `check` on rank 0 alone; if it raises ConfigError, every process raises (the others
        would otherwise wait for rank 0 in the next collective)."""
        error = None
        if self.comm.is_main:
            try:
                check()
            except ConfigError as exc:
                error = exc
        if self.comm.size > 1 and self.comm.allreduce_numbers([float(error is not None)])[0]:
            error = error or ConfigError(f"rank 0 refused the output folder {self.out_dir} (see its message)")
        if error is not None:
            raise error

    def _stopping(self) -> bool:
        """Stop after this step? With several processes, as they agreed in the step; alone, also
        on a signal that came after that (nothing to agree with)."""
        if self.comm.size == 1 and self._signalled:
            self.stop_requested = True
        return self.stop_requested

    def _finished(self) -> bool:
        c, p = self.config, self.progress
        return (p.bad_epochs >= c.patience or (c.max_steps is not None and p.step >= c.max_steps)
                or (c.time_limit is not None and p.train_seconds >= c.time_limit))

    def _train_epoch(self) -> None:
        p = self.progress
        plan = self.batcher.plan(p.epoch)
        bar = tqdm(total=len(plan), initial=p.batch, desc=f"epoch {p.epoch + 1}", unit="batch",
                   leave=False, dynamic_ncols=True, disable=None if self.comm.is_main else True)
        tokens, started = 0, time.perf_counter()
        with bar:
            while p.batch < len(plan) and not self._stopping() and not self._finished():
                batch = self.batcher.batch(plan[p.batch])
                loss = self.train_step(batch)
                p.batch, p.step = p.batch + 1, p.step + 1
                tokens += batch.n_tgt_tokens
                rate = tokens / max(time.perf_counter() - started, 1e-9)
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{rate:,.0f}", lr=f"{self.optimizer.lr:.2e}")
                if p.step % self.config.log_every == 0:
                    self._write_log({"event": "step", "step": p.step, "epoch": p.epoch, "loss": loss,
                                     "lr": self.optimizer.lr, "tokens_per_s": rate})

    def _end_epoch(self) -> None:
        p = self.progress
        self._evaluated_step = p.step
        # A limit (max_steps, time_limit) can end training mid-epoch: evaluate, but keep the
        # position, so that a resume with a larger limit runs the rest of this epoch.
        complete = p.batch >= len(self.batcher.plan(p.epoch))
        if self.comm.is_main:
            self._evaluate_and_save(complete)
        elif complete:
            p.epoch, p.batch = p.epoch + 1, 0
        if self.comm.size > 1:  # the others wait for rank 0's evaluation, then follow its early stopping
            p.bad_epochs = int(self.comm.allreduce_numbers([p.bad_epochs * self.comm.is_main],
                                                           timeout=EVALUATION_TIMEOUT)[0])

    def _evaluate_and_save(self, complete: bool) -> None:
        p = self.progress
        metrics = self.evaluate()
        metrics.update(event="eval", epoch=p.epoch + 1, step=p.step, train_seconds=p.train_seconds)
        p.history.append(metrics)
        self._write_log(metrics)
        # BLEU is left out on the synthetic task: its references are single words.
        bleu_part = "" if self.config.synthetic else f"BLEU {metrics['bleu']:.2f}, "
        self.log(f"epoch {p.epoch + 1}: val loss {metrics['val_loss']:.3f}, {bleu_part}"
                 f"chrF {metrics['chrf']:.2f}, exact match {metrics['exact_match']:.1%} "
                 f"(step {p.step}, {p.train_seconds:.0f} s of training)")
        if complete:
            p.epoch, p.batch = p.epoch + 1, 0
        score = metrics[self.config.select_metric]
        if score > p.best_score:
            p.best_score, p.bad_epochs = score, 0
            self.save("best")
        elif complete:
            p.bad_epochs += 1
        self.save("last")

    # ---- evaluation ---------------------------------------------------------------------
    def evaluate(self, pairs: list[tuple[str, str]] | None = None) -> dict[str, float]:
        """Validation loss (plain cross-entropy per token) and greedy BLEU, chrF, exact match.

        Both are measured on the same pairs and nothing is truncated: only pairs longer than
        the model's positions (its max_len, 2 * max_len + 16 by default) or with an empty
        source are left out, and their number is logged.
        """
        pairs = self.splits["val"] if pairs is None else pairs
        examples, kept = self._pairs_the_model_holds(pairs)
        scores = self.translation_scores(kept[: self.config.bleu_sentences])
        return {"val_loss": self.loss_on(examples), **scores}

    def _pairs_the_model_holds(self, pairs: list[tuple[str, str]]) -> tuple[list[Example], list[tuple[str, str]]]:
        """The encoded pairs that fit the model's positions (target input = BOS + tokens), and their texts."""
        limit = self.model.config.max_len - 1
        examples, kept = [], []
        for source, target in pairs:
            example = Example(self.tokenizer.encode(source), self.tokenizer.encode(target))
            if 0 < len(example.src) <= limit and len(example.tgt) <= limit:
                examples.append(example)
                kept.append((source, target))
        if len(kept) < len(pairs):
            self.log(f"evaluation: {len(pairs) - len(kept)} of {len(pairs)} pairs left out (longer than the "
                     f"model's {limit} tokens, or an empty source)")
        return examples, kept

    def loss_on(self, examples: list[Example]) -> float:
        """Mean cross-entropy per target token (no label smoothing) over encoded examples."""
        batcher = TokenBatcher(examples, self.config.max_tokens, pad_id=self.pad_id, bos_id=self.bos_id,
                               eos_id=self.eos_id, shuffle=False)
        total, count = 0.0, 0
        self.model.eval()
        with no_grad():
            for batch in batcher.epoch(0):
                src, tgt_in, tgt_out, src_mask = self._device_arrays(batch)
                logits = self.model(src, tgt_in, src_mask)
                total += F.cross_entropy(logits, tgt_out, ignore_index=self.pad_id, reduction="sum").item()
                count += batch.n_tgt_tokens
        self.model.train()
        if not count:
            raise InputError(f"no loss to measure: {len(examples)} examples hold no target tokens")
        return total / count

    def translate(self, sentences: list[str], beam_size: int = 1) -> list[str]:
        """Translate whole sentences (none is truncated; one longer than the model allows raises
        ValueError naming it, as Translator does)."""
        try:
            return Translator(self.model, self.tokenizer).translate(sentences, beam_size=beam_size)
        finally:
            self.model.train()

    def translation_scores(self, pairs: list[tuple[str, str]]) -> dict[str, float]:
        hypotheses = self.translate([s for s, _ in pairs])
        references = [t for _, t in pairs]
        return {"bleu": bleu(hypotheses, references), "chrf": chrf(hypotheses, references),
                "exact_match": exact_match(hypotheses, references)}

    # ---- checkpoints --------------------------------------------------------------------
    def save(self, kind: str) -> Path:
        """Write best.safetensors or last.safetensors (rank 0 only: the others return the path);
        a parameter holding nan or inf raises TrainingError instead."""
        path = self.out_dir / f"{kind}.safetensors"
        if not self.comm.is_main:
            return path
        bad = [name for name, p in self.model.named_parameters()
               if not bool(backend.get_array_module(p.data).isfinite(p.data).all())]
        if bad:
            raise TrainingError(f"not saving {kind}: parameter(s) {bad[:3]} hold nan or inf; "
                                f"the checkpoints in {self.out_dir} are left as they were")
        meta = {"train_config": self.config.to_dict(), "model_config": self.model.config.to_dict(),
                "tokenizer": self.tokenizer.to_dict(), "schedule": self.schedule.state_dict(),
                "progress": dataclasses.asdict(self.progress), "rng": rng.rng_state(),
                "processes": self.comm.size}  # part of what a step is: see check_resumed_processes
        return save_checkpoint(path, self.model.state_dict(), meta, self.optimizer.state_dict())

    @classmethod
    def from_checkpoint(cls, path: str, log: Callable[[str], None] = print, overwrite: bool = False,
                        **overrides: Any) -> "Trainer":
        """Rebuild a trainer from a checkpoint and continue exactly where it stopped.

        `overrides` change settings that do not alter the model (epochs, device, limits, dropout ...);
        one in FIXED_ON_RESUME that differs from the checkpoint raises ConfigError, and so does one
        that changes the batch plan of an epoch stopped in its middle (check_same_batches).
        It goes on writing into the checkpoint's folder, or into a new `out_dir` (one that holds
        another run only with `overwrite`).
        """
        model_state, meta, optim_state = load_checkpoint(path)
        check_resumable(path, meta, optim_state, [f.name for f in dataclasses.fields(Progress)])
        saved = meta["train_config"]
        saved_config = _saved_config(path, saved)
        # The run goes on next to the checkpoint, or into the given out_dir: never into a folder the
        # file names (a copied checkpoint would write into the original's, a crafted one anywhere).
        out_dir = overrides.get("out_dir", str(Path(path).parent))
        config = TrainConfig.from_dict({**saved, **overrides, "out_dir": out_dir},
                                       source=str(path) + " with the given settings" * bool(overrides))
        changed = [f"{k} {getattr(saved_config, k)!r} -> {getattr(config, k)!r}" for k in FIXED_ON_RESUME
                   if getattr(config, k) != getattr(saved_config, k)]
        if changed:
            raise ConfigError(f"resuming {path} continues its model and data, whose settings cannot change: "
                              + ", ".join(changed))
        try:
            tokenizer = BPETokenizer.from_dict(meta["tokenizer"], source=str(path))
        except (KeyError, TypeError, ValueError) as exc:  # the file's data, not a bug here
            raise CheckpointError(f"checkpoint {path}: its tokenizer is malformed ({exc})") from exc
        check_tokenizer_size(path, saved_config.vocab_size, tokenizer.vocab_size)
        same_folder = Path(config.out_dir).resolve() == Path(path).resolve().parent
        trainer = cls(config, tokenizer=tokenizer, log=log, overwrite=overwrite, _resuming=same_folder)
        distributed.check_resumed_processes(str(path), saved, meta.get("processes"), config, trainer.comm.size)
        check_same_batches(path, saved, meta.get("processes"), config, trainer.comm.size, meta["progress"])
        check_same_model(path, meta["model_config"], trainer.model.config.to_dict())
        check_optimizer_settings(path, optim_state, trainer.optimizer.defaults)
        try:  # each checks every value before it changes anything
            trainer.model.load_state_dict(model_state, cast=True)  # float16/64 weights; the optimizer casts its own
            trainer.optimizer.load_state_dict(optim_state)
            trainer.schedule.load_state_dict(meta["schedule"])
            rng.set_rng_state(meta["rng"])
        except ValueError as exc:  # weights or state that do not fit the saved configuration or its ranges
            raise CheckpointError(f"checkpoint {path}: {exc}") from exc
        progress = meta["progress"]
        check_progress_fits(path, progress, len(trainer.batcher.plan(progress["epoch"])), trainer.schedule.steps,
                            len(trainer.optimizer.state), len(list(trainer.model.parameters())))
        trainer.progress = Progress(**progress)
        trainer.log(f"resumed from {path}: epoch {trainer.progress.epoch + 1}, step {trainer.progress.step}")
        trainer._evaluated_step = trainer.progress.history[-1]["step"] if trainer.progress.history else 0
        return trainer

    def _write_log(self, record: dict[str, Any]) -> None:
        if self.comm.is_main:
            append_log(self.out_dir, record)


# ---- building blocks ----------------------------------------------------------------------

EVALUATION_TIMEOUT = 3600.0  # seconds the other processes wait while rank 0 evaluates and saves


def _quiet(message: str) -> None:
    """The log of every process but rank 0."""

def load_splits(config: TrainConfig) -> dict[str, list[tuple[str, str]]]:
    """The synthetic task's splits, or the configured parallel files as "train" and "val"."""
    if config.synthetic:
        n_train, n_val, n_test = config.synthetic_sizes
        return number_translation_task(n_train, n_val, n_test, seed=config.seed)
    if config.train_tsv is not None:
        return {"train": list(read_tsv(config.train_tsv)), "val": list(read_tsv(config.val_tsv))}
    return {"train": list(read_parallel(config.src_train, config.tgt_train)),
            "val": list(read_parallel(config.src_val, config.tgt_val))}


def train_tokenizer(config: TrainConfig, pairs: list[tuple[str, str]],
                    log: Callable[[str], None] = print) -> BPETokenizer:
    """A joint byte-level BPE vocabulary over both sides of the training pairs."""
    texts = [s for s, _ in pairs] + [t for _, t in pairs]
    tokenizer = BPETokenizer.train(texts, config.vocab_size, special_tokens=SPECIAL_TOKENS)
    log(f"tokenizer: {tokenizer.vocab_size} tokens trained on {len(texts):,} sentences")
    return tokenizer


MODEL_SETTINGS = ("d_model", "n_heads", "n_encoder_layers", "n_decoder_layers", "d_ff", "dropout",
                  "activation", "norm_first")
"""The TrainConfig fields that pass unchanged into the TransformerConfig."""

FIXED_ON_RESUME = tuple(name for name in MODEL_SETTINGS if name != "dropout") + (
    "vocab_size", "max_len", "seed", "synthetic_sizes")
"""Settings that a resumed run cannot change: they define the saved model's weights or function,
or its data (the seed draws the synthetic task's splits, and shuffles every epoch's batches)."""


def _saved_config(path: str, saved: dict[str, Any]) -> TrainConfig:
    """A checkpoint's train_config through TrainConfig's checks (types, ranges), as CheckpointError;
    the settings that define the model must be there (a default would build another model)."""
    missing = [name for name in FIXED_ON_RESUME if name not in saved]
    if missing:
        raise CheckpointError(f"checkpoint {path}: train_config lacks {missing}")
    try:
        return TrainConfig.from_dict(saved, source=f"checkpoint {path}: train_config")
    except (ConfigError, backend.DeviceError) as exc:
        raise CheckpointError(str(exc)) from None


def _check_memory(config: TrainConfig, vocab_size: int) -> None:
    """Raise ConfigError if the run's model and a full batch cannot fit in the device's memory."""
    check_training_memory(model_config(config, vocab_size, 0).to_dict(), config.max_tokens, config.device)


def model_config(config: TrainConfig, vocab_size: int, pad_id: int) -> TransformerConfig:
    """The model of a run: a joint vocabulary, positions for 2 max_len + 16 tokens."""
    return TransformerConfig(src_vocab_size=vocab_size, tgt_vocab_size=vocab_size, pad_id=pad_id,
                             max_len=model_max_len(config.max_len),
                             **{name: getattr(config, name) for name in MODEL_SETTINGS})
