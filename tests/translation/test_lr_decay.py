"""The trainer's --lr-decay: inverse square root, or a cosine/linear decay that reaches 0 at the end of the budget."""
from __future__ import annotations

import math

import pytest

from minitf.errors import ConfigError
from minitf.optim import BudgetSchedule, InverseSqrtSchedule
from minitf.translation import Trainer
from tiny_runs import assert_same_parameters, parameters, quiet, tiny_config, tiny_trainer

STEPS = 20  # the budget: crosses the first epoch's end (13 batches of the tiny task)


def rates_of_each_step(trainer: Trainer) -> list[float]:
    """Record the rate each optimizer step uses."""
    used: list[float] = []
    step = trainer.optimizer.step

    def recording_step():
        used.append(trainer.optimizer.lr)
        step()

    trainer.optimizer.step = recording_step
    return used


@pytest.mark.parametrize("shape", ["cosine", "linear"])
def test_the_rate_warms_up_then_reaches_zero_when_max_steps_ends(tmp_path, shape):
    trainer = tiny_trainer(tmp_path, lr=0.01, warmup=4, lr_decay=shape, max_steps=STEPS, epochs=3)
    assert isinstance(trainer.schedule, BudgetSchedule)
    used = rates_of_each_step(trainer)
    assert trainer.fit().step == STEPS
    decay = (lambda u: 1 - u) if shape == "linear" else (lambda u: 0.5 * (1 + math.cos(math.pi * u)))
    # step s (1-based) has spent s - 1 of the STEPS steps when its rate is set
    expected = [0.01 * min(s / 4, 1) * decay((s - 1) / STEPS) for s in range(1, STEPS + 1)]
    assert used == pytest.approx(expected, rel=1e-12)
    assert used[-1] <= 0.01 / STEPS + 1e-15 and trainer.budget_used() == 1.0  # the last step: one step of rate left


def test_the_budget_is_the_epochs_when_no_limit_ends_training_sooner(tmp_path):
    trainer = tiny_trainer(tmp_path, lr_decay="linear", epochs=2)
    batches = trainer.batcher.num_batches(0)
    trainer.progress.step = batches
    assert trainer.budget_used() == pytest.approx(0.5)


def test_the_budget_is_the_time_limit_when_it_is_spent_faster(tmp_path):
    trainer = tiny_trainer(tmp_path, lr_decay="cosine", epochs=100, time_limit=60.0)
    trainer.progress.step, trainer.progress.train_seconds = 3, 45.0
    assert trainer.budget_used() == pytest.approx(0.75)  # 3 of 1,300 steps is less
    trainer.progress.train_seconds = 90.0  # past the limit (the last step ran over it)
    assert trainer.budget_used() == 1.0


def test_inverse_sqrt_stays_the_default(tmp_path):
    trainer = tiny_trainer(tmp_path)
    assert trainer.config.lr_decay == "inverse_sqrt" and isinstance(trainer.schedule, InverseSqrtSchedule)


def test_an_unknown_decay_is_refused_naming_the_choices(tmp_path):
    with pytest.raises(ConfigError, match=r"lr_decay.*'inverse_sqrt', 'cosine', 'linear'.*'step'"):
        tiny_config(tmp_path, lr_decay="step")


def test_an_interrupted_run_resumes_on_the_same_schedule(tmp_path):
    """The rate depends on the budget spent, which progress holds: a run stopped at step 7 and resumed
    ends with the weights of an uninterrupted one."""
    settings = dict(dropout=0.1, lr=0.01, warmup=4, lr_decay="cosine", max_steps=STEPS, epochs=3)
    whole = Trainer(tiny_config(tmp_path / "whole", **settings), log=quiet)
    assert whole.fit().step == STEPS

    first = Trainer(tiny_config(tmp_path / "first", **settings), log=quiet)
    train_step = first.train_step

    def stop_after_7(batch):
        loss = train_step(batch)
        first.stop_requested = first.progress.step + 1 == 7  # progress counts the step after it returns
        return loss

    first.train_step = stop_after_7
    assert first.fit().step == 7
    resumed = Trainer.from_checkpoint(str(tmp_path / "first" / "last.safetensors"), log=quiet,
                                      out_dir=str(tmp_path / "second"))
    assert resumed.config.lr_decay == "cosine"
    assert resumed.fit().step == STEPS
    assert_same_parameters(parameters(resumed), parameters(whole))
