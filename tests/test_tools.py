"""The benchmark scripts in tools/ run end to end (on the tiny config; no timing is checked)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def test_bench_step_runs_minitf_on_the_tiny_config():
    done = subprocess.run([sys.executable, str(TOOLS / "bench_step.py"), "--config", "tiny", "--only", "minitf",
                           "--rounds", "2", "--repeats", "1", "--warmup", "0"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in done.stdout.splitlines()
            if line.startswith("| ") and "---" not in line}
    assert rows["parameters"] == "115,968"
    assert float(rows["training step (ms)"].replace(",", "")) > 0
    assert "of 2 alternating rounds" in done.stdout
    assert "machine: " in done.stdout and "NumPy " in done.stdout


def test_bench_distributed_predicts_scaling_from_given_parts():
    done = subprocess.run([sys.executable, str(TOOLS / "bench_distributed.py"), "--part", "model", "--step-ms", "700",
                           "--grad-mb", "43", "--hidden", "0.5", "--last-bucket-mb", "18"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("| 10 Gb/s Ethernet"))
    efficiencies = [int(cell.strip().rstrip("%")) for cell in row.split("|")[2:-1]]
    assert len(efficiencies) == 6 and efficiencies == sorted(efficiencies, reverse=True)
    assert 50 < efficiencies[-1] < 100


def test_bench_distributed_measures_allreduce_over_mpi():
    pytest.importorskip("mpi4py")
    done = subprocess.run([sys.executable, str(TOOLS / "bench_distributed.py"), "--part", "allreduce", "--repeats", "1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "| 67,108,864 |" in done.stdout


def test_bench_bpe_merges_runs_on_short_words_against_a_git_revision():
    in_git = subprocess.run(["git", "-C", str(TOOLS), "rev-parse", "HEAD"], capture_output=True).returncode == 0
    baseline = ["--baseline", "HEAD"] if in_git else []
    done = subprocess.run([sys.executable, str(TOOLS / "bench_bpe_merges.py"), "--lengths", "2000", "4000",
                           "--vocab-size", "400", "--repeats", "1", *baseline],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [line.split("|")[1:-1] for line in done.stdout.splitlines() if line.startswith("| one word")]
    assert [row[0].strip() for row in rows] == ["one word of 2,000 letters", "one word of 4,000 letters"]
    assert all(float(cell) >= 0 for row in rows for cell in row[1:])
    assert all(len(row) == (4 if in_git else 2) for row in rows)


def write_tiny_multi30k(folder: Path) -> None:
    import gzip
    words = ["A man", "Ein Mann", "rides", "fährt", "a red bike.", "ein rotes Rad."]
    for split, count in (("train", 60), ("val", 6)):
        for lang, offset in (("de", 1), ("en", 0)):
            lines = [f"{words[(i + offset) % 6]} {words[(i * 7) % 6]} {i}\n" for i in range(count)]
            with gzip.open(folder / f"{split}.{lang}.gz", "wt", encoding="utf-8") as f:
                f.writelines(lines)


def test_bench_tokenizer_runs_alternated_rounds_with_a_baseline_tree(tmp_path):
    write_tiny_multi30k(tmp_path)
    root = str(TOOLS.parent)
    done = subprocess.run([sys.executable, str(TOOLS / "bench_tokenizer.py"), "--data", str(tmp_path),
                           "--vocab-size", "300", "--repeats", "2", "--passes", "2", "--no-write",
                           "--baseline-tree", root],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "machine: " in done.stdout and "NumPy " in done.stdout and "RAYON_NUM_THREADS=1" in done.stdout
    rounds = [line for line in done.stdout.splitlines() if line.startswith(("| 1 |", "| 2 |"))]
    assert len(rounds) == 2 and all("minitf / baseline" in line for line in rounds)
    merges = int(next(line for line in done.stdout.splitlines() if "identical to minitf" in line)
                 .split(": ")[1].split(" / ")[0])
    assert merges > 0  # the same tree as baseline learns the same merges
    assert "baseline merges identical to minitf's: %d / %d" % (merges, merges) in done.stdout


def test_bench_tokenizer_profile_lists_the_stages(tmp_path):
    write_tiny_multi30k(tmp_path)
    done = subprocess.run([sys.executable, str(TOOLS / "bench_tokenizer.py"), "--data", str(tmp_path),
                           "--vocab-size", "300", "--repeats", "1", "--profile"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    stages = [line.split("|")[1].strip() for line in done.stdout.splitlines() if line.startswith("| ")]
    assert "merge loop" in stages and stages[-1] == "sum of the stages in the total"
    assert all(float(line.split("|")[2]) >= 0 for line in done.stdout.splitlines()
               if line.startswith("| ") and "---" not in line and "CPU s" not in line)


def test_zip_bomb_script_reports_the_refusal():
    done = subprocess.run([sys.executable, str(TOOLS / "zip_bomb.py"), "--gigabytes", "0.25"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "CheckpointError" in done.stdout and "zip bomb" in done.stdout and "peak RSS" in done.stdout


@pytest.mark.slow
def test_bench_ops_runs_a_few_cases_with_or_without_torch():
    done = subprocess.run([sys.executable, str(TOOLS / "bench_ops.py"), "--only", "silu", "--only", "nll_loss",
                           "--only", "*/27x32x3x10", "--repeats", "1", "--warmup", "0"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    names = [line.split()[0] for line in done.stdout.splitlines() if line and line.split()[0] in
             ("silu", "nll_loss", "nll_loss_weighted", "embedding/27x32x3x10", "embedding_add_at/27x32x3x10")]
    assert len(names) == 5, done.stdout
    assert "BLAS" in done.stdout and "np.add.at (before) -> add_rows (now)" in done.stdout


@pytest.mark.slow
def test_bench_ops_runs_every_case_on_the_tiny_scale():
    done = subprocess.run([sys.executable, str(TOOLS / "bench_ops.py"), "--scale", "tiny", "--repeats", "1",
                           "--warmup", "0"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    listed = subprocess.run([sys.executable, str(TOOLS / "bench_ops.py"), "--scale", "tiny", "--list"],
                            capture_output=True, text=True, timeout=120).stdout.split()
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line.split()[:1] in ([n] for n in listed)}
    for name in ("argmax", "topk", "gather", "scatter_add", "unsqueeze+flatten", "einsum", "cumprod", "logsumexp",
                 "var", "std", "norm", "multinomial", "silu", "nll_loss", "cosine_similarity"):
        assert name in rows, f"{name} missing from {sorted(rows)}"
    assert rows["argmax"].endswith("fwd only") and not rows["sort"].endswith("fwd only")


@pytest.mark.slow
def test_bench_ops_runs_the_cnn_training_step_and_conv_cases():
    done = subprocess.run([sys.executable, str(TOOLS / "bench_ops.py"), "--only", "cnn_step/digits*",
                           "--only", "conv2d/digits_conv1", "--only", "max_pool2d/digits", "--repeats", "1",
                           "--warmup", "0"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    names = {line.split()[0] for line in done.stdout.splitlines() if line}
    assert {"cnn_step/digits8x8", "conv2d/digits_conv1", "max_pool2d/digits"} <= names, done.stdout


@pytest.mark.slow  # a 5-step training run and a subprocess: about 8 s on a busy 2-core box
def test_sweep_decoding_tabulates_the_metric_per_beam_and_alpha(tmp_path):
    from minitf.translation import Translator
    from minitf.translation.metrics import chrf
    from tiny_runs import tiny_trainer

    trainer = tiny_trainer(tmp_path / "run", epochs=1, max_steps=5)
    trainer.fit()
    checkpoint = trainer.out_dir / "last.safetensors"
    pairs = trainer.splits["test"][:6]
    too_long = "seven hundred " * 100
    (tmp_path / "src").write_text("".join(s + "\n" for s, _ in pairs) + too_long + "\n", encoding="utf-8")
    (tmp_path / "ref").write_text("".join(r + "\n" for _, r in pairs) + "x\n", encoding="utf-8")
    done = subprocess.run([sys.executable, str(TOOLS / "sweep_decoding.py"), "--checkpoint", str(checkpoint),
                           "--src", str(tmp_path / "src"), "--ref", str(tmp_path / "ref"), "--beams", "1,2",
                           "--alphas", "0,1.5", "--metric", "chrf"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    table = [line.strip("|").split("|") for line in done.stdout.splitlines() if line.startswith("| ")]
    assert [cell.strip() for cell in table[0]] == ["beam", "alpha 0", "alpha 1.5", "seconds"]
    cells = {int(row[0]): [float(c) for c in row[1:3]] for row in table[1:]}
    translator = Translator.from_checkpoint(str(checkpoint))
    sources, refs = [s for s, _ in pairs], [r for _, r in pairs] + ["x"]
    greedy = chrf(translator.translate(sources) + [""], refs)  # the too long line: left empty
    assert cells[1] == [round(greedy, 2)] * 2
    for alpha, cell in zip((0.0, 1.5), cells[2]):
        beam = translator.translate(sources, beam_size=2, length_penalty=alpha) + [""]
        assert cell == round(chrf(beam, refs), 2)


def test_bench_bpe_dropout_times_plain_and_dropout_encoding(tmp_path):
    import gzip
    for name, text in [("a.gz", "Ein alter Hund schläft vor der Tür.\n"), ("b.txt", "An old dog sleeps by the door.\n")]:
        data = (text * 50).encode()
        (tmp_path / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    done = subprocess.run([sys.executable, str(TOOLS / "bench_bpe_dropout.py"), "--data", str(tmp_path), "--files",
                           "a.gz", "b.txt", "--vocab-size", "300", "--dropout", "0.3", "--rounds", "1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = [line.split("|")[1:-1] for line in done.stdout.splitlines() if line.startswith("| a.gz") or
            line.startswith("| b.txt")]
    assert len(rows) == 2
    for row in rows:
        assert row[1].strip() == "50"
        plain, dropout = int(row[6].replace(",", "")), int(row[7].split("(")[0].replace(",", ""))
        assert dropout > plain > 0


def write_tiny_checkpoint(folder: Path) -> Path:
    """A random tiny model (tests/tiny_runs.py) saved as a checkpoint, and a source file (one line blank)."""
    import gzip

    import minitf
    from minitf.nn import Seq2SeqTransformer
    from minitf.translation.checkpoint import save_checkpoint
    from tiny_runs import TINY_MODEL_CONFIG, TINY_TOKENIZER

    minitf.manual_seed(0)
    model = Seq2SeqTransformer(TINY_MODEL_CONFIG)
    path = save_checkpoint(folder / "tiny.safetensors", model.state_dict(remove_duplicate=True),
                           {"model_config": TINY_MODEL_CONFIG.to_dict(), "tokenizer": TINY_TOKENIZER.to_dict()})
    lines = ["ein Hund", "zwei Katzen", "   ", "ein Mann", "eine Frau", "Kinder", "ja"]
    with gzip.open(folder / "src.de.gz", "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def decode_table(stdout: str) -> dict:
    return {line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
            for line in stdout.splitlines() if line.startswith("| ") and "---" not in line}


def run_bench_decode(tmp_path, *extra) -> subprocess.CompletedProcess:
    checkpoint = write_tiny_checkpoint(tmp_path)
    return subprocess.run([sys.executable, str(TOOLS / "bench_decode.py"), "--checkpoint", str(checkpoint),
                           "--src", str(tmp_path / "src.de.gz"), "--quick", "--threads", "1", *extra],
                          capture_output=True, text=True, timeout=300)


def test_bench_decode_times_minitf_greedy_and_beam_on_a_tiny_checkpoint(tmp_path):
    done = run_bench_decode(tmp_path, "--only", "minitf")
    assert done.returncode == 0, done.stderr
    rows = decode_table(done.stdout)
    assert set(rows) == {"search", "greedy", "beam 2"}
    assert all(float(cell.split()[0]) > 0 for cell in rows["greedy"] + rows["beam 2"])
    assert "6 sentences (1 skipped" in done.stdout  # the blank line
    assert "machine: " in done.stdout and "load average" in done.stdout


@pytest.mark.slow  # about 6 s: torch's import in each worker
def test_bench_decode_torch_decoder_agrees_with_minitf_on_a_tiny_checkpoint(tmp_path):
    pytest.importorskip("torch")
    done = run_bench_decode(tmp_path)
    assert done.returncode == 0, done.stderr
    rows = decode_table(done.stdout)
    assert len(rows["greedy"]) == 5 and float(rows["greedy"][4].split()[0]) > 0  # minitf / PyTorch
    assert "greedy: 6 / 6 sentences decode to the same tokens" in done.stdout
    assert "beam 2: 6 / 6 sentences decode to the same tokens" in done.stdout


def test_bench_decode_runs_minitf_alone_without_torch(tmp_path):
    blocker = tmp_path / "no_torch"
    blocker.mkdir()
    (blocker / "torch.py").write_text("raise ImportError('no torch here')\n", encoding="utf-8")
    checkpoint = write_tiny_checkpoint(tmp_path)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, str(TOOLS / "bench_decode.py"), "--checkpoint", str(checkpoint),
                           "--src", str(tmp_path / "src.de.gz"), "--quick", "--threads", "1"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert "PyTorch is not installed: minitf only" in done.stdout
    assert set(decode_table(done.stdout)) == {"search", "greedy", "beam 2"}


def test_sweep_recipe_trains_candidates_in_parallel_and_reports_validation_scores(tmp_path, monkeypatch):
    import gzip
    import importlib.util

    from minitf.data.synthetic import english_number, german_number

    spec = importlib.util.spec_from_file_location("sweep_recipe", TOOLS / "sweep_recipe.py")
    sweep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sweep)
    for split, numbers in (("train", range(100_000, 500_000, 1_001)), ("val", range(100_500, 120_000, 1_003))):
        for lang, words in (("de", german_number), ("en", english_number)):
            with gzip.open(tmp_path / f"{split}.{lang}.gz", "wt", encoding="utf-8") as f:
                f.writelines(words(n) + "\n" for n in numbers)
    tiny = dict(d_model=32, d_ff=64, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, vocab_size=300)
    monkeypatch.setattr(sweep, "BASE", dict(max_len=40, max_tokens=256, epochs=4, keep_checkpoints=2,
                                            bleu_sentences=5, warmup=10, lr=5e-3))
    monkeypatch.setattr(sweep, "CANDIDATES", {"a": dict(tiny, dropout=0.1), "b": dict(tiny, word_dropout=0.2)})
    out = tmp_path / "sweep"
    argv = ["--data", str(tmp_path), "--out-dir", str(out), "--minutes", "5", "--jobs", "2", "--threads", "1",
            "--average", "2"]
    sweep.main(argv)
    assert [r["epoch"] for r in map(json.loads, (out / "b" / "log.jsonl").read_text().splitlines())
            if r.get("event") == "eval"] == [1, 2, 3, 4]
    assert "--word-dropout" in sweep.train_command(tmp_path, out, "b", 5)
    val = (sweep.read_parallel(tmp_path / "val.de.gz", tmp_path / "val.en.gz").sources,
           sweep.read_parallel(tmp_path / "val.de.gz", tmp_path / "val.en.gz").targets)
    row = sweep.summarize("a", out, val, 2)
    assert row["epochs"] == 4 and row["val_average"] > 0 and row["val_average"] == round(sweep.val_bleu(out / "a" / "average_last2.safetensors",
                                                                             val), 2)
    sweep.main(argv + ["--report-only", "--only", "b"])  # no training: the table of the finished run


def test_bench_higher_order_runs_minitf_on_the_tiny_config():
    done = subprocess.run([sys.executable, str(TOOLS / "bench_higher_order.py"), "--config", "tiny", "--rounds", "1",
                           "--repeats", "1", "--warmup", "0", "--only", "minitf"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    rows = {line.split("|")[1].strip(): float(line.split("|")[2]) for line in done.stdout.splitlines()
            if line.startswith("| hvp") or line.startswith("| penalty")}
    assert set(rows) == {"hvp", "penalty"} and all(ms > 0 for ms in rows.values())


def test_bench_rnn_runs_minitf_on_the_tiny_config():
    done = subprocess.run([sys.executable, str(TOOLS / "bench_rnn.py"), "--config", "tiny", "--rounds", "1",
                           "--repeats", "1", "--warmup", "0", "--only", "minitf"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    rows = {line.split("|")[1].strip(): float(line.split("|")[2]) for line in done.stdout.splitlines()
            if line.startswith("| lstm") or line.startswith("| gru")}
    assert set(rows) == {"lstm", "gru", "lstm_cell_loop"} and all(ms > 0 for ms in rows.values())


def run_bench_pretrained(folder: Path, *extra: str) -> dict:
    done = subprocess.run([sys.executable, str(TOOLS / "bench_pretrained.py"), str(folder), "--config", "tiny",
                           "--rounds", "1", "--repeats", "1", "--warmup", "0", *extra], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "machine: " in done.stdout
    return {line.split("|")[1].strip(): [float(c.replace(",", "")) for c in line.split("|")[2:-1]]
            for line in done.stdout.splitlines() if line.startswith("| ") and "---" not in line
            and not line.startswith("| measure")}


def test_bench_pretrained_runs_minitf_on_a_tiny_random_folder(tmp_path):
    import numpy as np

    from bert_files import TINY_CONFIG, tiny_bert_folder
    from minitf.pretrained._bert_config import BertConfig
    from minitf.pretrained._bert_weights import expected_shapes
    rows = run_bench_pretrained(tiny_bert_folder(tmp_path / "tiny"), "--only", "minitf")
    assert set(rows) == {"encode (sentences/s)", "fine-tuning step (ms)", "parameters (MB)",
                         "RSS growth on load (MB)"}
    assert all(len(v) == 1 for v in rows.values())
    assert rows["encode (sentences/s)"][0] > 0 and rows["fine-tuning step (ms)"][0] > 0
    shapes = expected_shapes(BertConfig.from_dict(TINY_CONFIG), pooler=True).values()
    floats = sum(int(np.prod(s)) for s in shapes)  # the tiny BERT's float32 weights, pooler included
    assert rows["parameters (MB)"][0] == pytest.approx(floats * 4 / 2**20, abs=5e-4)


@pytest.mark.slow
def test_bench_pretrained_compares_with_sentence_transformers_on_a_tiny_folder(tmp_path):
    pytest.importorskip("sentence_transformers", reason="pip install -e '.[pretrained]' to compare")
    from bert_files import tiny_bert_folder
    rows = run_bench_pretrained(tiny_bert_folder(tmp_path / "tiny"))
    assert all(len(v) == 3 and v[0] > 0 and v[1] > 0 for v in rows.values())
    assert rows["parameters (MB)"][2] == 1.0  # the same weights in both


def run_finetune_case(folder: Path, *extra: str) -> tuple[dict, list]:
    """The finetune case's two tables: {measure: cells} and the per-round rows (cells)."""
    done = subprocess.run([sys.executable, str(TOOLS / "bench_pretrained.py"), str(folder), "--case", "finetune",
                           "--config", "tiny", *extra], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "machine: " in done.stdout and "epochs 2, batch_size 4, lr 5e-05" in done.stdout

    def cells(block: str) -> list[list[str]]:
        return [[c.strip() for c in line.split("|")[1:-1]] for line in block.splitlines()
                if line.startswith("| ") and "---" not in line]
    summary, per_round = done.stdout.split("\n\n")
    rows = cells(summary)
    return {r[0]: r[1:] for r in rows[1:]}, cells(per_round)[1:]


def tiny_group_sizes(classes: int = 4) -> list[int]:
    """The tiny BERT's weight-decayed and other parameters (pooler included) with the example's head."""
    import numpy as np

    from bert_files import TINY_CONFIG
    from minitf.pretrained._bert_config import BertConfig
    from minitf.pretrained._bert_weights import expected_shapes
    shapes = expected_shapes(BertConfig.from_dict(TINY_CONFIG), pooler=True)
    decayed = sum(int(np.prod(s)) for k, s in shapes.items() if len(s) >= 2 and "LayerNorm" not in k)
    hidden = TINY_CONFIG["hidden_size"]
    return [decayed + hidden * classes, sum(int(np.prod(s)) for s in shapes.values()) - decayed + classes]


def test_bench_pretrained_finetune_case_runs_minitf_rounds_with_their_seeds(tmp_path):
    from bert_files import tiny_bert_folder
    summary, rounds = run_finetune_case(tiny_bert_folder(tmp_path / "tiny"), "--only", "minitf", "--rounds", "2",
                                        "--seed", "5")
    assert list(summary) == ["test accuracy", "validation accuracy, epoch 1", "validation accuracy, epoch 2",
                             "last epoch's train loss", "ms per step (median)",
                             "total seconds (training and evaluation)", "test accuracy, lowest to highest round",
                             "trained parameters (decayed + not)"]
    assert all(len(v) == 1 for v in summary.values())
    assert 0 <= float(summary["test accuracy"][0]) <= 1 and float(summary["ms per step (median)"][0]) > 0
    assert summary["trained parameters (decayed + not)"] == [" + ".join(f"{n:,}" for n in tiny_group_sizes())]
    low, high = (float(a) for a in summary["test accuracy, lowest to highest round"][0].split(" to "))
    assert low == min(float(r[3]) for r in rounds) and high == max(float(r[3]) for r in rounds)
    assert [r[:3] for r in rounds] == [["0", "5", "minitf"], ["1", "6", "minitf"]]
    assert all(len(r[4].split(", ")) == 2 for r in rounds)  # a validation accuracy per epoch


@pytest.mark.slow  # about 20 s: torch's and transformers' import in two workers
def test_bench_pretrained_finetune_case_compares_with_transformers_on_a_tiny_folder(tmp_path):
    pytest.importorskip("transformers", reason="pip install -e '.[pretrained]' to compare")
    from bert_files import tiny_bert_folder
    summary, rounds = run_finetune_case(tiny_bert_folder(tmp_path / "tiny"), "--rounds", "2", "--threads", "1")
    assert all(len(v) == 3 for v in summary.values())
    assert all(0 <= float(a) <= 1 for a in summary["test accuracy"][:2])
    assert float(summary["ms per step (median)"][2]) > 0 and summary["test accuracy"][2] == ""
    sizes = " + ".join(f"{n:,}" for n in tiny_group_sizes())
    assert summary["trained parameters (decayed + not)"] == [sizes, sizes, ""]  # the same groups in both
    assert [r[1:3] for r in rounds] == [["0", "minitf"], ["1", "torch"]]  # who goes first alternates
    assert all(float(r[-1]) > 0 for r in rounds)
