"""BPE-dropout in training (--bpe-dropout): each epoch re-encodes the training pairs, exact resume,
what may change on resume, validation without dropout, the default unchanged."""
from __future__ import annotations

import numpy as np
import pytest

from minitf.cli import main
from minitf.data import TokenBatcher, encode_pairs
from minitf.errors import ConfigError
from minitf.translation import Trainer
from minitf.translation.checkpoint import load_checkpoint
from minitf.translation.dataset import DropoutBatcher
from minitf.translation.resume import check_same_batches
from tiny_runs import assert_same_parameters, parameters, quiet, tiny_config, tiny_trainer, train_argv

STEPS = 20  # crosses the first epoch's end (14 batches of the tiny task with BPE-dropout 0.1)


def encodings(batcher: DropoutBatcher) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    return [(tuple(e.src.tolist()), tuple(e.tgt.tolist())) for e in batcher.examples]


def tokens(examples) -> int:
    return sum(len(src) + len(tgt) for src, tgt in examples)


def test_each_epoch_sees_another_lossless_encoding_of_the_same_pairs(tmp_path):
    trainer = tiny_trainer(tmp_path, bpe_dropout=0.1)
    batcher, tokenizer = trainer.batcher, trainer.tokenizer
    plain = encodings(batcher)
    assert plain == [(tuple(s.tolist()), tuple(t.tolist())) for s, t in
                     encode_pairs(trainer.splits["train"], tokenizer, trainer.config.max_len)[0]]
    by_epoch = []
    for epoch in range(3):
        plan = batcher.plan(epoch)
        by_epoch.append(encodings(batcher))
        assert sorted(np.concatenate(plan).tolist()) == list(range(len(plain)))  # every pair once
        assert [(tokenizer.decode(s), tokenizer.decode(t)) for s, t in by_epoch[-1]] == batcher.pairs
        assert tokens(by_epoch[-1]) > tokens(plain)  # finer segments
    assert len({tuple(e) for e in by_epoch} | {tuple(plain)}) == 4
    # an epoch's encoding depends on (seed, epoch) alone, not on the epochs drawn before
    again = tiny_trainer(tmp_path / "again", bpe_dropout=0.1).batcher
    again.plan(2)
    assert encodings(again) == by_epoch[2]
    assert [b.tolist() for b in again.plan(2)] == [b.tolist() for b in batcher.plan(2)]


def test_without_bpe_dropout_the_batcher_is_the_plain_one(tmp_path):
    batcher = tiny_trainer(tmp_path).batcher
    assert type(batcher) is TokenBatcher


def test_a_run_with_bpe_dropout_trains_from_the_command_line(tmp_path, capsys):
    assert main([str(a) for a in train_argv(tmp_path, "--bpe-dropout", "0.1", "--max-steps", "6")]) == 0
    assert "re-encoded each epoch with BPE-dropout 0.1" in capsys.readouterr().out
    model, meta, _ = load_checkpoint(str(tmp_path / "run" / "last.safetensors"))
    assert meta["train_config"]["bpe_dropout"] == 0.1 and meta["progress"]["step"] == 6
    assert all(np.isfinite(v).all() for v in model.values())


@pytest.mark.parametrize("value", ["1", "1.5", "-0.1", "nan"])
def test_a_bad_bpe_dropout_is_one_line_naming_the_setting(tmp_path, capsys, value):
    assert main([str(a) for a in train_argv(tmp_path, "--bpe-dropout", value)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("minitf: error:") and "bpe_dropout" in err[0]
    with pytest.raises(ConfigError, match="bpe_dropout"):
        tiny_config(tmp_path, bpe_dropout=float(value))


def test_validation_never_uses_dropout(tmp_path):
    plain = tiny_trainer(tmp_path / "plain").evaluate()
    assert tiny_trainer(tmp_path / "dropout", bpe_dropout=0.5).evaluate() == plain  # same seed, same weights


# ---- exact resume ---------------------------------------------------------------------------

def config(out_dir, **overrides):
    return tiny_config(out_dir, dropout=0.1, bpe_dropout=0.1, epochs=3, **overrides)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    trainer = Trainer(config(tmp_path_factory.mktemp("whole"), max_steps=STEPS), log=quiet)
    assert trainer.fit().step == STEPS
    return parameters(trainer)


@pytest.mark.parametrize("k", [5, 14, 17], ids=["mid-first-epoch", "epoch-end", "mid-second-epoch"])
def test_resume_matches_uninterrupted_training(tmp_path, uninterrupted, k):
    first = Trainer(config(tmp_path / "first", max_steps=k), log=quiet)
    assert first.fit().step == k
    resumed = Trainer.from_checkpoint(str(tmp_path / "first" / "last.safetensors"), log=quiet, max_steps=STEPS,
                                      out_dir=str(tmp_path / "second"))
    seen, step = [], resumed.train_step
    resumed.train_step = lambda batch: (seen.append(batch.indices.tolist()), step(batch))[1]
    assert resumed.fit().step == STEPS
    assert_same_parameters(parameters(resumed), uninterrupted)
    whole = Trainer(config(tmp_path / "plan", max_steps=STEPS), log=quiet).batcher
    plans = [b.tolist() for epoch in range(2) for b in whole.plan(epoch)]
    assert seen == plans[k:STEPS]


def test_bpe_dropout_changes_at_an_epoch_boundary_only(tmp_path):
    Trainer(tiny_config(tmp_path / "mid", max_steps=5), log=quiet).fit()
    with pytest.raises(ConfigError, match=r"middle of epoch 1 \(batch 5\).*bpe_dropout 0.0 -> 0.1"):
        Trainer.from_checkpoint(str(tmp_path / "mid" / "last.safetensors"), log=quiet, bpe_dropout=0.1)
    Trainer(tiny_config(tmp_path / "end", epochs=1), log=quiet).fit()
    resumed = Trainer.from_checkpoint(str(tmp_path / "end" / "last.safetensors"), log=quiet, bpe_dropout=0.1,
                                      epochs=2, max_steps=15)
    assert isinstance(resumed.batcher, DropoutBatcher) and resumed.fit().step == 15


def test_a_checkpoint_saved_before_bpe_dropout_existed_resumes_mid_epoch(tmp_path):
    saved = tiny_config(tmp_path).to_dict()
    del saved["bpe_dropout"]  # it had the default
    progress = {"epoch": 0, "batch": 3}
    check_same_batches("old.safetensors", saved, 1, tiny_config(tmp_path), 1, progress)
    with pytest.raises(ConfigError, match="bpe_dropout 0.0 -> 0.2"):
        check_same_batches("old.safetensors", saved, 1, tiny_config(tmp_path, bpe_dropout=0.2), 1, progress)
