"""Load a version 1 (.npz) checkpoint that is a zip bomb; print the time taken and the peak memory.

    python tools/zip_bomb.py [--gigabytes 2] [--code REV]

Builds (once, in a temporary folder) a file of a few MB whose embedding member unpacks to
`--gigabytes` of zeros (tests/translation/test_checkpoint.py's zip_bomb), then calls load_checkpoint on
it in a fresh process: this checkout's, or with --code REV the checkpoint module of git
revision REV (e.g. the commit before bounded loading) for a before/after comparison.
"""
from __future__ import annotations

import argparse
import importlib.util
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gigabytes", type=float, default=2.0)
    parser.add_argument("--code", metavar="REV", help="git revision (before the translation package) whose translate/checkpoint.py to use")
    args = parser.parse_args()
    sys.path[:0] = [str(ROOT / "tests" / "translation"), str(ROOT / "tests")]  # the test and its helpers
    from test_checkpoint import zip_bomb  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="zip_bomb_") as folder:
        measure(zip_bomb(Path(folder) / "bomb.npz", args.gigabytes), _loader(args.code, Path(folder)), args)


def measure(path: Path, load, args: argparse.Namespace) -> None:
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    try:
        load(path)
        outcome = "loaded"
    except Exception as exc:  # noqa: BLE001 (reported, whatever it is)
        outcome = f"{type(exc).__name__}: {str(exc)[:400]}"
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"file {path.stat().st_size / 2**20:.1f} MiB declaring {args.gigabytes:g} GiB; code "
          f"{args.code or 'this checkout'}\n{outcome}\n{seconds:.2f} s, peak RSS {peak:.0f} MiB "
          f"(before loading {baseline:.0f} MiB)")


def _loader(rev: str | None, folder: Path):
    if rev is None:
        from minitf.translation.checkpoint import load_checkpoint  # noqa: PLC0415
        return load_checkpoint
    source = subprocess.run(["git", "show", f"{rev}:minitf/translate/checkpoint.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    module_path = folder / "old_checkpoint.py"
    module_path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_checkpoint", module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the version 1 module needs only NumPy
    return module.load_checkpoint


if __name__ == "__main__":
    main()
