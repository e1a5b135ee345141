"""examples/sentence_similarity.py: runs on a tiny random folder (always), and on all-MiniLM-L6-v2 pairs
each sentence with the one written to mean the same (skipped without the model package)."""
import importlib.util
from pathlib import Path

import pytest

from bert_files import minilm_folder, tiny_bert_folder

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sentence_similarity.py"


def example():
    spec = importlib.util.spec_from_file_location("sentence_similarity", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_runs_on_a_tiny_random_model(tmp_path, capsys):
    result = example().main([str(tiny_bert_folder(tmp_path / "tiny")), "--query", "the cat"])
    assert len(result["neighbours"]) == 8 and sorted(result["ranking"]) == list(range(8))
    assert "query: the cat" in capsys.readouterr().out


def test_draws_an_attention_map(tmp_path):
    pytest.importorskip("matplotlib", reason="install matplotlib to draw")
    out = tmp_path / "attention.png"
    example().main([str(tiny_bert_folder(tmp_path / "tiny")), "--attention-png", str(out), "--layer", "1"])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_minilm_pairs_the_paraphrases(tmp_path_factory):
    folder = minilm_folder(tmp_path_factory)
    result = example().main([str(folder)])
    assert [j for j, _ in result["neighbours"]] == [1, 0, 3, 2, 5, 4, 7, 6]
    assert set(result["ranking"][:2]) == {6, 7}
