"""examples/finetune_classifier.py: the generated data set's splits, the schedule, and training on a tiny
random folder (the loss falls; always), and on all-MiniLM-L6-v2 a few steps of full fine-tuning reach a
test accuracy far above chance on held-out templates and words (skipped without the model package)."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from bert_files import VOCAB, minilm_folder, tiny_bert_folder, tiny_file

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "finetune_classifier.py"


def example():
    spec = importlib.util.spec_from_file_location("finetune_classifier", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_folder(path: Path, ex) -> Path:
    """A tiny random BERT whose WordPiece vocabulary covers every word the generator writes."""
    vocab = VOCAB + [w for w in ex.vocabulary() if w not in VOCAB]
    folder = tiny_bert_folder(path, config={"vocab_size": len(vocab), "max_position_embeddings": 32})
    tiny_file(folder, model__vocab={t: i for i, t in enumerate(vocab)}, model__max_input_chars_per_word=100)
    return folder


def test_splits_are_seeded_balanced_and_test_words_are_held_out():
    ex = example()
    texts, labels = ex.make_split("train", 40, seed=3)
    assert (texts, list(labels)) == (ex.make_split("train", 40, 3)[0], list(ex.make_split("train", 40, 3)[1]))
    assert texts != ex.make_split("train", 40, seed=4)[0]
    assert np.bincount(labels).tolist() == [10, 10, 10, 10]
    test_texts, test_labels = ex.make_split("test", 200, seed=3)
    for topic in ex.LABELS:
        train_things, train_events = ex.words(topic, "train")
        test_things, test_events = ex.words(topic, "test")
        assert not set(train_things) & set(test_things) and not set(train_events) & set(test_events)
        assert test_things and test_events
    for text, label in zip(test_texts, test_labels):  # each test sentence: a test template, held-out words
        things, events = ex.words(ex.LABELS[label], "test")
        assert any(t.format(thing=a, event=b) == text for t in ex.TEMPLATES["test"] for a in things for b in events)
    assert not set(test_texts) & set(ex.make_split("train", 800, seed=3)[0])


def test_warmup_then_linear_decay():
    factor = example().warmup_then_linear(warmup=3, total=10)
    assert [round(factor(s), 3) for s in range(11)] == [0.25, 0.5, 0.75, 1.0, 0.857, 0.714, 0.571, 0.429,
                                                         0.286, 0.143, 0.0]


def test_training_loss_falls_on_a_tiny_random_model(tmp_path, capsys):
    ex = example()
    folder = tiny_folder(tmp_path / "tiny", ex)
    history = ex.main([str(folder), "--epochs", "4", "--lr", "1e-2", "--batch-size", "16", "--train-size", "128",
                       "--val-size", "16", "--test-size", "16", "--max-length", "24"])
    losses = history["loss"]
    assert len(losses) == 32 and np.mean(losses[-8:]) < np.mean(losses[:8]) - 0.1
    assert len(history["val_accuracy"]) == 4 and 0 <= history["test_accuracy"] <= 1
    assert all(ms > 0 for ms in history["ms_per_step"])
    assert len(history["step_ms"]) == 32 and history["seconds"] * 1e3 > sum(history["step_ms"])
    assert sum(history["group_sizes"]) == sum(p.size for p in ex.load_bert(folder)[0].parameters()) + 8 * 4 + 4
    out = capsys.readouterr().out
    assert "epoch 4: train loss" in out and "test accuracy" in out


def test_freeze_encoder_trains_only_the_head(tmp_path):
    ex = example()
    folder = tiny_folder(tmp_path / "tiny", ex)
    before = {n: p.numpy().copy() for n, p in ex.load_bert(folder)[0].named_parameters()}
    captured = {}
    original = ex.Classifier

    class Spy(original):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            captured["model"] = self
    ex.Classifier = Spy
    ex.main([str(folder), "--freeze-encoder", "--epochs", "1", "--lr", "1e-2", "--train-size", "32",
             "--val-size", "8", "--test-size", "8", "--max-length", "24"])
    model = captured["model"]
    for name, p in model.encoder.named_parameters():
        np.testing.assert_array_equal(p.numpy(), before[name])
    assert model.head.weight.grad is not None and all(p.grad is None for p in model.encoder.parameters())


def test_decay_groups_leave_biases_and_layer_norm_undecayed(tmp_path):
    ex = example()
    model = ex.Classifier(ex.load_bert(tiny_folder(tmp_path / "tiny", ex))[0], 4)
    model.encoder.pooler.requires_grad_(False)
    decayed, other = ex.decay_groups(model.named_parameters(), weight_decay=0.5)
    assert (decayed["weight_decay"], other["weight_decay"]) == (0.5, 0.0)
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in decayed["params"]} == {
        n for n, p in model.named_parameters() if n.endswith(".weight") and "LayerNorm" not in n and "pooler" not in n}
    assert {names[id(p)] for p in other["params"]} == {
        n for n, p in model.named_parameters() if (n.endswith(".bias") or "LayerNorm" in n) and "pooler" not in n}


@pytest.mark.parametrize("flag, value", [("--warmup", "1.5"), ("--max-length", "2"), ("--epochs", "0")])
def test_bad_flags_are_refused(tmp_path, capsys, flag, value):
    with pytest.raises(SystemExit):
        example().main([str(tmp_path), flag, value])
    assert flag in capsys.readouterr().err


def test_minilm_fine_tuning_beats_chance_on_held_out_words(tmp_path_factory, capsys):
    folder = minilm_folder(tmp_path_factory)
    history = example().main([str(folder), "--epochs", "1", "--batch-size", "16", "--lr", "2e-4",
                              "--train-size", "128", "--val-size", "32", "--test-size", "64"])
    assert history["test_accuracy"] >= 0.6  # chance is 0.25
    assert "22,714,756 trained parameters" in capsys.readouterr().out
