"""Checkpoint averaging: the epoch checkpoints a run keeps (--keep-checkpoints), `minitf average`
and average_checkpoints / select_checkpoints (minitf/translation/average.py)."""
from __future__ import annotations

import numpy as np
import pytest

import minitf
from minitf.cli import main
from minitf.errors import ConfigError, InputError
from minitf.nn import Seq2SeqTransformer
from minitf.translation import Trainer, Translator
from minitf.translation.average import average_checkpoints, select_checkpoints
from minitf.translation.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from minitf.translation.run import check_out_dir, epoch_checkpoints
from tiny_runs import TINY_MODEL_CONFIG, TINY_TOKENIZER, quiet, tiny_config, tiny_trainer

BLEU_BY_EPOCH = [10.0, 40.0, 20.0, 30.0]  # the scores the tiny run's evaluations report


def scripted(trainer: Trainer, scores: list[float]) -> Trainer:
    """`trainer` with evaluations that report `scores` (BLEU) in turn, translating nothing."""
    def evaluate(pairs=None):
        return {"val_loss": 1.0, "bleu": scores[len(trainer.progress.history)], "chrf": 50.0, "exact_match": 0.5}

    trainer.evaluate = evaluate
    return trainer


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny run of 4 epochs that keeps the last 3 epoch checkpoints (epochs 2-4)."""
    folder = tmp_path_factory.mktemp("run")
    scripted(tiny_trainer(folder, epochs=4, keep_checkpoints=3), BLEU_BY_EPOCH).fit()
    return folder


def weights(path) -> dict[str, np.ndarray]:
    return load_checkpoint(path, with_optimizer=False)[0]


def names(paths) -> list[str]:
    return [p.name for p in paths]


# ---- the epoch checkpoints of a run -----------------------------------------------------------

def test_a_run_keeps_the_weights_of_its_last_n_evaluations(run):
    assert names(epoch_checkpoints(run)) == ["epoch2.safetensors", "epoch3.safetensors", "epoch4.safetensors"]
    last = load_checkpoint(run / "last.safetensors")
    for name, array in weights(run / "epoch4.safetensors").items():
        np.testing.assert_array_equal(array, last[0][name])
    for name, array in weights(run / "epoch2.safetensors").items():  # the best score (40) was epoch 2's
        np.testing.assert_array_equal(array, weights(run / "best.safetensors")[name])
    state, meta, optimizer = load_checkpoint(run / "epoch3.safetensors")
    assert optimizer is None and meta["progress"]["step"] == 39 and meta["progress"]["history"][-1]["bleu"] == 20.0


def test_without_keep_checkpoints_a_run_writes_none(tmp_path):
    tiny_trainer(tmp_path, max_steps=3).fit()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "best.safetensors", "last.safetensors",
                                                          "log.jsonl"]


def test_a_limit_inside_an_epoch_names_the_step_and_a_resume_keeps_counting(tmp_path):
    tiny_trainer(tmp_path, epochs=3, max_steps=20, keep_checkpoints=5).fit()  # 13 batches an epoch
    assert names(epoch_checkpoints(tmp_path)) == ["epoch1.safetensors", "epoch2-step20.safetensors"]
    # keep_checkpoints may change on resume: the oldest beyond the new number go
    trainer = Trainer.from_checkpoint(str(tmp_path / "last.safetensors"), log=quiet, max_steps=None,
                                      keep_checkpoints=2)
    trainer.fit()
    assert names(epoch_checkpoints(tmp_path)) == ["epoch2.safetensors", "epoch3.safetensors"]
    assert load_checkpoint(tmp_path / "epoch3.safetensors")[1]["progress"]["step"] == 39


def test_epoch_checkpoints_are_files_of_the_run_that_overwrite_deletes(tmp_path):
    for name in ["log.jsonl", "epoch1.safetensors", "epoch2-step7.safetensors.x1y2z3.tmp", "epochs.txt",
                 "epoch1.safetensors.bak"]:
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(ConfigError, match=r"holds an unfinished run with no checkpoint to resume \(log.jsonl, "
                                          r"epoch1.safetensors\)"):  # an epoch checkpoint is not resumable
        check_out_dir(tmp_path, overwrite=False)
    Trainer(tiny_config(tmp_path, max_steps=1), log=quiet, overwrite=True).fit()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".lock") == [
        "best.safetensors", "epoch1.safetensors.bak", "epochs.txt", "last.safetensors", "log.jsonl"]


def test_an_epoch_checkpoint_translates_but_cannot_be_resumed(run):
    assert [type(t) for t in Translator.from_checkpoint(str(run / "epoch3.safetensors")).translate(["seven"])] == [str]
    with pytest.raises(CheckpointError, match="holds no training state .*optimizer missing"):
        Trainer.from_checkpoint(str(run / "epoch3.safetensors"), log=quiet)


# ---- averaging --------------------------------------------------------------------------------

def test_the_average_of_two_checkpoints_is_the_mean_of_their_weights(run, tmp_path):
    a, b = weights(run / "epoch3.safetensors"), weights(run / "epoch4.safetensors")
    output = average_checkpoints([run / "epoch3.safetensors", run / "epoch4.safetensors"], tmp_path / "avg.safetensors")
    averaged, meta, optimizer = load_checkpoint(output)
    assert averaged.keys() == a.keys() and optimizer is None
    for name in a:
        assert averaged[name].dtype == np.float32
        np.testing.assert_array_equal(averaged[name], np.mean([a[name], b[name]], axis=0, dtype=np.float64)
                                      .astype(np.float32))
    assert any(not np.array_equal(averaged[name], a[name]) for name in a)  # the two differ: a mean of two
    newest = load_checkpoint(run / "epoch4.safetensors")[1]
    assert meta["progress"] == newest["progress"] and meta["model_config"] == newest["model_config"]
    assert "schedule" not in meta and "rng" not in meta


def test_the_average_is_accumulated_in_float64_and_written_in_the_checkpoints_dtype(run, tmp_path):
    state, meta, _ = load_checkpoint(run / "epoch4.safetensors", with_optimizer=False)
    paths = []
    for k in (1, 3):
        half = {name: (array * k).astype(np.float16) for name, array in state.items()}
        paths.append(save_checkpoint(tmp_path / f"half{k}.safetensors", half, meta))
    averaged = weights(average_checkpoints(paths, tmp_path / "avg.safetensors"))
    for name, array in state.items():
        h1, h3 = array.astype(np.float16), (array * 3).astype(np.float16)
        expected = ((h1.astype(np.float64) + h3.astype(np.float64)) / 2).astype(np.float16)
        assert averaged[name].dtype == np.float16
        np.testing.assert_array_equal(averaged[name], expected)


def test_the_averaged_checkpoint_translates_and_evaluates_but_cannot_be_resumed(run, tmp_path, capsys):
    output = tmp_path / "avg.safetensors"
    assert main(["average", str(run), "--last", "3", "--output", str(output)]) == 0
    assert f"averaged 3 checkpoint(s) ({run / 'epoch2.safetensors'}" in capsys.readouterr().out
    assert len(Translator.from_checkpoint(str(output)).translate(["seven", "twelve"], beam_size=2)) == 2
    (tmp_path / "src.txt").write_text("seven\ntwelve\n", encoding="utf-8")
    (tmp_path / "ref.txt").write_text("sieben\nzwölf\n", encoding="utf-8")
    assert main(["evaluate", "--checkpoint", str(output), "--src", str(tmp_path / "src.txt"),
                 "--ref", str(tmp_path / "ref.txt")]) == 0
    assert '"sentences": 2' in capsys.readouterr().out
    with pytest.raises(CheckpointError, match=r"holds no training state \(schedule, rng, optimizer missing\): it can "
                                              "be used to translate but not to resume"):
        Trainer.from_checkpoint(str(output), log=quiet)
    assert minitf.load(output)["averaged"] == {"checkpoints": ["epoch2.safetensors", "epoch3.safetensors",
                                                               "epoch4.safetensors"], "steps": [26, 39, 52]}


# ---- choosing the checkpoints -----------------------------------------------------------------

def test_last_and_best_pick_their_checkpoints_from_a_run_folder(run):
    assert names(select_checkpoints([run], last=2)) == ["epoch3.safetensors", "epoch4.safetensors"]
    assert names(select_checkpoints([run], last=3)) == ["epoch2.safetensors", "epoch3.safetensors",
                                                        "epoch4.safetensors"]
    assert names(select_checkpoints([run], best=1)) == ["epoch2.safetensors"]  # BLEU 40, 20, 30
    assert names(select_checkpoints([run], best=2)) == ["epoch2.safetensors", "epoch4.safetensors"]


def test_best_prefers_the_newer_checkpoint_on_a_tie_and_files_can_be_chosen_from(tmp_path):
    scripted(tiny_trainer(tmp_path, epochs=3, keep_checkpoints=3), [5.0, 5.0, 1.0]).fit()
    files = [tmp_path / "epoch3.safetensors", tmp_path / "epoch1.safetensors", tmp_path / "epoch2.safetensors"]
    assert names(select_checkpoints([tmp_path], best=1)) == ["epoch2.safetensors"]
    assert names(select_checkpoints(files, best=1)) == ["epoch2.safetensors"]
    assert names(select_checkpoints(files, last=2)) == ["epoch2.safetensors", "epoch3.safetensors"]
    assert select_checkpoints(files) == files  # no flag: all the files given, in their order


def test_a_run_folder_with_too_few_checkpoints_is_refused_by_the_cli(run, tmp_path, capsys):
    assert main(["average", str(run), "--last", "4", "--output", str(tmp_path / "a.safetensors")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"minitf: error: run folder {run} holds 3 epoch checkpoint(s) (epoch2.safetensors, "
                          "epoch3.safetensors, epoch4.safetensors), fewer than the 4 asked for")
    assert not (tmp_path / "a.safetensors").exists()
    with pytest.raises(InputError, match=r"holds 0 epoch checkpoint\(s\), fewer than the 1 asked for \(train with "
                                         "--keep-checkpoints N"):
        select_checkpoints([tmp_path], best=1)


@pytest.mark.parametrize("flag", ["last", "best"])
def test_fewer_than_one_checkpoint_is_refused(run, flag):
    with pytest.raises(ConfigError, match=f"--{flag} must be at least 1, got 0"):
        select_checkpoints([run], **{flag: 0})


def test_a_folder_needs_last_or_best_and_comes_alone(run):
    with pytest.raises(ConfigError, match="is a run folder: choose its checkpoints with --last N or --best N"):
        select_checkpoints([run])
    with pytest.raises(InputError, match="is a folder: give one run folder, or checkpoint files"):
        select_checkpoints([run, run / "epoch2.safetensors"], last=1)
    with pytest.raises(ConfigError, match="not both"):
        select_checkpoints([run], last=1, best=1)


def test_best_refuses_a_checkpoint_without_its_own_score(run, tmp_path):
    state, meta, _ = load_checkpoint(run / "epoch4.safetensors", with_optimizer=False)
    meta["progress"]["history"] = meta["progress"]["history"][:-1]  # as a last.safetensors stopped by Ctrl-C
    odd = save_checkpoint(tmp_path / "odd.safetensors", state, meta)
    with pytest.raises(InputError, match=f"checkpoint {odd} holds no validation bleu of its own step"):
        select_checkpoints([run / "epoch2.safetensors", odd], best=1)


# ---- what cannot be averaged ------------------------------------------------------------------

def test_checkpoints_of_different_models_are_refused(run, tmp_path):
    model = Seq2SeqTransformer(TINY_MODEL_CONFIG)
    other = save_checkpoint(tmp_path / "other.safetensors", model.state_dict(),
                            {"model_config": TINY_MODEL_CONFIG.to_dict(), "tokenizer": TINY_TOKENIZER.to_dict()})
    with pytest.raises(CheckpointError, match=r"hold different models \(model_config: d_ff 64 vs 6, d_model 32 vs 4"):
        average_checkpoints([run / "epoch4.safetensors", other], tmp_path / "avg.safetensors")
    assert not (tmp_path / "avg.safetensors").exists()


def test_checkpoints_with_different_tokenizers_are_refused(run, tmp_path):
    state, meta, _ = load_checkpoint(run / "epoch4.safetensors", with_optimizer=False)
    merges = meta["tokenizer"]["merges"]
    meta["tokenizer"]["merges"] = merges[:-1] + [["x", "x", merges[-1][2]]]  # as many tokens, one of them another
    other = save_checkpoint(tmp_path / "other.safetensors", state, meta)
    with pytest.raises(CheckpointError, match="have different tokenizers"):
        average_checkpoints([run / "epoch4.safetensors", other], tmp_path / "avg.safetensors")


def test_a_missing_or_corrupt_checkpoint_is_refused(run, tmp_path):
    with pytest.raises(CheckpointError, match=f"checkpoint {tmp_path / 'gone.safetensors'} does not exist"):
        average_checkpoints([run / "epoch4.safetensors", tmp_path / "gone.safetensors"], tmp_path / "avg.safetensors")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes((run / "epoch3.safetensors").read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=f"checkpoint {broken} is corrupt"):
        average_checkpoints([run / "epoch4.safetensors", broken], tmp_path / "avg.safetensors")
    assert not (tmp_path / "avg.safetensors").exists()


def test_the_output_must_not_be_an_input_nor_a_folder(run, tmp_path):
    target = run / "epoch3.safetensors"
    before = target.read_bytes()
    with pytest.raises(ConfigError, match=f"--output {target} is the input checkpoint {target}"):
        average_checkpoints([run / "epoch2.safetensors", target], target)
    link = tmp_path / "link.safetensors"
    link.symlink_to(target)
    with pytest.raises(ConfigError, match="is the input checkpoint"):
        average_checkpoints([target], link)
    with pytest.raises(ConfigError, match="is a folder; give a file name"):
        average_checkpoints([target], tmp_path)
    assert target.read_bytes() == before


def test_no_checkpoint_or_one_given_twice_is_refused(run, tmp_path):
    with pytest.raises(InputError, match="no checkpoint to average"):
        average_checkpoints([], tmp_path / "avg.safetensors")
    with pytest.raises(InputError, match="epoch2.safetensors is given twice"):
        average_checkpoints([run / "epoch2.safetensors", run / "epoch3.safetensors", run / "epoch2.safetensors"],
                            tmp_path / "avg.safetensors")
