"""Trainer: learning, checkpoint files, exact resume (also mid-epoch and after Ctrl-C), limits."""
from __future__ import annotations

import difflib
import json
import math
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

import minitf.translation.trainer
from minitf import backend, rng
from minitf.errors import ConfigError, InputError, TrainingError
from minitf.translation import DEMO_CONFIG, Trainer, TrainConfig
from minitf.translation.evaluation import pairs_the_model_holds
from minitf.translation.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from tiny_runs import (assert_same_parameters, parameters, quiet, tiny_config,
                               tiny_trainer)

RESUME_STEPS = 20  # crosses the first epoch's end (13 batches of the tiny task)


def similarity(trainer: Trainer, pairs: list[tuple[str, str]]) -> float:
    """Mean character-level similarity (difflib ratio) of greedy translations to the references."""
    hypotheses = trainer.translate([s for s, _ in pairs])
    ratios = [difflib.SequenceMatcher(None, h, r).ratio() for h, (_, r) in zip(hypotheses, pairs)]
    return float(np.mean(ratios))


def read_log(out_dir) -> list[dict]:
    return [json.loads(line) for line in (out_dir / "log.jsonl").read_text().splitlines()]


def progress_in(path) -> dict:
    return load_checkpoint(path)[1]["progress"]


# ---- learning -------------------------------------------------------------------------------

@pytest.mark.slow
def test_training_lowers_loss_and_improves_greedy_translations(tmp_path):
    trainer = tiny_trainer(tmp_path, label_smoothing=0.0)
    probe = trainer.splits["train"][:20]
    before = similarity(trainer, probe)
    losses: list[float] = []
    epoch = 0
    while len(losses) < 180:
        for indices in trainer.batcher.plan(epoch)[: 180 - len(losses)]:
            losses.append(trainer.train_step(trainer.batcher.batch(indices)))
        epoch += 1
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    after = similarity(trainer, probe)
    print(f"loss {first:.3f} -> {last:.3f}, similarity {before:.2f} -> {after:.2f}")
    assert np.all(np.isfinite(losses))
    assert last < 0.3 * first, f"loss fell only from {first:.3f} to {last:.3f}"
    assert after > 0.5 and after > before + 0.3, f"greedy similarity {before:.2f} -> {after:.2f}"


# ---- fit: files, log, limits ----------------------------------------------------------------

@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A trainer after fit() for two full epochs."""
    trainer = tiny_trainer(tmp_path_factory.mktemp("fit") / "run")
    trainer.fit()
    return trainer


def test_fit_writes_best_last_and_log(fitted):
    out = fitted.out_dir
    assert {"best.safetensors", "last.safetensors", "log.jsonl"} <= {p.name for p in out.iterdir()}
    assert not list(out.glob("*.tmp"))
    records = read_log(out)
    evals = [r for r in records if r["event"] == "eval"]
    steps = [r for r in records if r["event"] == "step"]
    assert [r["epoch"] for r in evals] == [1, 2]
    assert all({"val_loss", "bleu", "exact_match"} <= r.keys() for r in evals)
    assert steps and all(r["step"] % 5 == 0 and np.isfinite(r["loss"]) for r in steps)
    total = fitted.batcher.num_batches(0) + fitted.batcher.num_batches(1)
    saved = progress_in(out / "last.safetensors")
    assert (saved["epoch"], saved["batch"], saved["step"]) == (2, 0, total)
    assert len(fitted.progress.history) == 2


def test_checkpoint_files_are_safetensors_with_the_parameters_by_name(fitted):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    for name in ("best.safetensors", "last.safetensors"):
        arrays = safetensors_numpy.load_file(str(fitted.out_dir / name))
        assert any(f.startswith("optimizer.") for f in arrays)
        model = {f[len("model."):]: a for f, a in arrays.items() if f.startswith("model.")}
        assert model.keys() == parameters(fitted).keys()
    assert_same_parameters(load_checkpoint(fitted.out_dir / "last.safetensors")[0], parameters(fitted))


def test_best_checkpoint_holds_the_best_scoring_epoch(fitted):
    history = fitted.progress.history
    best_score = max(r["bleu"] for r in history)
    assert fitted.progress.best_score == best_score
    assert progress_in(fitted.out_dir / "best.safetensors")["best_score"] == best_score


# ---- evaluation: the same pairs for loss and BLEU, nothing truncated ------------------------

def test_evaluation_scores_long_sentences_whole_and_leaves_out_only_what_the_model_cannot_hold(fitted):
    messages = []
    fitted.log = messages.append
    model_limit = fitted.model.config.max_len - 1
    words = 1
    while len(fitted.tokenizer.encode(" ".join(["seven"] * words))) <= fitted.config.max_len:
        words += 1
    over_train_limit = " ".join(["seven"] * words)  # just over max_len, within the model's limit
    assert fitted.config.max_len < len(fitted.tokenizer.encode(over_train_limit)) <= model_limit
    too_long = " ".join(["seven"] * 4 * model_limit)
    pairs = fitted.splits["val"][:3] + [(over_train_limit, "sieben"), (too_long, "sieben")]
    examples, kept = pairs_the_model_holds(fitted.model, fitted.tokenizer, pairs, fitted.log)
    assert kept == pairs[:4] and len(examples) == 4
    assert messages == [f"evaluation: 1 of 5 pairs left out (longer than the model's {model_limit} tokens, "
                        "or an empty source)"]
    scores = fitted.evaluate(pairs)
    assert set(scores) == {"val_loss", "bleu", "chrf", "exact_match"} and math.isfinite(scores["val_loss"])
    with pytest.raises(ValueError, match="sentence 1 has .* tokens"):
        fitted.translate([too_long])
    assert fitted.model.training  # translate leaves the trainer ready to train


def test_max_steps_stops_mid_epoch_and_keeps_the_position(tmp_path):
    trainer = tiny_trainer(tmp_path, max_steps=5)
    progress = trainer.fit()
    assert (progress.epoch, progress.batch, progress.step) == (0, 5, 5)
    assert (tmp_path / "best.safetensors").is_file()  # evaluated although the epoch is not complete
    assert progress_in(tmp_path / "last.safetensors")["batch"] == 5


def test_time_limit_stops_after_the_step_that_exceeds_it(tmp_path):
    progress = tiny_trainer(tmp_path, time_limit=1e-9).fit()
    assert progress.step == 1 and progress.train_seconds > 0


def test_early_stopping_after_patience_epochs_without_improvement(tmp_path):
    # lr=1e-12: the model (practically) never changes, so no epoch after the first scores better.
    trainer = tiny_trainer(tmp_path, synthetic_sizes=(60, 6, 6), lr=1e-12, epochs=5, patience=1)
    progress = trainer.fit()
    assert progress.epoch == 2 and progress.bad_epochs == 1 and len(progress.history) == 2


# ---- exact resume ---------------------------------------------------------------------------

def resume_config(out_dir, **overrides) -> TrainConfig:
    """Dropout on, so that resuming must also restore the random state to match."""
    return tiny_config(out_dir, dropout=0.1, epochs=3, **overrides)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """Parameters after RESUME_STEPS steps of one uninterrupted fit()."""
    trainer = Trainer(resume_config(tmp_path_factory.mktemp("whole"), max_steps=RESUME_STEPS), log=quiet)
    assert trainer.fit().step == RESUME_STEPS
    return parameters(trainer)


def resume_to_the_end(path, out_dir) -> Trainer:
    trainer = Trainer.from_checkpoint(str(path), log=quiet, max_steps=RESUME_STEPS, out_dir=str(out_dir))
    assert trainer.fit().step == RESUME_STEPS
    return trainer


@pytest.mark.parametrize("k", [5, 13, 16], ids=["mid-first-epoch", "epoch-end", "mid-second-epoch"])
def test_resume_after_max_steps_matches_uninterrupted_training(tmp_path, uninterrupted, k):
    first = Trainer(resume_config(tmp_path / "first", max_steps=k), log=quiet)
    assert first.fit().step == k
    resumed = resume_to_the_end(tmp_path / "first" / "last.safetensors", tmp_path / "second")
    assert_same_parameters(parameters(resumed), uninterrupted)


def test_resume_on_a_gpu_matches_uninterrupted_training(fake_gpu, tmp_path):  # noqa: F811
    """On CUDA (here test_kernels' NumPy stand-in for CuPy) dropout draws from CuPy's generator,
    whose state a checkpoint cannot hold: the trainer reseeds it from (seed, step) every step."""
    def run(out_dir, steps):
        trainer = Trainer(resume_config(out_dir, device="cuda", max_steps=steps), log=quiet)
        trainer.fit()
        return trainer

    whole = run(tmp_path / "whole", 8)
    run(tmp_path / "first", 5)
    resumed = Trainer.from_checkpoint(str(tmp_path / "first" / "last.safetensors"), log=quiet, max_steps=8,
                                      out_dir=str(tmp_path / "second"))
    assert resumed.fit().step == 8
    assert backend.is_cupy_array(next(iter(resumed.model.parameters())).data)
    assert_same_parameters(parameters(resumed), parameters(whole))


def test_resume_from_a_version_1_npz_checkpoint_matches_uninterrupted_training(tmp_path, uninterrupted):
    from legacy_checkpoints import save_v1
    first = Trainer(resume_config(tmp_path / "first", max_steps=5), log=quiet)
    first.fit()
    _, meta, _ = load_checkpoint(tmp_path / "first" / "last.safetensors")
    meta = {k: v for k, v in meta.items() if k not in ("format", "version")}
    old = save_v1(tmp_path / "first" / "last.safetensors", first.model.state_dict(), meta, first.optimizer.state_dict())
    resumed = resume_to_the_end(old, tmp_path / "second")
    assert_same_parameters(parameters(resumed), uninterrupted)


def test_resume_mid_epoch_runs_the_next_batch_of_that_epoch(tmp_path):
    Trainer(resume_config(tmp_path, max_steps=5), log=quiet).fit()
    resumed = Trainer.from_checkpoint(str(tmp_path / "last.safetensors"), log=quiet, max_steps=7)
    assert (resumed.progress.epoch, resumed.progress.batch) == (0, 5)
    seen = []
    original = resumed.train_step
    resumed.train_step = lambda batch: (seen.append(batch.indices.tolist()), original(batch))[1]
    resumed.fit()
    assert seen == [p.tolist() for p in resumed.batcher.plan(0)[5:7]]


def test_resumed_trainer_restores_optimizer_schedule_and_progress(tmp_path):
    trainer = Trainer(resume_config(tmp_path, max_steps=4), log=quiet)
    trainer.fit()
    resumed = Trainer.from_checkpoint(str(tmp_path / "last.safetensors"), log=quiet)
    assert resumed.progress == trainer.progress
    assert resumed.schedule.state_dict() == trainer.schedule.state_dict()
    assert resumed.optimizer.lr == trainer.optimizer.lr
    saved, expected = resumed.optimizer.state_dict(), trainer.optimizer.state_dict()
    assert saved["param_groups"] == expected["param_groups"] and saved["state"].keys() == expected["state"].keys()
    for i, entry in expected["state"].items():
        assert saved["state"][i]["step"] == entry["step"] == 4
        assert np.array_equal(saved["state"][i]["exp_avg"], entry["exp_avg"])
    assert resumed.tokenizer.to_dict() == trainer.tokenizer.to_dict()


def test_from_checkpoint_overrides_settings_but_not_the_model(tmp_path):
    trainer = tiny_trainer(tmp_path)
    path = trainer.save("last")
    assert Trainer.from_checkpoint(str(path), log=quiet, epochs=7).config.epochs == 7
    with pytest.raises(ValueError, match="unknown setting"):
        Trainer.from_checkpoint(str(path), log=quiet, epoch=7)
    with pytest.raises(ConfigError, match=r"settings cannot change: d_ff 64 -> 128"):
        Trainer.from_checkpoint(str(path), log=quiet, d_ff=128)
    with pytest.raises(ConfigError, match=r"with the given settings: setting 'epochs' must be an integer >= 0"):
        Trainer.from_checkpoint(str(path), log=quiet, epochs=-1)


def test_from_checkpoint_refuses_a_checkpoint_without_training_state(tmp_path):
    trainer = tiny_trainer(tmp_path)
    path = save_checkpoint(tmp_path / "weights.safetensors", trainer.model.state_dict(),
                           {"model_config": trainer.model.config.to_dict()})
    with pytest.raises(CheckpointError, match="no training state") as err:
        Trainer.from_checkpoint(str(path), log=quiet)
    assert str(path) in str(err.value)


# ---- Ctrl-C ---------------------------------------------------------------------------------

def interrupt_during_step(trainer: Trainer, step: int, times: int = 1) -> None:
    """Make the trainer's `step`-th train_step send itself SIGINT `times` times, as Ctrl-C does."""
    original = trainer.train_step

    def train_step(batch):
        loss = original(batch)
        if trainer.progress.step + 1 == step:  # progress counts the step after it returns
            for _ in range(times):
                signal.raise_signal(signal.SIGINT)
        return loss

    trainer.train_step = train_step


needs_posix_signals = pytest.mark.skipif(sys.platform == "win32", reason="SIGINT via os.kill")


@needs_posix_signals
def test_ctrl_c_saves_last_and_resume_matches_uninterrupted(tmp_path, uninterrupted):
    messages: list[str] = []
    trainer = Trainer(resume_config(tmp_path / "first", max_steps=RESUME_STEPS), log=messages.append)
    handler, sigterm = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    interrupt_during_step(trainer, 7)
    progress = trainer.fit()
    assert trainer.stop_requested and progress.step == 7
    assert signal.getsignal(signal.SIGINT) is handler and signal.getsignal(signal.SIGTERM) is sigterm
    assert any("interrupted" in m and "--resume" in m for m in messages)
    saved = progress_in(tmp_path / "first" / "last.safetensors")
    assert (saved["epoch"], saved["batch"], saved["step"]) == (0, 7, 7)
    assert not (tmp_path / "first" / "best.safetensors").exists()  # no evaluation after an interrupt
    resumed = resume_to_the_end(tmp_path / "first" / "last.safetensors", tmp_path / "second")
    assert_same_parameters(parameters(resumed), uninterrupted)


@needs_posix_signals
def test_second_ctrl_c_interrupts_at_once(tmp_path):
    trainer = tiny_trainer(tmp_path)
    handler = signal.getsignal(signal.SIGINT)
    interrupt_during_step(trainer, 2, times=2)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    assert signal.getsignal(signal.SIGINT) is handler


def run_record(out_dir) -> list[dict]:
    """The log without its timings (which differ between any two runs)."""
    return [{k: v for k, v in r.items() if k not in ("train_seconds", "tokens_per_s")} for r in read_log(out_dir)]


@pytest.fixture(scope="module")
def uninterrupted_run(tmp_path_factory):
    """(parameters, log) after RESUME_STEPS steps of one uninterrupted fit(), logging every step."""
    out_dir = tmp_path_factory.mktemp("whole-logged")
    trainer = Trainer(resume_config(out_dir, max_steps=RESUME_STEPS, log_every=1), log=quiet)
    assert trainer.fit().step == RESUME_STEPS
    return parameters(trainer), run_record(out_dir)


def signal_during_evaluation(trainer: Trainer, evaluation: int) -> None:
    """Make the trainer's `evaluation`-th evaluation (1-based) send itself SIGINT as it starts."""
    original, calls = trainer.evaluate, []

    def evaluate(*args):
        calls.append(1)
        if len(calls) == evaluation:
            os.kill(os.getpid(), signal.SIGINT)
        return original(*args)

    trainer.evaluate = evaluate


def signal_from_a_thread_after_the_vote(trainer: Trainer, step: int) -> None:
    """Make another thread send SIGINT as the `step`-th step updates the weights, after the
    processes' vote on stopping inside that step (so the trainer sees it only after the step)."""
    original = trainer.optimizer.step

    def step_and_signal(*args):
        if trainer.progress.step + 1 == step:
            sender = threading.Thread(target=os.kill, args=(os.getpid(), signal.SIGINT))
            sender.start()
            sender.join()
        return original(*args)

    trainer.optimizer.step = step_and_signal


# Where a signal lands: in step 1, mid-epoch (also from another thread after the step's vote), in
# the last step of the first epoch (13 batches, so before its evaluation), during that evaluation,
# and in the last step (before the final evaluation).
INTERRUPTIONS = {"step 1": ("step", 1), "mid-epoch": ("step", 6), "after the vote": ("thread", 9),
                 "epoch end": ("step", 13), "evaluation": ("evaluation", 1), "last step": ("step", RESUME_STEPS)}


@needs_posix_signals
@pytest.mark.parametrize("where", INTERRUPTIONS)
def test_a_signal_anywhere_then_resume_matches_uninterrupted_weights_and_log(tmp_path, uninterrupted_run, where):
    kind, at = INTERRUPTIONS[where]
    trainer = Trainer(resume_config(tmp_path, max_steps=RESUME_STEPS, log_every=1), log=quiet)
    {"step": interrupt_during_step, "thread": signal_from_a_thread_after_the_vote,
     "evaluation": signal_during_evaluation}[kind](trainer, at)
    trainer.fit()
    assert trainer.stop_requested and progress_in(tmp_path / "last.safetensors")["step"] == (
        13 if kind == "evaluation" else at)  # the evaluation follows step 13
    resumed = Trainer.from_checkpoint(str(tmp_path / "last.safetensors"), log=quiet)
    assert resumed.fit().step == RESUME_STEPS
    weights, log = uninterrupted_run
    assert_same_parameters(parameters(resumed), weights)
    assert run_record(tmp_path) == log  # the same losses and evaluations, each once


def test_dropout_depends_only_on_the_seed_and_the_step(tmp_path, uninterrupted):
    """Random numbers drawn between steps (by a callback, an evaluation that samples, another
    model built in the resuming process) change nothing: no generator state carries over."""
    trainer = Trainer(resume_config(tmp_path / "a", max_steps=5), log=quiet)
    trainer.fit()
    rng.random_uniform(np, (7,), np.float32)
    trainer.config.max_steps = RESUME_STEPS
    trainer.fit()
    assert_same_parameters(parameters(trainer), uninterrupted)


# A training process that announces step 7 and then waits (at most a minute) for a signal.
SIGNALLED_RUN = textwrap.dedent("""
    import sys, time
    from minitf.translation import Trainer
    from test_trainer import RESUME_STEPS, resume_config
    trainer = Trainer(resume_config(sys.argv[1], max_steps=RESUME_STEPS), log=print)
    original = trainer.train_step
    def train_step(batch):
        loss = original(batch)
        if trainer.progress.step + 1 == 7:
            print("step 7", flush=True)
            deadline = time.monotonic() + 60
            while not (trainer.stop_requested or trainer._signalled) and time.monotonic() < deadline:
                time.sleep(0.01)
        return loss
    trainer.train_step = train_step
    print("stopped at step", trainer.fit().step, flush=True)
""")


@pytest.mark.slow
@needs_posix_signals
def test_sigterm_to_a_training_process_saves_a_resumable_checkpoint(tmp_path, uninterrupted):
    here = Path(__file__).resolve().parent  # test_trainer itself, tests/ (tiny_runs) and the checkout
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here.parents[1]), str(here.parent), str(here)])}
    stale = tmp_path / "first" / "last.safetensors.tmp"  # as a SIGKILL during a save leaves it
    stale.parent.mkdir()
    stale.write_bytes(b"partial")
    child = subprocess.Popen([sys.executable, "-c", SIGNALLED_RUN, str(tmp_path / "first")], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in child.stdout:
            if line.startswith("step 7"):
                child.send_signal(signal.SIGTERM)
                break
        out, err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 0, err
    assert "SIGTERM: stopping after this step" in out and "stopped at step 7" in out
    assert (tmp_path / "first" / "last.safetensors").is_file() and not stale.exists()
    assert progress_in(tmp_path / "first" / "last.safetensors")["step"] == 7
    resumed = resume_to_the_end(tmp_path / "first" / "last.safetensors", tmp_path / "second")
    assert_same_parameters(parameters(resumed), uninterrupted)


# ---- configuration --------------------------------------------------------------------------

def test_config_round_trips_through_json(tmp_path):
    config = tiny_config(tmp_path, src_train=None, max_steps=9)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_config_rejects_unknown_settings_naming_them_and_the_source():
    with pytest.raises(ValueError, match=r"my\.json: unknown setting 'd_modle'; known: src_train, "):
        TrainConfig.from_dict({"d_modle": 3}, source="my.json")


@pytest.mark.parametrize("settings, message", [
    ({"src_train": "a.txt"}, "needs all four files"),
    ({"device": "tpu"}, "unknown device 'tpu'"),
    ({"d_model": 30, "n_heads": 4}, "not divisible"),
])
def test_trainer_rejects_invalid_configurations(tmp_path, settings, message):
    with pytest.raises((ValueError, RuntimeError), match=message):
        tiny_trainer(tmp_path, **settings)


def test_demo_config_is_valid_and_uses_the_synthetic_task():
    DEMO_CONFIG.validate()
    assert DEMO_CONFIG.synthetic and DEMO_CONFIG.d_model % DEMO_CONFIG.n_heads == 0


def test_demo_ends_on_a_step_count_not_on_a_clock():
    assert DEMO_CONFIG.time_limit is None and DEMO_CONFIG.max_steps
    assert DEMO_CONFIG.patience >= DEMO_CONFIG.epochs  # early stopping cannot end it sooner


@pytest.mark.parametrize("settings, message", [
    ({"n_heads": 0}, "'n_heads' must be an integer in 1 .. 65536, got 0"),
    ({"n_encoder_layers": -1}, "'n_encoder_layers' must be an integer in 1 .. 1024, got -1"),
    ({"n_decoder_layers": 0}, "'n_decoder_layers' must be an integer in 1 .. 1024, got 0"),
    ({"d_ff": 0}, "'d_ff' must be an integer in 1 .. 262144, got 0"),
    ({"max_len": 0}, "'max_len' must be an integer in 1 .. 32760, got 0"),
    ({"epochs": -1}, "'epochs' must be an integer >= 0, got -1"),
    ({"max_steps": -3}, "'max_steps' must be an integer >= 0"),
    ({"time_limit": float("nan")}, "'time_limit' must be a finite number >= 0"),
    ({"bleu_sentences": -1}, "'bleu_sentences' must be an integer >= 0, got -1"),
    ({"log_every": 0}, "'log_every' must be an integer >= 1, got 0"),
    ({"lr": float("nan")}, "'lr' must be a finite number > 0"),
    ({"lr": 0.0}, "'lr' must be a finite number > 0"),
    ({"clip_norm": -1.0}, "'clip_norm' must be a finite number >= 0, got -1.0"),
    ({"clip_norm": float("inf")}, "'clip_norm' must be a finite number >= 0"),
    ({"dropout": 1.0}, "'dropout' must be a finite number in [0, 1), got 1.0"),
    ({"label_smoothing": -0.5}, "'label_smoothing' must be a finite number in [0, 1)"),
    ({"activation": "swish"}, "'activation' must be one of ['relu', 'gelu'], got 'swish'"),
    ({"select_metric": "loss"}, "'select_metric' must be one of ['bleu', 'chrf', 'exact_match']"),
    ({"vocab_size": 200}, "'vocab_size' must be >= 259"),
    ({"synthetic_sizes": (10, 0, 5)}, "'synthetic_sizes[1]' must be an integer in 1 .. 1000000, got 0"),
    ({"n_heads": True}, "'n_heads' must be an integer, got bool True"),
    ({"lr": "0.1"}, "'lr' must be a number, got str '0.1'"),
    ({"max_steps": 2.0}, "'max_steps' must be an integer or null, got float 2.0"),
])
def test_config_checks_every_setting_when_made(tmp_path, settings, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        tiny_config(tmp_path, **settings)
    with pytest.raises(ConfigError, match=re.escape(message)):
        TrainConfig.from_dict({**tiny_config(tmp_path).to_dict(), **settings})


def test_clip_norm_zero_trains_without_clipping(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(minitf.translation.trainer, "clip_grad_norm", lambda params, max_norm: seen.append(max_norm) or 1.0)
    tiny_trainer(tmp_path, clip_norm=0.0, max_steps=1).fit()
    assert seen == [0.0]


# ---- nan and inf: stop, never save a broken model ----------------------------------------------

def checkpoint_bytes(out_dir) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out_dir.iterdir() if p.suffix == ".safetensors"}


@pytest.fixture
def good_run(tmp_path):
    """A trainer that has saved best.safetensors and last.safetensors after 5 steps."""
    trainer = tiny_trainer(tmp_path, max_steps=5)
    trainer.fit()
    trainer.config.max_steps = 10
    return trainer


def test_a_nan_loss_stops_training_and_keeps_the_checkpoints(good_run):
    saved = checkpoint_bytes(good_run.out_dir)
    name, weight = next(iter(good_run.model.named_parameters()))
    weight.data[...] = np.nan  # what a diverged update leaves behind
    with pytest.raises(TrainingError, match=r"training stopped at step 6 .*: the loss is nan"):
        good_run.fit()
    assert good_run.progress.step == 5
    assert checkpoint_bytes(good_run.out_dir) == saved


@pytest.mark.parametrize("norm", [math.inf, math.nan])
def test_a_non_finite_gradient_norm_stops_before_the_step(good_run, monkeypatch, norm):
    saved, before = checkpoint_bytes(good_run.out_dir), parameters(good_run)
    monkeypatch.setattr(minitf.translation.trainer, "clip_grad_norm", lambda params, max_norm: norm)
    with pytest.raises(TrainingError, match=f"the gradient norm is {norm}"):
        good_run.fit()
    assert_same_parameters(parameters(good_run), before)  # no update was applied
    assert checkpoint_bytes(good_run.out_dir) == saved


def test_save_refuses_a_model_that_is_not_finite(good_run):
    saved = checkpoint_bytes(good_run.out_dir)
    next(iter(good_run.model.parameters())).data[0] = np.inf
    with pytest.raises(TrainingError, match="hold nan or inf"):
        good_run.save("best")
    assert checkpoint_bytes(good_run.out_dir) == saved


# ---- a folder that holds a run ------------------------------------------------------------------

def test_a_new_trainer_refuses_a_folder_holding_a_run(tmp_path, monkeypatch):
    tiny_trainer(tmp_path, max_steps=2).fit()
    saved = checkpoint_bytes(tmp_path)
    with pytest.raises(ConfigError, match="already holds a run .*--resume .*--overwrite"):
        tiny_trainer(tmp_path, max_steps=3)
    trainer = Trainer(tiny_config(tmp_path, max_steps=3), log=quiet, overwrite=True)
    assert checkpoint_bytes(tmp_path) == saved  # deleted only when training starts
    trainer.fit()
    assert [r["step"] for r in read_log(tmp_path) if r["event"] == "eval"] == [3]


def test_resume_writes_into_its_own_folder_but_not_over_another_run(tmp_path):
    Trainer(resume_config(tmp_path / "a", max_steps=2), log=quiet).fit()
    Trainer(resume_config(tmp_path / "b", max_steps=2), log=quiet).fit()
    Trainer.from_checkpoint(str(tmp_path / "a" / "last.safetensors"), log=quiet, max_steps=3).fit()
    assert progress_in(tmp_path / "a" / "last.safetensors")["step"] == 3
    with pytest.raises(ConfigError, match="already holds a run"):
        Trainer.from_checkpoint(str(tmp_path / "a" / "last.safetensors"), log=quiet, out_dir=str(tmp_path / "b"))


def test_a_loss_over_no_tokens_is_an_error_not_zero(tmp_path):
    trainer = tiny_trainer(tmp_path)
    with pytest.raises(InputError, match="no loss to measure"):
        trainer.loss_on([])
