"""The examples that are not run elsewhere: the attention heatmap's data and its PNG."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from minitf.translate import Translator
from test_train_common import tiny_trainer

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
    return trainer.out_dir / "last.npz"


def test_cross_attention_weights_are_distributions_over_the_source(checkpoint):
    heatmap = load_example("attention_heatmap")
    translator = Translator.from_checkpoint(str(checkpoint))
    source, output, weights = heatmap.cross_attention(translator, "twenty-one thousand")
    assert weights.shape == (len(output), len(source))
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)
    assert "".join(source) == "twenty-one thousand"


def test_heatmap_png_is_written(checkpoint, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    out = tmp_path / "attention.png"
    monkeypatch.setattr(sys, "argv", ["attention_heatmap", "--checkpoint", str(checkpoint),
                                      "--sentence", "seven hundred", "--output", str(out)])
    load_example("attention_heatmap").main()
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
