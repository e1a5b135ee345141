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

import numpy as np
import pytest

import minitf as mt
from minitf import func
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


def test_char_lstm_loss_falls_and_samples_text_of_the_alphabet():
    char_lstm = load_example("char_lstm")
    args = char_lstm.parse_args(["--steps", "150", "--warmup", "10", "--block", "16", "--d-embed", "8",
                                 "--hidden", "32", "--layers", "2", "--batch-size", "16", "--eval-batch", "16",
                                 "--eval-every", "75", "--new-tokens", "30", "--prompt", "two", "--lr", "1e-2"])
    result = char_lstm.train(args)
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


def _central_differences(loss_of, params, eps=1e-6):
    """d loss_of() / d params by central differences, moving each parameter's entries in place."""
    grads = []
    for p in params:
        g = np.zeros_like(p.data)
        for i in np.ndindex(p.shape):
            saved = p.data[i]
            p.data[i] = saved + eps
            up = loss_of()
            p.data[i] = saved - eps
            down = loss_of()
            p.data[i] = saved
            g[i] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


def test_maml_meta_gradient_is_the_derivative_of_the_post_adaptation_loss():
    """Second-order MAML's meta-gradient (through two inner steps) equals central differences of the
    post-adaptation loss; first-order MAML's, which drops the Hessian term, does not."""
    maml = load_example("maml_sinusoid")
    rng = np.random.default_rng(3)
    params = maml.init_params(rng, (1, 6, 5, 1), dtype=np.float64)
    support, query = maml.split(*maml.sample_tasks(rng, 3, 8, dtype=np.float64), 4)

    def post_adaptation_loss():
        return maml.meta_loss(params, support, query, 0.1, 2).item()

    expected = _central_differences(post_adaptation_loss, params)
    second = maml.meta_gradient(params, support, query, 0.1, 2)
    first = maml.meta_gradient(params, support, query, 0.1, 2, first_order=True)
    for g, fd in zip(second, expected):
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
    gap = max(np.abs(f - fd).max() / np.abs(fd).max() for f, fd in zip(first, expected))
    assert gap > 1e-2, gap


def test_maml_meta_training_lowers_the_post_adaptation_loss(capsys):
    maml = load_example("maml_sinusoid")
    result = maml.main(["--steps", "150", "--eval-every", "150", "--eval-tasks", "50"])
    (_, pre0, post0), (_, pre, post) = result["history"]
    assert post < 0.8 * post0 and post < pre, result["history"]
    assert "after 10 step(s)" in capsys.readouterr().out


def test_hessian_spectrum_lanczos_finds_the_eigenvalues_of_the_explicit_hessian(capsys):
    """20 Hessian-vector products of a 29-parameter network give the top eigenvalues and the smallest of
    numpy.linalg.eigvalsh of the Hessian that func.hessian forms, at initialization and after training."""
    spectrum = load_example("hessian_spectrum")
    results = spectrum.main(["--hidden", "3", "--points", "100", "--steps", "100", "--iterations", "20",
                             "--top", "4", "--check"])
    for stage in ("init", "trained"):
        found = results[stage]
        np.testing.assert_allclose(found["top"], found["exact"], rtol=1e-7, atol=1e-9)
        assert len(found["top"]) == 4 and found["top"][0] > found["top"][1] > 0 > found["min"]
    assert "29 parameters" in capsys.readouterr().out


def test_lanczos_on_known_spectra():
    """n steps give all n eigenvalues; fewer give the extreme ones; a spectrum of 3 distinct values
    exhausts the Krylov space after 3 steps."""
    spectrum = load_example("hessian_spectrum")
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    eigenvalues = np.sort(np.concatenate([[5.0, 3.0, 2.5], rng.uniform(-1, 1, 27)]))
    matrix = (q * eigenvalues) @ q.T
    np.testing.assert_allclose(spectrum.lanczos(lambda v: matrix @ v, 30, 30, rng), eigenvalues, atol=1e-10)
    np.testing.assert_allclose(spectrum.lanczos(lambda v: matrix @ v, 30, 20, rng)[-3:], [2.5, 3, 5], atol=1e-10)
    three = np.repeat([-1.0, 2.0, 4.0], 10)
    np.testing.assert_allclose(spectrum.lanczos(lambda v: three * v, 30, 30, rng), [-1, 2, 4], atol=1e-12)


def test_hessian_spectrum_explicit_hessian_is_the_derivative_of_the_gradient():
    """The Hessian the check forms (func.hessian, second order) equals central differences of the
    first-order gradient, so the comparison above checks Lanczos against the true Hessian."""
    spectrum = load_example("hessian_spectrum")
    rng = np.random.default_rng(1)
    sizes = (2, 3, 3, 2)
    loss = spectrum.make_loss(*spectrum.two_moons(50, rng), sizes)
    theta = spectrum.init_theta(sizes, rng) + 0.1 * rng.standard_normal(29)

    def gradient(at):
        t = mt.tensor(at, requires_grad=True)
        loss(t).backward()
        return t.grad

    eye = np.eye(theta.size) * 1e-6
    columns = [(gradient(theta + e) - gradient(theta - e)) / 2e-6 for e in eye]
    hessian = func.hessian(loss)(mt.tensor(theta)).numpy()
    np.testing.assert_allclose(hessian, np.stack(columns, axis=1), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh"])
def test_gradient_penalty_gradient_matches_pytorch_double_backward(activation):
    """The penalty's gradient with respect to the critic's weights (through d critic / d x_hat, taken
    with create_graph=True) equals PyTorch's float64 double backward on the same weights."""
    torch = pytest.importorskip("torch")
    wgan = load_example("gradient_penalty")
    mt.manual_seed(0)
    critic = wgan.mlp(2, 16, 1, activation).double()
    rng = np.random.default_rng(0)
    real, fake = rng.standard_normal((32, 2)), rng.standard_normal((32, 2))
    t = rng.uniform(size=(32, 1))
    penalty = wgan.gradient_penalty(critic, mt.tensor(real), mt.tensor(fake), t)
    penalty.backward()

    torch_activation = {"relu": torch.nn.ReLU, "leaky_relu": lambda: torch.nn.LeakyReLU(0.2), "tanh": torch.nn.Tanh}
    reference = torch.nn.Sequential(*[torch.nn.Linear(m.in_features, m.out_features) if isinstance(m, mt.nn.Linear)
                                      else torch_activation[activation]() for m in critic]).double()
    with torch.no_grad():
        for theirs, ours in zip(reference.parameters(), critic.parameters()):
            theirs.copy_(torch.from_numpy(ours.numpy()))
    x_hat = torch.from_numpy(t * real + (1 - t) * fake).requires_grad_()
    (slopes,) = torch.autograd.grad(reference(x_hat).sum(), x_hat, create_graph=True)
    expected = ((slopes.norm(2, dim=1) - 1) ** 2).mean()
    expected.backward()
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-12)
    for theirs, ours in zip(reference.parameters(), critic.parameters()):
        # (Leaky) ReLU's slopes do not depend on the biases but through the masks: their gradients are 0 or None
        got = np.zeros(ours.shape) if ours.grad is None else ours.grad
        want = np.zeros(ours.shape) if theirs.grad is None else theirs.grad.numpy()
        assert np.abs(got).max() > 0 or (ours.ndim == 1 and (activation != "tanh" or ours is critic[-1].bias))
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_gradient_penalty_training_moves_samples_toward_the_ring(capsys):
    wgan = load_example("gradient_penalty")
    result = wgan.main(["--steps", "60", "--log-every", "30", "--hidden", "32", "--batch", "64",
                        "--eval-samples", "500"])
    first, last = result["history"][0], result["history"][-1]
    assert last["mean_distance"] < 0.75 * first["mean_distance"], result["history"]
    assert np.isfinite(last["wasserstein"]) and last["penalty"] >= 0
    assert "Wasserstein estimate" in capsys.readouterr().out
