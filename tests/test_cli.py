"""The `minitf` command, run in-process: train, resume, translate, evaluate, and its error messages."""
from __future__ import annotations

import contextlib
import dataclasses
import gzip
import io
import json
import re
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

import minitf.cli
import minitf.translation.trainer
from minitf import backend
from minitf.cli import main
from minitf.data import english_number, german_number
from minitf.errors import ConfigError, InputError
from minitf.translation import DEMO_CONFIG, Trainer
from minitf.translation import Translator
from minitf.translation.checkpoint import load_checkpoint
from tiny_runs import TINY_FLAGS, train_argv, write_config

TRAIN_STEPS = 10  # stops inside the first epoch (13 batches)


def run(argv, capsys) -> tuple[int, str, str]:
    """Run `minitf argv`; return the exit code, stdout and stderr."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def write_lines(path, lines) -> str:
    text = "".join(line + "\n" for line in lines)
    if str(path).endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


def saved_progress(path) -> dict:
    return load_checkpoint(path)[1]["progress"]


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """One `minitf train` run, stopped by --max-steps: (exit code, stdout, run folder)."""
    tmp_path = tmp_path_factory.mktemp("cli")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main([str(a) for a in train_argv(tmp_path, "--max-steps", TRAIN_STEPS)])
    return code, stdout.getvalue(), tmp_path / "run"


@pytest.fixture
def checkpoint(cli_run):
    return str(cli_run[2] / "last.safetensors")


@pytest.fixture
def stdin(monkeypatch):
    """Set what the command reads from standard input: text (as UTF-8) or raw bytes."""
    def set_stdin(data: str | bytes) -> None:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8"))
    return set_stdin


# ---- train ----------------------------------------------------------------------------------

def test_train_writes_checkpoints_and_reports_on_the_test_split(cli_run):
    code, out, run_dir = cli_run
    assert code == 0
    assert {"best.safetensors", "last.safetensors", "log.jsonl"} <= {p.name for p in run_dir.iterdir()}
    assert "test (40 held-out numbers): exact match" in out
    assert f"after {TRAIN_STEPS} steps: saved best.safetensors, last.safetensors, log.jsonl in {run_dir}" in out
    assert "epoch 1: val loss" in out and "BLEU" not in out  # single-word references
    meta = load_checkpoint(run_dir / "last.safetensors")[1]
    assert meta["progress"]["step"] == TRAIN_STEPS
    config = meta["train_config"]
    assert tuple(config["synthetic_sizes"]) == (400, 40, 40)  # from the --config file
    assert config["d_model"] == 32  # the flag wins over the --config file
    assert config["max_steps"] == TRAIN_STEPS and config["epochs"] == 1


def test_train_resume_continues_where_the_run_stopped(tmp_path, capsys, checkpoint):
    code, out, err = run(["train", "--resume", checkpoint, "--max-steps", TRAIN_STEPS + 3,
                          "--out-dir", tmp_path / "more"], capsys)
    assert code == 0, err
    assert f"resumed from {checkpoint}: epoch 1, step {TRAIN_STEPS}" in out
    assert saved_progress(tmp_path / "more" / "last.safetensors")["step"] == TRAIN_STEPS + 3
    assert saved_progress(checkpoint)["step"] == TRAIN_STEPS  # the original run is untouched


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT via signal.raise_signal")
def test_train_interrupted_by_ctrl_c_exits_130_after_saving(tmp_path, capsys, monkeypatch):
    original = Trainer.train_step

    def train_step(self, batch):
        loss = original(self, batch)
        if self.progress.step == 2:  # the third step
            signal.raise_signal(signal.SIGINT)
        return loss

    monkeypatch.setattr(Trainer, "train_step", train_step)
    code, out, _ = run(train_argv(tmp_path), capsys)
    assert code == 130
    assert "--resume" in out
    assert saved_progress(tmp_path / "run" / "last.safetensors")["step"] == 3


def test_ctrl_c_outside_the_training_loop_is_one_line_and_exit_130(tmp_path, capsys, monkeypatch):
    def train_tokenizer(*args, **kwargs):  # Ctrl-C while the tokenizer trains, outside minitf's handler:
        raise KeyboardInterrupt  # what Python's own SIGINT handler raises (a real signal sent from the test was
    # not always delivered in time in CI's full session; the signal path is tested in training, above and below)
    monkeypatch.setattr(minitf.translation.trainer, "train_tokenizer", train_tokenizer)
    code, _, err = run(train_argv(tmp_path), capsys)
    assert (code, err) == (130, "minitf: interrupted\n")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT via signal.raise_signal")
def test_a_second_ctrl_c_in_training_is_one_line_and_exit_130(tmp_path, capsys, monkeypatch):
    original = Trainer.train_step

    def train_step(self, batch):
        if self.progress.step == 1:
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)
        return original(self, batch)

    monkeypatch.setattr(Trainer, "train_step", train_step)
    code, _, err = run(train_argv(tmp_path), capsys)
    assert code == 130 and err.splitlines()[-1] == "minitf: interrupted" and "Traceback" not in err


def test_train_on_parallel_files_reports_pairs_dropped_for_length(tmp_path, capsys):
    rng = np.random.default_rng(0)
    digits = rng.integers(1, 7, 80)
    numbers = rng.integers(10 ** (digits - 1), 10 ** digits)  # short and long sentences
    src = [english_number(int(n)) for n in numbers]
    tgt = [german_number(int(n)) for n in numbers]
    files = {"--src-train": write_lines(tmp_path / "train.en.gz", src[:60]),
             "--tgt-train": write_lines(tmp_path / "train.de.gz", tgt[:60]),
             "--src-val": write_lines(tmp_path / "val.en", src[60:]),
             "--tgt-val": write_lines(tmp_path / "val.de", tgt[60:])}
    argv = ["train", *[x for item in files.items() for x in item], *TINY_FLAGS, "--max-len", 8,
            "--epochs", 1, "--out-dir", tmp_path / "run"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    kept, dropped = map(int, re.search(r"training pairs: (\d+) kept, (\d+) dropped", out).groups())
    assert kept + dropped == 60 and kept > 0 and dropped > 0
    assert "epoch 1: val loss" in out and "held-out" not in out  # no synthetic test report
    assert "BLEU" in out
    meta = load_checkpoint(tmp_path / "run" / "last.safetensors")[1]
    assert meta["train_config"]["src_train"] == files["--src-train"]
    assert meta["progress"]["epoch"] == 1


def test_train_on_tsv_files(tmp_path, capsys):
    pairs = [(english_number(n), german_number(n)) for n in range(100, 160)]
    train = write_lines(tmp_path / "train.tsv", [f"{s}\t{t}" for s, t in pairs[:50]])
    val = write_lines(tmp_path / "val.tsv", [f"{s}\t{t}" for s, t in pairs[50:]])
    argv = ["train", "--train-tsv", train, "--val-tsv", val, *TINY_FLAGS, "--epochs", 1,
            "--out-dir", tmp_path / "run"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert "training pairs: 50 kept, 0 dropped" in out


def test_tsv_and_separate_files_together_are_refused(tmp_path, capsys):
    tsv = write_lines(tmp_path / "a.tsv", ["one\teins"])
    code, _, err = run(["train", "--train-tsv", tsv, "--val-tsv", tsv, "--src-train", tsv,
                        "--tgt-train", tsv, "--src-val", tsv, "--tgt-val", tsv], capsys)
    assert code == 1 and "TSV data needs" in err


# ---- translate and evaluate -----------------------------------------------------------------

@pytest.mark.parametrize("beam", [1, 3])
def test_translate_prints_one_line_per_input_line(capsys, stdin, checkpoint, beam):
    stdin("one hundred\nseventy-two\nfive thousand six\n")
    code, out, err = run(["translate", "--checkpoint", checkpoint, "--beam", beam], capsys)
    assert code == 0, err
    assert len(out.splitlines()) == 3 and out.endswith("\n")


def test_translate_keeps_line_alignment_when_a_translation_holds_a_line_break(capsys, stdin, checkpoint,
                                                                             monkeypatch):
    monkeypatch.setattr(Translator, "translate", lambda self, lines, **kw: ["a\nb", "c\r\nd"])
    stdin("one\ntwo\n")
    code, out, _ = run(["translate", "--checkpoint", checkpoint], capsys)
    assert code == 0 and out.splitlines() == ["a b", "c  d"]


def test_evaluate_prints_scores_as_json_and_writes_translations(tmp_path, capsys, cli_run, checkpoint):
    pairs = [(english_number(n), german_number(n)) for n in (3, 40, 512, 9001)]
    src = write_lines(tmp_path / "test.en", [s for s, _ in pairs])
    ref = write_lines(tmp_path / "test.de.gz", [t for _, t in pairs])
    output = tmp_path / "hyp.de"
    code, out, err = run(["evaluate", "--checkpoint", checkpoint, "--src", src, "--ref", ref, "--beam", 1,
                          "--output", output], capsys)
    assert code == 0, err
    scores = json.loads(out)
    assert scores["sentences"] == 4 and scores["beam"] == 1
    for key in ("bleu", "bleu_lowercase", "chrf"):
        assert 0 <= scores[key] <= 100
    assert len(output.read_text(encoding="utf-8").splitlines()) == 4


# ---- errors: exit code 1 and one clear line on stderr, never a traceback ---------------------

def corrupt_checkpoint(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not really a zip file")
    return tmp_path / "bad.npz"


def binary_file(path):
    path.write_bytes(b"one\n\xff\xd8\xff\xe0\n")
    return path


BAD_INVOCATIONS = {
    "parallel files of different lengths": (
        lambda tmp, ckpt: ["evaluate", "--checkpoint", ckpt, "--src", write_lines(tmp / "a.en", ["one"] * 3),
                           "--ref", write_lines(tmp / "b.de", ["eins"] * 2)],
        ["a.en, line 3: parallel files differ in length: ", "b.de has 2 lines, ", "a.en more"]),
    "evaluate: an empty source line": (
        lambda tmp, ckpt: ["evaluate", "--checkpoint", ckpt, "--src", write_lines(tmp / "a.en", ["one", ""]),
                           "--ref", write_lines(tmp / "b.de", ["eins", "zwei"])],
        ["a.en, line 2: empty line"]),
    "evaluate: a source file that is not UTF-8 text": (
        lambda tmp, ckpt: ["evaluate", "--checkpoint", ckpt, "--src", binary_file(tmp / "a.en"),
                           "--ref", write_lines(tmp / "b.de", ["eins", "zwei"])],
        ["a.en, line 2: invalid UTF-8 byte 0xff"]),
    "unknown device": (
        lambda tmp, ckpt: ["translate", "--checkpoint", ckpt, "--device", "tpu"],
        ["unknown device 'tpu'"]),
    "missing checkpoint": (
        lambda tmp, ckpt: ["translate", "--checkpoint", tmp / "missing.npz"],
        ["missing.npz does not exist"]),
    "corrupt checkpoint": (
        lambda tmp, ckpt: ["translate", "--checkpoint", corrupt_checkpoint(tmp)],
        ["bad.npz is corrupt"]),
    "resume from a missing checkpoint": (
        lambda tmp, ckpt: ["train", "--resume", tmp / "gone.npz"],
        ["gone.npz does not exist"]),
    "a model setting changed on resume": (
        lambda tmp, ckpt: ["train", "--resume", ckpt, "--d-ff", 128, "--out-dir", tmp / "more"],
        ["settings cannot change: d_ff 64 -> 128"]),
    "unknown key in --config": (
        lambda tmp, ckpt: ["train", "--config", write_config(tmp / "c.json", {"d_model": 32, "bogus": 1})],
        ["c.json: unknown setting 'bogus'"]),
    "invalid JSON in --config": (
        lambda tmp, ckpt: ["train", "--config", write_lines(tmp / "c.json", ["{d_model: 32"])],
        ["c.json: not valid JSON"]),
    "an integer too long for JSON in --config": (
        lambda tmp, ckpt: ["train", "--config", write_lines(tmp / "c.json", ['{"seed": ' + "9" * 5000 + "}"])],
        ["c.json: not valid JSON"]),
    "JSON nested too deeply in --config": (
        lambda tmp, ckpt: ["train", "--config", write_lines(tmp / "c.json", ["[" * 100000])],
        ["c.json: not valid JSON"]),
    "--config not an object": (
        lambda tmp, ckpt: ["train", "--config", write_config(tmp / "c.json", [1, 2])],
        ["c.json: expected a JSON object"]),
    "missing --config file": (
        lambda tmp, ckpt: ["train", "--config", tmp / "nope.json"],
        ["nope.json"]),
    "only some data files": (
        lambda tmp, ckpt: ["train", "--src-train", "a", "--tgt-train", "b", "--src-val", "c"],
        ["needs all four files"]),
    "a folder as a data file": (
        lambda tmp, ckpt: ["train", "--train-tsv", tmp, "--val-tsv", tmp, "--out-dir", tmp / "run"],
        ["Is a directory"]),
    "a folder as --config": (
        lambda tmp, ckpt: ["train", "--config", tmp],
        ["Is a directory"]),
    "a file as --out-dir": (
        lambda tmp, ckpt: ["train", "--out-dir", write_lines(tmp / "f.txt", ["x"])],
        ["f.txt is a file"]),
    "a folder as evaluate --output": (
        lambda tmp, ckpt: ["evaluate", "--checkpoint", ckpt, "--src", write_lines(tmp / "a.en", ["one"]),
                           "--ref", write_lines(tmp / "b.de", ["eins"]), "--output", tmp],
        ["--output", "is a folder"]),
    "a folder as --checkpoint": (
        lambda tmp, ckpt: ["translate", "--checkpoint", tmp],
        []),
    "negative --max-len-a": (
        lambda tmp, ckpt: ["translate", "--checkpoint", ckpt, "--max-len-a", -1],
        ["--max-len-a must be a finite number >= 0, got -1"]),
    "missing data file": (
        lambda tmp, ckpt: ["train", "--src-train", tmp / "no.en", "--tgt-train", tmp / "no.de",
                           "--src-val", tmp / "no.en", "--tgt-val", tmp / "no.de"],
        ["not found", "no.en"]),
}


@pytest.mark.parametrize("name", BAD_INVOCATIONS)
def test_bad_invocation_fails_with_a_clear_message(tmp_path, capsys, stdin, checkpoint, name):
    make_argv, expected = BAD_INVOCATIONS[name]
    stdin("one\n")
    code, out, err = run(make_argv(tmp_path, checkpoint), capsys)
    assert code == 1
    assert err.startswith("minitf: error: ") and "Traceback" not in err and err.count("\n") == 1
    for text in expected:
        assert text in err


@pytest.mark.parametrize("beam", [1, 2])
def test_empty_or_too_long_lines_give_empty_output_lines_and_warnings(capsys, stdin, checkpoint, beam):
    stdin("one\n\n" + "seven hundred " * 200 + "\ntwo\n")
    code, out, err = run(["translate", "--checkpoint", checkpoint, "--beam", beam], capsys)
    assert code == 0, err
    stdin("one\ntwo\n")
    alone = run(["translate", "--checkpoint", checkpoint, "--beam", beam], capsys)[1].splitlines()
    assert out.splitlines() == [alone[0], "", "", alone[1]]
    warnings = err.splitlines()
    assert len(warnings) == 2 and all(w.startswith("minitf: warning: line ") for w in warnings)
    assert "line 2 is empty" in warnings[0]
    assert re.search(r"line 3 has \d+ tokens, more than the model's maximum of \d+", warnings[1])


@pytest.mark.parametrize("beam", [1, 2])
def test_blank_lines_are_left_empty_with_a_warning_like_empty_lines(capsys, stdin, checkpoint, beam):
    stdin("one\n   \n\t\u00a0\n\u200b\u2060\ntwo\n")
    code, out, err = run(["translate", "--checkpoint", checkpoint, "--beam", beam], capsys)
    assert code == 0, err
    stdin("one\ntwo\n")
    alone = run(["translate", "--checkpoint", checkpoint, "--beam", beam], capsys)[1].splitlines()
    assert out.splitlines() == [alone[0], "", "", "", alone[1]]
    assert err.splitlines() == [f"minitf: warning: line {n} is blank (no visible character); its translation "
                                "is left empty" for n in (2, 3, 4)]


def test_windows_line_ends_and_a_byte_order_mark_are_not_part_of_the_text(capsys, stdin, checkpoint):
    stdin("one\ntwo\n")
    expected = run(["translate", "--checkpoint", checkpoint, "--beam", 1], capsys)
    stdin(b"\xef\xbb\xbfone\r\ntwo")
    assert run(["translate", "--checkpoint", checkpoint, "--beam", 1], capsys) == expected


@pytest.mark.parametrize("data, expected", [
    (b"one\ntwo\n\x89PNG\r\n\x1a\n", r"standard input, line 3: not UTF-8 text \(byte 0x89 at byte 1 "),
    (b"one\nt\xc3\xa9\xff\xfe\n", r"standard input, line 2: not UTF-8 text \(byte 0xff at byte 4 "),
    (b"one\n\ntwo\x00\x01\n", r"standard input, line 3: a NUL byte at byte 4 of the line"),
])
def test_binary_input_is_an_error_naming_the_line(capsys, stdin, checkpoint, data, expected):
    stdin(data)
    code, out, err = run(["translate", "--checkpoint", checkpoint], capsys)
    assert code == 1 and out == ""
    assert re.fullmatch("minitf: error: " + expected + r".*binary input cannot be translated\n", err), err


def test_evaluate_scores_a_too_long_source_line_as_an_empty_translation(tmp_path, capsys, checkpoint):
    sources = ["one", "seven hundred " * 200, "two"]
    src = write_lines(tmp_path / "test.en", sources)
    ref = write_lines(tmp_path / "test.de", ["eins", "siebenhundert", "zwei"])
    output = tmp_path / "hyp.de"
    code, out, err = run(["evaluate", "--checkpoint", checkpoint, "--src", src, "--ref", ref, "--beam", 1,
                          "--output", output], capsys)
    assert code == 0, err
    assert json.loads(out)["sentences"] == 3
    assert re.fullmatch(rf"minitf: warning: {re.escape(src)} line 2 has \d+ tokens, .*\n", err), err
    lines = output.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3 and lines[1] == ""


@pytest.mark.parametrize("flag", ["--src", "--ref", "--checkpoint"])
@pytest.mark.parametrize("how", ["same name", "symbolic link"])
def test_evaluate_refuses_an_output_that_is_one_of_its_input_files(tmp_path, capsys, checkpoint, flag, how):
    files = {"--src": write_lines(tmp_path / "t.en", ["one"]), "--ref": write_lines(tmp_path / "t.de", ["eins"]),
             "--checkpoint": tmp_path / "best.safetensors"}
    files["--checkpoint"].write_bytes(Path(checkpoint).read_bytes())
    before = Path(files[flag]).read_bytes()
    output = files[flag]
    if how == "symbolic link":
        output = tmp_path / "link.txt"
        output.symlink_to(files[flag])
    argv = ["evaluate", *[x for f in files.items() for x in f], "--output", output, "--beam", 1]
    code, _, err = run(argv, capsys)
    assert code == 1 and err.startswith(f"minitf: error: --output {output} is the {flag} file "), err
    assert Path(files[flag]).read_bytes() == before


def test_evaluate_output_written_half_leaves_no_half_file(tmp_path, capsys, checkpoint, monkeypatch):
    src, ref = write_lines(tmp_path / "t.en", ["one", "two"]), write_lines(tmp_path / "t.de", ["eins", "zwei"])
    output = tmp_path / "hyp.de"
    output.write_text("old\n", encoding="utf-8")

    def disk_full(self, data, encoding=None, **kwargs):  # writes half, then the disk is full
        with open(self, "w", encoding=encoding) as f:
            f.write(data[: len(data) // 2])
        raise OSError(28, "No space left on device", str(self))
    monkeypatch.setattr(type(output), "write_text", disk_full)
    code, _, err = run(["evaluate", "--checkpoint", checkpoint, "--src", src, "--ref", ref, "--beam", 1,
                        "--output", output], capsys)
    assert code == 1 and f"{output}: No space left on device" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hyp.de", "t.de", "t.en"]
    assert output.read_text(encoding="utf-8") == "old\n"


def test_control_characters_from_the_decoder_do_not_reach_the_output(tmp_path, capsys, stdin, checkpoint,
                                                                      monkeypatch):
    decoded = ["a\x08b\x1b[2Jc\x7f", "d\te\x85f\u2028g\x9bh\ufffd"]
    expected = ["a\ufffdb\ufffd[2Jc\ufffd", "d e f g\ufffdh\ufffd"]
    monkeypatch.setattr(Translator, "translate", lambda self, lines, **kw: decoded)
    stdin("one\ntwo\n")
    code, out, _ = run(["translate", "--checkpoint", checkpoint], capsys)
    assert code == 0 and out == "".join(line + "\n" for line in expected)
    src, ref = write_lines(tmp_path / "t.en", ["one", "two"]), write_lines(tmp_path / "t.de", ["eins", "zwei"])
    code, _, err = run(["evaluate", "--checkpoint", checkpoint, "--src", src, "--ref", ref,
                        "--output", tmp_path / "hyp.de"], capsys)
    assert code == 0, err
    assert (tmp_path / "hyp.de").read_text(encoding="utf-8") == "".join(line + "\n" for line in expected)


@pytest.mark.parametrize("command", ["translate", "train"])
def test_cuda_without_cupy_says_how_to_install_it(tmp_path, capsys, stdin, monkeypatch, checkpoint, command):
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` fail
    monkeypatch.setattr(backend, "_cupy", None)
    stdin("one\n")
    argv = (["translate", "--checkpoint", checkpoint] if command == "translate"
            else train_argv(tmp_path, "--max-steps", 1)) + ["--device", "cuda"]
    code, _, err = run(argv, capsys)
    assert code == 1 and "Traceback" not in err
    assert 'pip install ".[cuda]"' in err and "minitf[cuda]" not in err


# ---- argparse -------------------------------------------------------------------------------

def test_no_command_prints_help_and_returns_2(capsys):
    code, out, _ = run([], capsys)
    assert code == 2
    assert out.startswith("usage: minitf") and all(c in out for c in ("train", "translate", "evaluate"))


def test_tokenizer_subcommand_exists(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["tokenizer", "--help"])
    assert exit_info.value.code == 0
    assert "usage: minitf tokenizer" in capsys.readouterr().out


def test_missing_required_flag_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["translate"])
    assert exit_info.value.code == 2
    assert "--checkpoint" in capsys.readouterr().err


# ---- settings are checked before any data work ----------------------------------------------

@pytest.fixture
def no_data_work(monkeypatch):
    """Fail the test if the trainer reads data (settings must be refused before that)."""
    def load_splits(config):
        raise AssertionError("data was loaded before the settings were checked")
    monkeypatch.setattr(minitf.translation.trainer, "load_splits", load_splits)


BAD_SETTINGS = {
    "--n-heads 0": (["--n-heads", 0], "'n_heads' must be an integer in 1 .. 65536, got 0"),
    "--n-heads not dividing": (["--d-model", 30, "--n-heads", 4], "not divisible"),
    "--n-encoder-layers -1": (["--n-encoder-layers", -1], "'n_encoder_layers' must be an integer in 1 .. 1024, got -1"),
    "--n-decoder-layers 0": (["--n-decoder-layers", 0], "'n_decoder_layers' must be an integer in 1 .. 1024, got 0"),
    "--d-ff 0": (["--d-ff", 0], "'d_ff' must be an integer in 1 .. 262144, got 0"),
    "--d-model 0": (["--d-model", 0], "'d_model' must be an integer in 1 .. 65536, got 0"),
    "--vocab-size 100": (["--vocab-size", 100], "'vocab_size' must be >= 259"),
    "--max-tokens 0": (["--max-tokens", 0], "'max_tokens' must be an integer >= 1, got 0"),
    "--epochs -1": (["--epochs", -1], "'epochs' must be an integer >= 0, got -1"),
    "--max-steps -1": (["--max-steps", -1], "'max_steps' must be an integer >= 0"),
    "--time-limit -5": (["--time-limit", -5], "'time_limit' must be a finite number >= 0"),
    "--bleu-sentences -1": (["--bleu-sentences", -1], "'bleu_sentences' must be an integer >= 0, got -1"),
    "--lr nan": (["--lr", "nan"], "'lr' must be a finite number > 0, got nan"),
    "--lr inf": (["--lr", "inf"], "'lr' must be a finite number > 0, got inf"),
    "--lr -1": (["--lr", -1], "'lr' must be a finite number > 0"),
    "--clip-norm -1": (["--clip-norm", -1], "'clip_norm' must be a finite number >= 0, got -1.0"),
    "--clip-norm nan": (["--clip-norm", "nan"], "'clip_norm' must be a finite number >= 0"),
    "--dropout 1": (["--dropout", 1], "'dropout' must be a finite number in [0, 1), got 1.0"),
    "--label-smoothing -0.1": (["--label-smoothing", -0.1], "'label_smoothing' must be a finite number in [0, 1)"),
    "--activation tanh": (["--activation", "tanh"], "'activation' must be one of ['relu', 'gelu'], got 'tanh'"),
    "--select-metric ter": (["--select-metric", "ter"], "'select_metric' must be one of ['bleu', 'chrf', 'exact_match']"),
    "--warmup 0": (["--warmup", 0], "'warmup' must be an integer >= 1, got 0"),
    "--patience 0": (["--patience", 0], "'patience' must be an integer >= 1, got 0"),
    "--device tpu": (["--device", "tpu"], "unknown device 'tpu'"),
    # integers too large for a float overflowed in the schedule or the memory check (a traceback)
    "--warmup 1e309": (["--warmup", "1" + "0" * 309], "'warmup' must be an integer of at most 1e308 in size"),
    "--max-tokens 1e309": (["--max-tokens", "1" + "0" * 309], "'max_tokens' must be an integer of at most 1e308"),
}


@pytest.mark.parametrize("name", BAD_SETTINGS)
def test_bad_setting_is_refused_before_any_data_work(tmp_path, capsys, no_data_work, name):
    flags, message = BAD_SETTINGS[name]
    code, _, err = run(["train", *flags, "--out-dir", tmp_path / "run"], capsys)
    assert code == 1, err
    assert err.startswith("minitf: error: ") and err.count("\n") == 1 and message in err
    assert not (tmp_path / "run").exists()


BAD_JSON = {
    "bool for an int": ({"n_heads": True}, "'n_heads' must be an integer, got bool True"),
    "string for an int": ({"d_model": "64"}, "'d_model' must be an integer, got str '64'"),
    "float for an int": ({"max_steps": 1.5}, "'max_steps' must be an integer or null, got float 1.5"),
    "string for a float": ({"lr": "fast"}, "'lr' must be a number, got str 'fast'"),
    "number for a string": ({"activation": 1}, "'activation' must be a string, got int 1"),
    "int for a bool": ({"norm_first": 1}, "'norm_first' must be true or false, got int 1"),
    "bad synthetic_sizes": ({"synthetic_sizes": [10, 2]}, "'synthetic_sizes' must be a list of 3 integers, got list [10, 2]"),
    "out of range": ({"n_heads": 0}, "'n_heads' must be an integer in 1 .. 65536, got 0"),
}


@pytest.mark.parametrize("name", BAD_JSON)
def test_config_file_values_of_the_wrong_type_name_the_key_type_and_value(tmp_path, capsys, no_data_work,
                                                                          name):
    settings, message = BAD_JSON[name]
    config = write_config(tmp_path / "c.json", settings)
    code, _, err = run(["train", "--config", config], capsys)
    assert code == 1 and err.count("\n") == 1
    assert f"--config {config}: setting {message}" in err


@pytest.mark.parametrize("command", ["train", "resume"])
def test_cuda_is_checked_before_any_data_work(tmp_path, capsys, monkeypatch, no_data_work, checkpoint, command):
    monkeypatch.setitem(sys.modules, "cupy", None)
    monkeypatch.setattr(backend, "_cupy", None)
    argv = ["--resume", checkpoint, "--out-dir", tmp_path / "more"] if command == "resume" else []
    code, _, err = run(["train", *argv, "--device", "cuda"], capsys)
    assert code == 1 and "needs CuPy" in err


def built_config(monkeypatch, capsys, argv) -> minitf.translation.TrainConfig:
    """The TrainConfig that `minitf train argv` would train with (nothing is trained)."""
    configs = []

    class Capture:
        def __init__(self, config, **kwargs):
            configs.append(config)
            raise ConfigError("captured")

    monkeypatch.setattr(minitf.cli, "Trainer", Capture)
    code, _, err = run(["train", *argv], capsys)
    assert code == 1 and "captured" in err
    return configs[0]


def test_config_file_and_flags_combine_with_the_demo_settings_alike(tmp_path, monkeypatch, capsys):
    by_file = built_config(monkeypatch, capsys, ["--config", write_config(tmp_path / "c.json", {"max_steps": 1})])
    by_flag = built_config(monkeypatch, capsys, ["--max-steps", 1])
    assert by_file == by_flag
    assert by_file.d_model == DEMO_CONFIG.d_model and by_file.max_steps == 1


def test_real_data_in_a_config_file_starts_from_the_real_data_defaults(tmp_path, monkeypatch, capsys):
    tsv = {"train_tsv": "a.tsv", "val_tsv": "b.tsv"}
    by_file = built_config(monkeypatch, capsys, ["--config", write_config(tmp_path / "c.json", tsv)])
    by_flag = built_config(monkeypatch, capsys, ["--train-tsv", "a.tsv", "--val-tsv", "b.tsv"])
    assert by_file == by_flag and by_file.d_model == minitf.translation.TrainConfig().d_model


def test_a_preset_is_overridden_by_the_config_file_and_the_config_file_by_flags(tmp_path, monkeypatch, capsys):
    tsv = ["--train-tsv", "a.tsv", "--val-tsv", "b.tsv"]
    preset = minitf.translation.PRESETS["small-data"]
    config = built_config(monkeypatch, capsys, ["--preset", "small-data", *tsv])
    assert all(getattr(config, key) == value for key, value in preset.items())
    assert config.epochs == minitf.translation.TrainConfig().epochs  # the rest: the real-data defaults
    file = write_config(tmp_path / "c.json", {"d_model": 64, "dropout": 0.2})
    config = built_config(monkeypatch, capsys, ["--preset", "small-data", "--config", file, "--dropout", 0.25, *tsv])
    assert (config.d_model, config.dropout, config.d_ff) == (64, 0.25, preset["d_ff"])


def test_every_preset_is_valid_and_an_unknown_one_is_an_argparse_error(capsys):
    for values in minitf.translation.PRESETS.values():
        minitf.translation.TrainConfig.from_dict(values, source="a preset")
    with pytest.raises(SystemExit):
        main(["train", "--preset", "huge"])
    assert "invalid choice: 'huge'" in capsys.readouterr().err


def test_preset_beside_resume_is_refused_not_ignored(tmp_path, capsys, checkpoint):
    code, _, err = run(["train", "--resume", checkpoint, "--preset", "small-data", "--out-dir", tmp_path / "m"], capsys)
    assert code == 1 and "--preset small-data cannot be combined with --resume" in err

def test_bare_train_uses_the_settings_its_help_shows(monkeypatch, capsys):
    config = built_config(monkeypatch, capsys, [])
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "demo" in out
    entries = re.split(r"\n  (?=-)", out[out.index("options:"):])[1:]  # one per option
    helps = {entry.split()[0].rstrip(","): " ".join(entry.split()) for entry in entries}
    for field in dataclasses.fields(minitf.translation.TrainConfig):  # every setting has a flag
        flag = "--" + field.name.replace("_", "-")
        shown = re.search(r"\(default ([^;)]*)(?:; demo ([^)]*))?\)", helps[flag])
        value = getattr(config, field.name)
        assert (shown.group(2) or shown.group(1)) == " ".join(map(str, value) if isinstance(value, tuple) else [str(value)]), flag


# ---- a folder that holds a run ----------------------------------------------------------------

def test_fresh_train_into_a_folder_holding_a_run_is_refused_unless_overwrite(tmp_path, capsys):
    code, _, err = run(train_argv(tmp_path, "--max-steps", 2), capsys)
    assert code == 0, err
    run_dir = tmp_path / "run"
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    code, _, err = run(train_argv(tmp_path, "--max-steps", 3), capsys)
    assert code == 1 and err.count("\n") == 1
    assert "already holds a run" in err and "--resume" in err and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before  # untouched
    code, _, err = run(train_argv(tmp_path, "--max-steps", 3, "--overwrite"), capsys)
    assert code == 0, err
    assert saved_progress(run_dir / "last.safetensors")["step"] == 3
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["event"] == "eval"] == [3]  # the old run's log is gone


@pytest.mark.parametrize("name", ["log.jsonl", "best.safetensors", "last.safetensors"])
def test_any_log_or_checkpoint_counts_as_a_run(tmp_path, capsys, no_data_work, name):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / name).write_text("x")
    code, _, err = run(train_argv(tmp_path), capsys)
    held = "an unfinished run with no checkpoint to resume" if name == "log.jsonl" else "already holds a run"
    assert code == 1 and f"{held} ({name})" in err


# ---- settings and data refused at the start ----------------------------------------------------

def test_config_beside_resume_is_refused_not_ignored(tmp_path, capsys, checkpoint):
    config = write_config(tmp_path / "c.json", {"epochs": 5})
    code, _, err = run(["train", "--resume", checkpoint, "--config", config, "--out-dir", tmp_path / "more"], capsys)
    assert code == 1 and err.count("\n") == 1
    assert f"--config {config} cannot be combined with --resume" in err
    assert not (tmp_path / "more").exists()


def test_an_empty_out_dir_is_refused(tmp_path, capsys, monkeypatch, no_data_work):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(["train", "--out-dir", ""], capsys)
    assert code == 1 and "'out_dir' must name a folder, got ''" in err
    assert not any(tmp_path.iterdir())


def test_an_empty_validation_file_is_refused_at_the_start(tmp_path, capsys):
    train = tmp_path / "train.tsv"
    train.write_text("".join(f"{n}\t{n}\n" for n in ("one", "two", "three")), encoding="utf-8")
    (tmp_path / "val.tsv").write_text("", encoding="utf-8")
    code, _, err = run(["train", "--train-tsv", train, "--val-tsv", tmp_path / "val.tsv", *TINY_FLAGS,
                        "--out-dir", tmp_path / "run"], capsys)
    assert code == 1 and err.count("\n") == 1
    assert f"the validation data ({tmp_path / 'val.tsv'}) holds no sentence pairs" in err
    assert not (tmp_path / "run").exists()


def test_a_nul_byte_in_training_data_is_refused_as_translate_refuses_it(tmp_path, capsys):
    train = tmp_path / "train.tsv"
    train.write_bytes(b"one\teins\ntw\x00o\tzwei\n")
    (tmp_path / "val.tsv").write_text("one\teins\n", encoding="utf-8")
    code, _, err = run(["train", "--train-tsv", train, "--val-tsv", tmp_path / "val.tsv", "--out-dir",
                        tmp_path / "run"], capsys)
    assert code == 1 and err.count("\n") == 1
    assert f"{train}, line 2: a NUL byte at byte 3 of the line" in err  # the words translate uses


# ---- bugs keep their traceback ----------------------------------------------------------------

@pytest.mark.parametrize("error", [ValueError, TypeError, KeyError, RuntimeError, ZeroDivisionError])
def test_an_internal_error_is_not_hidden_as_a_user_error(tmp_path, monkeypatch, error):
    def fit(self):
        raise error("a bug")
    monkeypatch.setattr(Trainer, "fit", fit)
    with pytest.raises(error, match="a bug"):
        main([str(a) for a in train_argv(tmp_path, "--max-steps", 1)])


def test_text_the_tokenizer_cannot_encode_is_an_input_error_naming_the_sentence(checkpoint):
    # what undecodable bytes become with errors="surrogateescape" (the CLI itself reads bytes)
    translator = Translator.from_checkpoint(checkpoint)
    with pytest.raises(InputError, match="^sentence 2: "):
        translator.translate(["one", "bad \udcff bytes"])
