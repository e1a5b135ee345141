"""tools/bench_tensor_ops.py runs end to end on the tiny scale (no timing is checked)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[1] / "tools" / "bench_tensor_ops.py"


def test_bench_tensor_ops_runs_minitf_on_the_tiny_scale():
    done = subprocess.run([sys.executable, str(TOOL), "--scale", "tiny", "--only", "minitf", "--rounds", "1",
                           "--repeats", "1"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = [line.split("|") for line in done.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 16 and rows[0][1].strip().startswith("op")
    assert all(float(r[2]) > 0 and r[3].strip() == "-" for r in rows[1:])
