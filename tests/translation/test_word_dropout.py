"""Word dropout in training (--word-dropout): the batch corruption itself, its seeding by (seed, step),
exact resume, validation untouched, the default unchanged, bad values refused."""
from __future__ import annotations

import numpy as np
import pytest

from minitf.cli import main
from minitf.data import drop_words, make_batch
from minitf.errors import ConfigError
from minitf.translation import Trainer
from minitf.translation.checkpoint import load_checkpoint
from tiny_runs import assert_same_parameters, parameters, quiet, tiny_config, tiny_trainer, train_argv

PAD, BOS, EOS = 0, 1, 2


def batch():
    pairs = [(list(range(3, 3 + n)), list(range(10, 10 + m))) for n, m in ((5, 7), (2, 3), (9, 1), (4, 12))]
    return make_batch(pairs, PAD, BOS, EOS)


def test_only_real_source_and_decoder_input_tokens_change_and_only_to_ordinary_ids():
    b = batch()
    out = drop_words(b, 0.5, np.random.default_rng(0), 3, 50)
    assert np.array_equal(out.tgt_out, b.tgt_out) and np.array_equal(out.src_mask, b.src_mask)
    assert np.array_equal(out.src[~b.src_mask], b.src[~b.src_mask])  # padding stays padding
    assert np.array_equal(out.tgt_in[~b.tgt_mask], b.tgt_in[~b.tgt_mask])
    assert (out.tgt_in[:, 0] == BOS).all()
    changed_src = out.src[b.src_mask] != b.src[b.src_mask]
    assert changed_src.any() and not changed_src.all()
    assert ((out.src[b.src_mask] >= 3) & (out.src[b.src_mask] < 50)).all()
    assert ((out.tgt_in[:, 1:][b.tgt_mask[:, 1:]] >= 3) & (out.tgt_in[:, 1:][b.tgt_mask[:, 1:]] < 50)).all()
    assert np.array_equal(batch().src, b.src)  # the input batch is not modified


def test_the_rate_of_replacement_is_p():
    rng = np.random.default_rng(1)
    long = make_batch([(list(range(3, 203)), list(range(3, 203)))] * 50, PAD, BOS, EOS)
    out = drop_words(long, 0.2, rng, 3, 10_000)  # a replacement equal to the original is rare (1 in ~10,000)
    rate = (out.src != long.src).mean()
    assert abs(rate - 0.2) < 0.01


def test_zero_is_the_identity_and_bad_arguments_are_refused():
    b = batch()
    assert drop_words(b, 0.0, np.random.default_rng(0), 3, 50) is b
    for p in (1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="word dropout"):
            drop_words(b, p, np.random.default_rng(0), 3, 50)
    with pytest.raises(ValueError, match="empty"):
        drop_words(b, 0.1, np.random.default_rng(0), 5, 5)


def test_training_sees_corrupted_batches_and_the_draws_depend_on_seed_and_step(tmp_path):
    trainer = tiny_trainer(tmp_path / "a", word_dropout=0.3)
    part = trainer.batcher.batch(trainer.batcher.plan(0)[0])
    trainer._seed_generators()
    first = trainer._drop_words(part)
    assert (first.src != part.src).any() and np.array_equal(first.tgt_out, part.tgt_out)
    trainer._seed_generators()
    assert np.array_equal(trainer._drop_words(part).src, first.src)  # same (seed, step): same draws
    trainer.progress.step += 1
    trainer._seed_generators()
    assert not np.array_equal(trainer._drop_words(part).src, first.src)
    plain = tiny_trainer(tmp_path / "b")
    plain._seed_generators()
    assert plain._drop_words(part) is part


def test_resume_matches_uninterrupted_training(tmp_path):
    whole = Trainer(tiny_config(tmp_path / "whole", max_steps=12, word_dropout=0.2), log=quiet)
    whole.fit()
    Trainer(tiny_config(tmp_path / "first", max_steps=5, word_dropout=0.2), log=quiet).fit()
    resumed = Trainer.from_checkpoint(str(tmp_path / "first" / "last.safetensors"), log=quiet, max_steps=12)
    resumed.fit()
    assert_same_parameters(parameters(resumed), parameters(whole))
    plain = Trainer(tiny_config(tmp_path / "plain", max_steps=12), log=quiet)
    plain.fit()
    assert any(not np.array_equal(a, b) for a, b in zip(parameters(plain).values(), parameters(whole).values()))


def test_validation_never_uses_word_dropout(tmp_path):
    plain = tiny_trainer(tmp_path / "plain").evaluate()
    assert tiny_trainer(tmp_path / "dropout", word_dropout=0.5).evaluate() == plain


def test_a_run_with_word_dropout_trains_from_the_command_line(tmp_path):
    assert main([str(a) for a in train_argv(tmp_path, "--word-dropout", "0.1", "--max-steps", "4")]) == 0
    model, meta, _ = load_checkpoint(str(tmp_path / "run" / "last.safetensors"))
    assert meta["train_config"]["word_dropout"] == 0.1 and meta["progress"]["step"] == 4
    assert all(np.isfinite(v).all() for v in model.values())


@pytest.mark.parametrize("value", ["1", "-0.1", "nan"])
def test_a_bad_word_dropout_is_one_line_naming_the_setting(tmp_path, capsys, value):
    assert main([str(a) for a in train_argv(tmp_path, "--word-dropout", value)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("minitf: error:") and "word_dropout" in err[0]
    with pytest.raises(ConfigError, match="word_dropout"):
        tiny_config(tmp_path, word_dropout=float(value))
