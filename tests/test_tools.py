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


def test_zip_bomb_script_reports_the_refusal():
    done = subprocess.run([sys.executable, str(TOOLS / "zip_bomb.py"), "--gigabytes", "0.25"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "CheckpointError" in done.stdout and "zip bomb" in done.stdout and "peak RSS" in done.stdout
