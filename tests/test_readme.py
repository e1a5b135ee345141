"""The Python examples in README.md run as written (the GPU line only with a GPU)."""
import linecache
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def run(block: str, namespace: dict, name: str = "<README.md example>") -> None:
    """exec a README block; its source is registered for inspect (hypothesis reads it)."""
    linecache.cache[name] = (len(block), None, block.splitlines(keepends=True), name)
    exec(compile(block, name, "exec"), namespace)


def test_engine_example_runs():
    block = next(b for b in python_blocks() if "F.gelu" in b)
    cpu_only = "\n".join(line for line in block.splitlines() if '"cuda"' not in line)
    namespace: dict = {}
    run(cpu_only, namespace)
    assert namespace["w"].grad.shape == (32, 16)


def test_custom_op_gradcheck_example_runs_and_catches_a_wrong_backward():
    block = next(b for b in python_blocks() if "assert_grad_close" in b)
    namespace: dict = {}
    run(block, namespace)
    namespace["test_softplus_gradient"]()  # hypothesis runs it on drawn arrays
    wrong = block.replace("g / (1 + xp.exp(-x.data))", "g / (1 + xp.exp(x.data))")
    assert wrong != block
    run(wrong, namespace, "<README.md example, wrong backward>")
    with pytest.raises(AssertionError):
        namespace["test_softplus_gradient"]()
