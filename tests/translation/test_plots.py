"""Pictures (minitf/translation/plots.py): the learning curves of a run's log (`minitf plot`) and
cross-attention heatmaps (`minitf translate --attention-png`). Reading logs and computing attention
are tested without matplotlib; drawing is skipped where matplotlib (the `plot` extra) is missing."""
from __future__ import annotations

import dataclasses
import io
import json
import struct
import sys

import numpy as np
import pytest

from minitf.cli import main
from minitf.errors import ConfigError, InputError
from minitf.nn import Seq2SeqTransformer
from minitf.translation import Translator
from minitf.translation.plots import (MatplotlibMissing, attention_maps, check_png_output, cross_attention,
                                      draw_attention, plot_curves, read_curves, token_label)
from tiny_runs import TINY_MODEL_CONFIG, TINY_TOKENIZER, tiny_trainer

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny run of 6 epochs (enough for some outputs to end before the length limit), logging every 5 steps."""
    trainer = tiny_trainer(tmp_path_factory.mktemp("run"), epochs=6, log_every=5)
    trainer.fit()
    return trainer.out_dir


@pytest.fixture(scope="module")
def translator(run):
    return Translator.from_checkpoint(str(run / "last.safetensors"))


def write_log(folder, *lines) -> str:
    folder.mkdir(exist_ok=True)
    (folder / "log.jsonl").write_bytes(b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines))
    return str(folder)


def step(n, loss=1.0, epoch=0):
    return json.dumps({"event": "step", "step": n, "epoch": epoch, "loss": loss, "lr": 1e-3, "tokens_per_s": 1.0})


def evaluation(n, epoch, bleu=10.0, seconds=60.0):
    return json.dumps({"val_loss": 2.0, "bleu": bleu, "chrf": 30.0, "exact_match": 0.25, "event": "eval",
                       "epoch": epoch, "step": n, "train_seconds": seconds})


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    return struct.unpack(">II", data[16:24])


def without_matplotlib(monkeypatch):
    for name in ("matplotlib", "matplotlib.figure"):
        monkeypatch.setitem(sys.modules, name, None)  # `import matplotlib.figure` raises ImportError


# ---- the curves of a log ------------------------------------------------------------------------

def test_curves_hold_every_logged_step_and_evaluation_of_a_run(run):
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    curves = read_curves(run)
    steps = [r for r in records if r["event"] == "step"]
    assert curves.steps == [r["step"] for r in steps] == list(range(5, 5 * len(steps) + 1, 5)) and len(steps) > 3
    assert curves.losses == [r["loss"] for r in steps] and curves.lrs == [r["lr"] for r in steps]
    assert curves.series("bleu", "epoch") == ([1, 2, 3, 4, 5, 6], [r["bleu"] for r in records if r["event"] == "eval"])
    seconds, exact = curves.series("exact_match", "train_seconds")
    assert len(seconds) == 6 and 0 < seconds[0] < seconds[-1] and all(0 <= e <= 1 for e in exact)


def test_a_step_logged_twice_by_a_resumed_run_counts_once_with_its_latest_record(tmp_path):
    folder = write_log(tmp_path / "r", step(10, 3.0), evaluation(12, 1, bleu=5.0), step(20, 2.0), step(20, 1.5),
                       step(30, 1.0), evaluation(30, 2, bleu=7.0), evaluation(30, 2, bleu=8.0))
    curves = read_curves(folder)
    assert curves.steps == [10, 20, 30] and curves.losses == [3.0, 1.5, 1.0]
    assert curves.series("bleu", "step") == ([12, 30], [5.0, 8.0])


def test_blank_lines_and_other_events_are_skipped_and_missing_optional_fields_left_out(tmp_path):
    old_eval = json.dumps({"event": "eval", "epoch": 1, "step": 5, "val_loss": 2.5})  # no metrics, no time
    folder = write_log(tmp_path / "r", "", json.dumps({"event": "resume", "step": 3}), step(5), "  ", old_eval)
    curves = read_curves(folder)
    assert curves.steps == [5] and curves.series("val_loss", "epoch") == ([1], [2.5])
    assert curves.series("bleu", "epoch") == ([], []) and curves.series("val_loss", "train_seconds") == ([], [])


@pytest.mark.parametrize("line, problem", [
    (b"{\"event\": \"step\", \"step\": 5", "line 2: not valid JSON"),
    (b"[1, 2]", "line 2: expected a JSON object, got list"),
    (json.dumps({"event": "step", "step": 5, "epoch": 0}).encode(), "line 2: a 'step' record without 'loss'"),
    (json.dumps({"event": "eval", "step": 5, "epoch": 1, "bleu": 1.0}).encode(), "without 'val_loss'"),
    (step(5, loss="abc").encode(), "line 2: loss is 'abc', not a finite number"),
    (step(5, loss=True).encode(), "loss is 'True', not a finite number"),
    (step(5, loss=float("nan")).encode(), "loss is 'nan', not a finite number"),
    (b"\xff\xfe{}", "line 2: not UTF-8 text"),
])
def test_a_corrupt_line_is_an_error_naming_the_file_and_line(tmp_path, line, problem):
    folder = write_log(tmp_path / "r", step(1), line, step(9))
    with pytest.raises(InputError, match="corrupt") as err:
        read_curves(folder)
    assert str(tmp_path / "r" / "log.jsonl") in str(err.value) and problem in str(err.value)


def test_a_folder_without_a_log_or_with_nothing_to_plot_is_an_error(tmp_path):
    with pytest.raises(InputError, match="run folder .*missing.* does not exist"):
        read_curves(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is not a folder"):
        read_curves(tmp_path / "file")
    with pytest.raises(InputError, match="holds no log.jsonl: not a run folder"):
        read_curves(tmp_path)
    for lines in ((), ("", " "), (json.dumps({"event": "resume"}),)):
        with pytest.raises(InputError, match="holds no training step or evaluation yet"):
            read_curves(write_log(tmp_path / "r", *lines))


def test_a_picture_is_written_only_as_png_into_an_existing_folder(tmp_path):
    assert check_png_output(tmp_path / "a.PNG", "--output") == tmp_path / "a.PNG"
    with pytest.raises(ConfigError, match=r"--output .*a\.jpg: the picture is written as PNG"):
        check_png_output(tmp_path / "a.jpg", "--output")
    with pytest.raises(ConfigError, match="folder .*nowhere does not exist"):
        check_png_output(tmp_path / "nowhere" / "a.png", "--output")
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ConfigError, match="is a folder"):
        check_png_output(tmp_path / "dir.png", "--output")


# ---- cross-attention --------------------------------------------------------------------------

def test_attention_has_a_row_per_output_token_and_eos_a_column_per_source_token_and_rows_sum_to_1(translator):
    sentences = ["twenty-one thousand", "seven hundred six", "nine"]
    ended = []
    for options in ({}, {"beam_size": 3}):
        maps = attention_maps(translator, sentences, **options)
        assert [m.translation for m in maps] == translator.translate(sentences, **options)
        for sentence, m in zip(sentences, maps):
            assert m.weights.shape == (len(m.target), len(m.source))
            assert len(m.source) == len(translator.tokenizer.encode(sentence)) and m.target
            np.testing.assert_allclose(m.weights.sum(axis=1), 1.0, rtol=1e-6)
            assert "".join(m.source).replace("␣", " ") == sentence
            ended.append(m.target[-1] == "<eos>")  # else the output reached the length limit
            assert "".join(m.target[:-1] if ended[-1] else m.target).replace("␣", " ") == m.translation
    assert any(ended)


def test_an_output_cut_at_the_length_limit_has_no_eos_row(translator):
    (cut,) = attention_maps(translator, ["seven hundred"], max_len_a=0, max_len_b=0)
    assert cut.translation == "" and cut.target == [] and cut.weights.shape == (0, len(cut.source))


def test_cross_attention_is_the_last_decoder_layers_averaged_over_heads():
    config = dataclasses.replace(TINY_MODEL_CONFIG, n_decoder_layers=2)
    model, d = Seq2SeqTransformer(config), config.d_model
    last = model.decoder_layers[1].cross_attn
    last.in_proj_weight.data[:d] = 0  # zero queries: every head of the last layer attends uniformly
    last.in_proj_bias.data[:d] = 0
    weights = cross_attention(model, [5, 6, 7], [8, 9], bos_id=1)
    np.testing.assert_allclose(weights, np.full((3, 3), 1 / 3), rtol=1e-6)
    assert "forward" not in vars(last)  # the capture is undone
    model = Seq2SeqTransformer(config)
    model.decoder_layers[0].cross_attn.in_proj_weight.data[:d] = 0  # the first layer's does not count
    assert not np.allclose(cross_attention(model, [5, 6, 7], [8, 9], bos_id=1), 1 / 3, rtol=1e-3)


def test_a_sentence_that_cannot_be_translated_is_an_error_naming_it(translator):
    with pytest.raises(InputError, match="sentence 2 is empty"):
        attention_maps(translator, ["nine", ""])


def test_tokens_are_shown_as_readable_text_with_visible_spaces():
    byte = TINY_TOKENIZER.byte_ids
    assert token_label(TINY_TOKENIZER, byte[ord(" ")]) == "␣"
    assert token_label(TINY_TOKENIZER, byte[0xC3]) == "<0xC3>"  # half of a character
    assert token_label(TINY_TOKENIZER, byte[ord("\t")]) == "\\t"
    assert token_label(TINY_TOKENIZER, TINY_TOKENIZER.special_id("<eos>")) == "<eos>"


# ---- without matplotlib --------------------------------------------------------------------------

def test_without_matplotlib_drawing_is_an_error_saying_how_to_install_it(run, tmp_path, monkeypatch, capsys):
    without_matplotlib(monkeypatch)
    with pytest.raises(MatplotlibMissing, match=r'minitf plot needs matplotlib.*pip install "minitf\[plot\]"'):
        plot_curves(read_curves(run), tmp_path / "c.png")
    assert main(["plot", str(run), "--output", str(tmp_path / "c.png")]) == 1
    assert main(["translate", "--checkpoint", str(run / "last.safetensors"), "--attention-png", str(tmp_path / "a")]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 2 and err.count('minitf: error: ') == 2
    assert err.count('pip install "minitf[plot]"') == 2 and not list(tmp_path.iterdir())


def test_the_plot_command_refuses_bad_input_in_one_line(tmp_path, capsys):
    write_log(tmp_path / "bad", step(1), "not json")
    write_log(tmp_path / "good", step(1))
    cases = [(["plot", str(tmp_path / "nothing"), "--output", str(tmp_path / "c.png")], "does not exist"),
             (["plot", str(tmp_path), "--output", str(tmp_path / "c.png")], "holds no log.jsonl"),
             (["plot", str(tmp_path / "bad"), "--output", str(tmp_path / "c.png")], "log.jsonl, line 2: not valid JSON"),
             (["plot", str(tmp_path / "good"), "--output", str(tmp_path / "c.svg")], "give a file name ending in .png"),
             (["plot", str(tmp_path / "good"), "--output", str(tmp_path / "no" / "c.png")], "does not exist")]
    for argv, problem in cases:
        assert main(argv) == 1
        out, err = capsys.readouterr()
        assert out == "" and err.startswith("minitf: error: ") and err.count("\n") == 1 and problem in err, err
    assert not (tmp_path / "c.png").exists()


def test_attention_png_refuses_a_file_before_translating(run, tmp_path, capsys, monkeypatch):
    (tmp_path / "file").write_text("x")
    monkeypatch.setattr(sys, "stdin", io.StringIO("nine\n"))
    assert main(["translate", "--checkpoint", str(run / "last.safetensors"), "--attention-png", str(tmp_path / "file")]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "--attention-png" in err and "is a file" in err


def test_attention_png_refuses_an_ensemble_before_translating(run, tmp_path, capsys, monkeypatch):
    checkpoint = str(run / "last.safetensors")
    monkeypatch.setattr(sys, "stdin", io.StringIO("nine\n"))
    assert main(["translate", "--checkpoint", checkpoint, checkpoint, "--attention-png", str(tmp_path / "a")]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "give one --checkpoint, not 2" in err and not (tmp_path / "a").exists()


# ---- drawing (needs matplotlib) -----------------------------------------------------------------

def test_plot_writes_the_curves_of_a_run_as_a_png(run, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    output = tmp_path / "curves.png"
    assert main(["plot", str(run), "--output", str(output)]) == 0
    assert capsys.readouterr().out == f"saved {output}\n"
    assert png_size(output) == (1200, 800)


def test_a_log_with_evaluations_only_is_drawn_too(tmp_path):
    pytest.importorskip("matplotlib")
    folder = write_log(tmp_path / "r", evaluation(40, 1, seconds=543.0))
    assert png_size(plot_curves(read_curves(folder), tmp_path / "c.png")) == (1200, 800)


def test_translate_attention_png_draws_each_translated_line_and_prints_the_same_translations(run, tmp_path, capsys,
                                                                                             monkeypatch):
    pytest.importorskip("matplotlib")
    checkpoint = str(run / "last.safetensors")
    text = "twenty-one thousand four hundred six\n\nnine\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    assert main(["translate", "--checkpoint", checkpoint]) == 0
    plain = capsys.readouterr().out
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    folder = tmp_path / "new" / "attention"  # made if missing
    assert main(["translate", "--checkpoint", checkpoint, "--attention-png", str(folder)]) == 0
    out, err = capsys.readouterr()
    assert out == plain and "line 2 is empty" in err
    assert sorted(p.name for p in folder.iterdir()) == ["1.png", "3.png"]
    (wide, _), (narrow, _) = png_size(folder / "1.png"), png_size(folder / "3.png")
    assert wide > narrow  # the picture grows with the sentence


def test_an_empty_output_is_drawn_without_rows(translator, tmp_path):
    pytest.importorskip("matplotlib")
    (cut,) = attention_maps(translator, ["seven hundred"], max_len_a=0, max_len_b=0)
    assert png_size(draw_attention(cut, tmp_path / "a.png"))[0] > 0


def test_attention_png_draws_the_lines_of_an_nbest_list_too(run, tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(sys, "stdin", io.StringIO("nine\nseven hundred\n"))
    folder = tmp_path / "attention"
    assert main(["translate", "--checkpoint", str(run / "last.safetensors"), "--beam", "2", "--nbest", "2",
                 "--attention-png", str(folder)]) == 0
    assert capsys.readouterr().out.count(" ||| ") == 2 * 2 * 3  # 2 lines x 2 hypotheses, 3 separators each
    assert sorted(p.name for p in folder.iterdir()) == ["1.png", "2.png"]
