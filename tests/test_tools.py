"""The benchmark scripts in tools/ run end to end (on the tiny config; no timing is checked)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_bench_ops_runs_a_few_cases_with_or_without_torch():
    done = subprocess.run([sys.executable, str(TOOLS / "bench_ops.py"), "--only", "silu", "--only", "nll_loss",
                           "--only", "*/27x32x3x10", "--repeats", "1", "--warmup", "0"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    names = [line.split()[0] for line in done.stdout.splitlines() if line and line.split()[0] in
             ("silu", "nll_loss", "nll_loss_weighted", "embedding/27x32x3x10", "embedding_add_at/27x32x3x10")]
    assert len(names) == 5, done.stdout
    assert "BLAS" in done.stdout and "np.add.at (before) -> add_rows (now)" in done.stdout
