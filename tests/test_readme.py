"""The Python examples in README.md run as written (the GPU line only with a GPU)."""
import linecache
import re
import subprocess
import sys
from pathlib import Path

import pytest

from minitf import backend
from minitf.nn import Seq2SeqTransformer

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def run(block: str, namespace: dict, name: str = "<README.md example>") -> None:
    """exec a README block; its source is registered for inspect (hypothesis reads it)."""
    linecache.cache[name] = (len(block), None, block.splitlines(keepends=True), name)
    exec(compile(block, name, "exec"), namespace)


def test_engine_example_runs_as_pasted():
    """The block runs unchanged on a CPU-only machine: its GPU line is guarded."""
    block = next(b for b in python_blocks() if "F.gelu" in b)
    namespace: dict = {}
    run(block, namespace)
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


def test_torch_parity_example_without_torch_says_how_to_get_it():
    example = README.parent / "examples" / "torch_parity.py"
    code = ("import runpy, sys; sys.modules['torch'] = None; "
            f"runpy.run_path({str(example)!r}, run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "pip install torch" in result.stderr


def test_transformer_forward_documents_the_mask_and_shapes():
    doc = Seq2SeqTransformer.forward.__doc__ or ""
    assert "src_mask" in doc and "True at real" in doc and "(B, T, V)" in doc


def test_distributed_training_loop_example_runs_on_one_process():
    import numpy as np

    import minitf.functional as F
    from minitf.nn import Seq2SeqTransformer, TransformerConfig
    from minitf.optim import AdamW

    block = next(b for b in python_blocks() if "DistributedDataParallel" in b)
    model = Seq2SeqTransformer(TransformerConfig(20, 20, d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1,
                                                 d_ff=16, dropout=0.0, max_len=16))
    ids = np.random.default_rng(0).integers(3, 20, (2, 5))
    namespace = dict(model=model, F=F, optimizer=AdamW(model.parameters()), src=ids, tgt_in=ids, tgt_out=ids,
                     mask=np.ones((2, 5), dtype=bool), n_target_tokens=10)
    before = model.parameters()[0].data.copy()
    run(block, namespace, "<README.md distributed example>")
    assert not np.array_equal(before, model.parameters()[0].data)


def test_op_harness_example_runs_and_catches_a_wrong_backward():
    """The OpTest block, after the block that defines `softplus`, as a user's test file would hold them."""
    blocks = python_blocks()
    op_block = next(b for b in blocks if "assert_grad_close" in b)
    harness_block = next(b for b in blocks if "OpTest(" in b)
    namespace: dict = {}
    run(op_block, namespace)
    run(harness_block, namespace, "<README.md harness example>")
    for check in namespace["SOFTPLUS"].checks:
        if check == "cupy" and not backend.cuda_available():
            continue
        namespace["test_softplus"](check)
    run(op_block.replace("g / (1 + xp.exp(-x.data))", "g / (1 + xp.exp(x.data))"), namespace,
        "<README.md example, wrong backward>")
    run(harness_block, namespace, "<README.md harness example, wrong backward>")
    with pytest.raises(AssertionError):
        namespace["test_softplus"]("gradient")


def test_higher_order_examples_run_and_gradgradcheck_catches_the_wrong_rule(capsys):
    blocks = python_blocks()
    namespace: dict = {}
    run(next(b for b in blocks if "func.hessian(critic)" in b), namespace)
    assert namespace["x"].grad is not None and namespace["hessian"].shape == (3, 3)
    run(next(b for b in blocks if "def cube(" in b), namespace, "<README.md gradgradcheck example>")
    assert "gradient mismatch" in capsys.readouterr().out


def test_pretrained_example_runs_on_a_folder_written_by_minitf(tmp_path, capsys):
    import json

    import minitf
    from minitf.pretrained import GPT2Config, GPT2LMHeadModel
    from hf_files import hf_file
    model = GPT2LMHeadModel(GPT2Config(vocab_size=259, n_positions=64, n_embd=8, n_layer=1, n_head=2))
    (tmp_path / "config.json").write_text(json.dumps(model.config.to_dict()))
    minitf.save(model.state_dict(remove_duplicate=True), tmp_path / "model.safetensors")
    hf_file(tmp_path)  # a tokenizer.json
    block = next(b for b in python_blocks() if "load_gpt2" in b)
    namespace: dict = {}
    run(block.replace('"path/to/gpt2"', repr(str(tmp_path))), namespace)
    assert namespace["logits"].shape == (1, 22, 259) and namespace["out"].shape == (1, 42)
    assert capsys.readouterr().out.startswith("The meaning of life is")
