"""The examples that are not run elsewhere: the attention heatmap, and the Multi30k recipe end to end
on a stand-in corpus in its file layout."""
import gzip
import importlib.util
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minitf.data import number_translation_task
from tiny_runs import tiny_trainer

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    trainer = tiny_trainer(tmp_path_factory.mktemp("run"), max_steps=5, epochs=1)
    trainer.fit()
    return trainer.out_dir / "last.safetensors"


def test_heatmap_png_is_written(checkpoint, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    out = tmp_path / "attention.png"
    monkeypatch.setattr(sys, "argv", ["attention_heatmap", "--checkpoint", str(checkpoint),
                                      "--sentence", "seven hundred", "--output", str(out)])
    load_example("attention_heatmap").main()
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_multi30k_recipe_stops_on_ctrl_c_then_resumes_and_scores_the_test_split(tmp_path):
    """Generated number pairs in Multi30k's file layout: Ctrl-C once training runs (after the first
    evaluation) saves and ends the script without testing; --resume then trains on and tests."""
    data = tmp_path / "data"
    data.mkdir()
    splits = number_translation_task(200, 8, 8, seed=1)
    for split, pairs in (("train", splits["train"]), ("val", splits["val"]), ("test_2016_flickr", splits["test"])):
        for side, lang in ((0, "de"), (1, "en")):
            with gzip.open(data / f"{split}.{lang}.gz", "wt", encoding="utf-8") as f:
                f.write("".join(pair[side] + "\n" for pair in pairs))
    run = tmp_path / "run"
    command = [sys.executable, str(EXAMPLES / "multi30k.py"), "--data", str(data), "--out-dir", str(run),
               "--time-limit", "600", "--beam", "2"]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not (run / "log.jsonl").is_file() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=240)
    finally:
        child.kill()
    assert child.returncode == 130, err
    assert (run / "last.safetensors").is_file() and not (run / "test_2016_flickr.hyp.en").exists()
    hint = next(line for line in out.splitlines() if line.startswith("interrupted: saved"))
    assert "multi30k.py" in hint and hint.rstrip("`").endswith("--resume") and "minitf train" not in hint

    done = subprocess.run(command[:-4] + ["--time-limit", "1", "--beam", "2", "--resume"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"test_bleu", "test_bleu_lowercase", "test_chrf", "beam", "epochs"} <= set(result)
    assert result["beam"] == 2 and result["train_seconds"] >= 1  # stopped by --time-limit
    hypotheses = (run / "test_2016_flickr.hyp.en").read_text(encoding="utf-8").splitlines()
    assert len(hypotheses) == 8

    again = subprocess.run(command, capture_output=True, text=True, timeout=120)  # a fresh run into it
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert again.stderr.startswith("multi30k.py: error: ") and "--overwrite" in again.stderr

def test_char_mlp_loss_falls_and_samples_are_words_of_the_alphabet(tmp_path):
    char_mlp = load_example("char_mlp")
    flags = ["--words", "300", "--steps", "150", "--eval-every", "75", "--n-hidden", "32", "--lr", "0.1"]
    result = char_mlp.train(char_mlp.parse_args(flags))
    for split in ("train", "val"):
        losses = result["history"][split]
        assert len(losses) == 3 and losses[-1] < losses[0] - 0.3, losses
    assert len(result["samples"]) == 10 and any(result["samples"])
    assert set("".join(result["samples"])) <= result["alphabet"] and "." not in result["alphabet"]
    assert char_mlp.train(char_mlp.parse_args(flags))["samples"] == result["samples"]  # seeded

    words = tmp_path / "words.txt"
    words.write_text("anna\nbob\n\nada\notto\n" * 20)
    own = char_mlp.train(char_mlp.parse_args(["--data", str(words), "--steps", "50", "--eval-every", "50",
                                               "--n-hidden", "16", "--num-samples", "3"]))
    assert own["alphabet"] == set("anbdot") and len(own["samples"]) == 3
    assert set("".join(own["samples"])) <= own["alphabet"]
    words.write_text("a.b\n")
    with pytest.raises(ValueError, match="may not contain '.'"):
        char_mlp.train(char_mlp.parse_args(["--data", str(words)]))


def test_char_transformer_loss_falls_and_generates_text_of_the_alphabet():
    char_transformer = load_example("char_transformer")
    args = char_transformer.parse_args(["--steps", "40", "--warmup", "5", "--block", "8", "--d-model", "16",
                                        "--n-heads", "2", "--n-layers", "1", "--batch-size", "8",
                                        "--eval-batch", "16", "--eval-every", "20", "--new-tokens", "30",
                                        "--prompt", "two"])
    result = char_transformer.train(args)
    for split in ("train", "val"):
        losses = result["history"][split]
        assert len(losses) == 3 and losses[-1] < losses[0] - 0.5, losses
    assert result["sample"].startswith("two") and len(result["sample"]) == 3 + 30
    assert set(result["sample"]) <= result["alphabet"]


@pytest.mark.slow
def test_digits_cnn_learns_saves_and_reloads(tmp_path, capsys):
    """Two epochs on the generated digits: far above chance (10%), and the reloaded model scores it."""
    saved = tmp_path / "cnn.safetensors"
    accuracy = load_example("digits_cnn").main(["--data", "generated", "--epochs", "2", "--save", str(saved)])
    out = capsys.readouterr().out
    assert accuracy > 0.6 and "epoch 2: train loss" in out
    assert f"reloaded: test accuracy {accuracy:.1%}" in out
    import minitf  # noqa: PLC0415
    state = minitf.load(saved)
    assert sorted(state) == ["conv1.bias", "conv1.weight", "conv2.bias", "conv2.weight", "fc1.bias", "fc1.weight",
                             "fc2.bias", "fc2.weight"]
    assert state["conv2.weight"].shape == (64, 32, 3, 3)
