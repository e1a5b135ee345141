"""examples/mlp_toy.py: the engine alone trains a small MLP (the loss falls, accuracy is high)."""
import importlib.util
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "mlp_toy.py"


def _load_example():
    spec = importlib.util.spec_from_file_location("mlp_toy", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mlp_toy_loss_falls(capsys):
    losses, accuracy = _load_example().main(steps=150, log_every=50)
    assert losses[-1] < 0.25 * losses[0]
    assert all(later < earlier for earlier, later in zip(losses[::50], losses[50::50]))
    assert accuracy > 0.9
    printed = capsys.readouterr().out
    assert printed.count("loss") >= 4 and "accuracy" in printed


def test_mlp_toy_runs_as_a_script():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, env=env,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    first = float(lines[0].split("loss")[1])
    final = float(lines[-1].split("final loss")[1].split()[0])
    assert final < 0.25 * first and "accuracy" in lines[-1]
