"""The trainer of translation models: the loop, evaluation each epoch, checkpoints and exact resume.

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
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm import tqdm

from .. import backend, distributed, rng
from .. import functional as F
from ..data import Batch, Example, drop_words, shard_batch
from ..errors import ConfigError, TrainingError
from ..nn import Seq2SeqTransformer
from ..optim import AdamW, BudgetSchedule, InverseSqrtSchedule, clip_grad_norm
from ..tokenizer import BPETokenizer
from . import evaluation, resume
from .checkpoint import save_checkpoint
from .config import Progress, TrainConfig, model_config
from .dataset import check_splits, load_splits, make_batcher, on_device, train_tokenizer
from .memory import check_training_memory
from .run import (RunLock, append_log, check_out_dir, epoch_checkpoint_name, graceful_interrupt, out_dir_path,
                  prepare_out_dir, prune_epoch_checkpoints)
from .tokens import SPECIAL_TOKENS, special_ids

EVALUATION_TIMEOUT = 3600.0  # seconds the other processes wait while rank 0 evaluates and saves


class Trainer:
    """Trains a Transformer on a parallel corpus; writes best.safetensors, last.safetensors and log.jsonl
    (and with keep_checkpoints N, the epoch checkpoints of the last N evaluations: run.EPOCH_CHECKPOINT)."""

    resume_hint = "minitf train --resume {path}"  # printed after an interrupt; a script sets its own

    def __init__(self, config: TrainConfig, tokenizer: BPETokenizer | None = None,
                 log: Callable[[str], None] = print, overwrite: bool = False, *,
                 _resuming: bool = False) -> None:
        """Check the settings, the device and the output folder, then load data and build the model.

        A folder that already holds a run (run.RUN_NAMES: log.jsonl, best/last checkpoints) raises ConfigError
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
        check_splits(config, self.splits)
        self.tokenizer = tokenizer or train_tokenizer(config, self.splits["train"], self.log)
        self.pad_id, self.bos_id, self.eos_id = special_ids(self.tokenizer)
        _check_memory(config, self.tokenizer.vocab_size)
        self.batcher = make_batcher(config, self.splits["train"], self.tokenizer, self.comm.size, self.log)
        # All processes must train the same run: refuse at once if their settings or data differ
        # (not the device: each process may name its own GPU).
        distributed.check_same_settings(self.comm, {
            **{name: value for name, value in config.to_dict().items() if name != "device"},
            "tokenizer (digest)": distributed.digest(self.tokenizer.to_dict()),
            "training pairs": len(self.splits["train"]), "validation pairs": len(self.splits["val"]),
            "training pairs kept": len(self.batcher.examples)})
        self.model = Seq2SeqTransformer(model_config(config, self.tokenizer.vocab_size, self.pad_id))
        self.model.to(config.device)
        self.optimizer = AdamW(self.model.parameters(), lr=config.lr, betas=(0.9, 0.98), eps=1e-9,
                               weight_decay=config.weight_decay)
        self._planned_steps: float | None = None  # budget_used()'s, counted at its first call
        self.schedule = (InverseSqrtSchedule(self.optimizer, config.warmup) if config.lr_decay == "inverse_sqrt"
                         else BudgetSchedule(self.optimizer, config.warmup, config.lr_decay))
        self.ddp = distributed.DistributedDataParallel(self.model, self.comm)
        self.log(f"model: {self.model.num_parameters():,} parameters on {config.device}; "
                 f"vocabulary {self.tokenizer.vocab_size}"
                 + (f"; {self.comm.size} processes ({self.comm.name})" if self.comm.size > 1 else ""))

    @classmethod
    def from_checkpoint(cls, path: str, log: Callable[[str], None] = print, overwrite: bool = False,
                        **overrides: Any) -> "Trainer":
        """Rebuild a trainer from a checkpoint and continue exactly where it stopped.

        `overrides` change settings that do not alter the model (epochs, device, limits, dropout ...);
        one in FIXED_ON_RESUME that differs from the checkpoint raises ConfigError, and so does one
        that changes the batch plan of an epoch stopped in its middle (resume.check_same_batches).
        It goes on writing into the checkpoint's folder, or into a new `out_dir` (one that holds
        another run only with `overwrite`).
        """
        run = resume.open_run(path, overrides)
        trainer = cls(run.config, tokenizer=run.tokenizer, log=log, overwrite=overwrite, _resuming=run.same_folder)
        trainer.progress = resume.restore(run, trainer.model, trainer.optimizer, trainer.schedule, trainer.batcher,
                                          trainer.comm.size)
        trainer.log(f"resumed from {path}: epoch {trainer.progress.epoch + 1}, step {trainer.progress.step}")
        trainer._evaluated_step = trainer.progress.history[-1]["step"] if trainer.progress.history else 0
        return trainer

    # ---- the loop -----------------------------------------------------------------------
    def fit(self) -> Progress:
        """Train until `epochs`, early stopping, `max_steps`, `time_limit` or Ctrl-C; return progress.

        Ctrl-C (SIGINT) or SIGTERM finishes the current step, writes last.safetensors and returns
        (resume with `Trainer.from_checkpoint`). A second one interrupts at once.
        A loss or gradient norm that turns nan or inf stops training with TrainingError and
        saves nothing. Rank 0 holds the output folder's lock meanwhile: another run into it
        raises ConfigError (minitf.translation.run.RunLock).
        """
        lock = RunLock(self.out_dir)
        try:
            # Check the folder again under the lock: another run may have written there since __init__.
            self._on_rank_0(lambda: (lock.acquire(), self._claimed or prepare_out_dir(self.out_dir, self._overwrite)))
            self._claimed = True
            with graceful_interrupt(self._on_signal):
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
                part = self._drop_words(part)
                src, tgt_in, tgt_out, src_mask = on_device(part, self.config.device)
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
        if isinstance(self.schedule, BudgetSchedule):
            self.schedule.set_used(self.budget_used())
        self.optimizer.step()
        self.schedule.step()
        self.progress.train_seconds += seconds
        return value

    def budget_used(self) -> float:
        """The fraction of the training budget spent before this step: the larger of steps / planned
        steps (--max-steps, or --epochs x the first epoch's batches) and training seconds / --time-limit.
        The same in every process (train_seconds is rank 0's, shared by each step's allreduce)."""
        c, p = self.config, self.progress
        if self._planned_steps is None:
            self._planned_steps = min(c.epochs * self.batcher.num_batches(0), c.max_steps or math.inf)
        by_steps = p.step / self._planned_steps if self._planned_steps else 1.0
        by_time = p.train_seconds / c.time_limit if c.time_limit else 0.0
        return min(max(by_steps, by_time), 1.0)

    def _micro_batches(self, batch: Batch) -> list[Batch]:
        """This process's shard of `batch`, cut into `accumulate` micro-batches (empty ones left out)."""
        shard = shard_batch(batch, self.comm.rank, self.comm.size)
        if shard is None:
            return []
        parts = [shard_batch(shard, k, self.config.accumulate) for k in range(min(self.config.accumulate,
                                                                                  shard.size))]
        return [part for part in parts if part is not None]

    def _seed_generators(self) -> None:
        """Seed every generator (dropout's draws) from (seed, step), and the rank when several
        processes train (each draws its own masks). A step's masks then depend on nothing that
        happened before it, in this process or another: a run stopped anywhere (a signal in a
        step, in an evaluation, in a save) and resumed draws what an uninterrupted one draws."""
        key = np.random.SeedSequence([self.config.seed, self.progress.step] + [self.comm.rank] * (self.comm.size > 1))
        rng.manual_seed(int(key.generate_state(1)[0]))
        self._word_rng = np.random.default_rng(key.spawn(1)[0])

    def _drop_words(self, part: Batch) -> Batch:
        """`part` with word dropout (--word-dropout) applied: random non-special tokens in place of some
        source and decoder-input tokens; the target the loss scores stays clean."""
        if not self.config.word_dropout:
            return part
        low = max(self.pad_id, self.bos_id, self.eos_id) + 1
        return drop_words(part, self.config.word_dropout, self._word_rng, low, self.tokenizer.vocab_size)

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
        name = epoch_checkpoint_name(p.epoch + 1, p.step, complete)
        if complete:
            p.epoch, p.batch = p.epoch + 1, 0
        score = metrics[self.config.select_metric]
        if score > p.best_score:
            p.best_score, p.bad_epochs = score, 0
            self.save("best")
        elif complete:
            p.bad_epochs += 1
        if self.config.keep_checkpoints:  # before last: a run killed in between evaluates (and writes it) again
            self.save(name.removesuffix(".safetensors"), optimizer=False)
            prune_epoch_checkpoints(self.out_dir, self.config.keep_checkpoints)
        self.save("last")

    # ---- evaluation ---------------------------------------------------------------------
    def evaluate(self, pairs: list[tuple[str, str]] | None = None) -> dict[str, float]:
        """Validation loss and greedy BLEU, chrF, exact match on `pairs` (default: the validation
        split), its first bleu_sentences pairs translated (evaluation.evaluate)."""
        pairs = self.splits["val"] if pairs is None else pairs
        return evaluation.evaluate(self.model, self.tokenizer, pairs, self.config.max_tokens,
                                   self.config.bleu_sentences, self.config.device, self.log)

    def loss_on(self, examples: list[Example]) -> float:
        """Mean cross-entropy per target token (no label smoothing) over encoded examples."""
        return evaluation.loss_on(self.model, self.tokenizer, examples, self.config.max_tokens, self.config.device)

    def translate(self, sentences: list[str], beam_size: int = 1) -> list[str]:
        """Translate whole sentences (none is truncated; one longer than the model allows raises
        ValueError naming it, as Translator does)."""
        return evaluation.translate(self.model, self.tokenizer, sentences, beam_size)

    def translation_scores(self, pairs: list[tuple[str, str]]) -> dict[str, float]:
        """BLEU, chrF and exact match of the model's greedy translations of `pairs`."""
        return evaluation.translation_scores(self.model, self.tokenizer, pairs)

    # ---- checkpoints and the log ----------------------------------------------------------
    def save(self, kind: str, optimizer: bool = True) -> Path:
        """Write best.safetensors, last.safetensors or an epoch checkpoint (`kind`.safetensors; rank 0
        only: the others return the path); a parameter holding nan or inf raises TrainingError
        instead. `optimizer=False` leaves out the optimizer state (epoch checkpoints: a third of the
        size; they are for averaging and translating, and resuming refuses them)."""
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
        return save_checkpoint(path, self.model.state_dict(), meta, self.optimizer.state_dict() if optimizer else None)

    def _write_log(self, record: dict[str, Any]) -> None:
        if self.comm.is_main:
            append_log(self.out_dir, record)

    # ---- stopping -----------------------------------------------------------------------
    def _stopping(self) -> bool:
        """Stop after this step? With several processes, as they agreed in the step; alone, also
        on a signal that came after that (nothing to agree with)."""
        if self.comm.size == 1 and self._signalled:
            self.stop_requested = True
        return self.stop_requested

    def _on_signal(self, name: str) -> None:
        """The first Ctrl-C or SIGTERM of fit(): stop after this step (a second interrupts at once)."""
        if self._signalled:
            raise KeyboardInterrupt
        self._signalled = True
        self.log(f"\n{name}: stopping after this step and saving a checkpoint "
                 "(press Ctrl-C again to quit at once)")

    def _finished(self) -> bool:
        c, p = self.config, self.progress
        return (p.bad_epochs >= c.patience or (c.max_steps is not None and p.step >= c.max_steps)
                or (c.time_limit is not None and p.train_seconds >= c.time_limit))

    def _diverged(self, what: str) -> TrainingError:
        p = self.progress
        return TrainingError(f"training stopped at step {p.step + 1} (epoch {p.epoch + 1}, batch {p.batch + 1}): "
                             f"{what}; the step was not taken and the checkpoints in {self.out_dir} are "
                             "left as they were (try a lower --lr, or --clip-norm)")

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


def _quiet(message: str) -> None:
    """The log of every process but rank 0."""


def _check_memory(config: TrainConfig, vocab_size: int) -> None:
    """Raise ConfigError if the run's model and a full batch cannot fit in the device's memory."""
    check_training_memory(model_config(config, vocab_size, 0), config.max_tokens, config.device)
