"""Recurrent-layer benchmark: minitf's fused nn.LSTM/GRU against torch.nn.LSTM/GRU on the same CPU.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tools/bench_rnn.py --threads 1
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tools/bench_rnn.py --threads 2
    python tools/bench_rnn.py --config tiny --rounds 1 --repeats 1 --only minitf   # a smoke run

Each case is one forward and backward of a 1-layer layer (float32, training mode) with a random
cotangent on its outputs, timed as ms per call (median of --repeats after --warmup, in a
subprocess per framework; the frameworks alternate for --rounds rounds, who goes first too, and
the table shows medians over rounds and the median of the per-round ratios). "cell" is the same
LSTM written as a loop of minitf tensor ops (minitf.functional.recurrent.composite: what a user
hand-writes without the fused layer), for reference.
"""
from __future__ import annotations

import argparse
import json
import statistics

import machine  # tools/machine.py: the CPU and the BLAS kernel NumPy runs
from rounds import add_round_arguments, alternate, spawn, timed  # tools/rounds.py: workers, alternating rounds

CONFIGS = {
    "ref": dict(input=256, hidden=256, batch=32, steps=64),
    "tiny": dict(input=8, hidden=8, batch=2, steps=3),
}
CASES = ("lstm", "gru", "lstm_cell_loop")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", choices=sorted(CONFIGS), default="ref")
    add_round_arguments(p, repeats=10, warmup=2, rounds=4)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(run_worker(args)))
        return
    frameworks = [args.only] if args.only else ["minitf", "torch"]
    rounds = alternate(frameworks, args.rounds, lambda name, r: spawn(__file__, name, args.threads))
    print(f"machine: {machine.describe()}")
    print(f"config {args.config}: {CONFIGS[args.config]}; {args.threads} threads; float32; forward + backward; "
          f"medians of {args.repeats} calls in each of {args.rounds} alternating rounds, ms")
    print("| case | " + " | ".join(frameworks) + (" | minitf / torch |" if len(frameworks) == 2 else " |"))
    print("|---|" + "---:|" * (len(frameworks) + (len(frameworks) == 2)))
    for case in CASES:
        present = [f for f in frameworks if case in rounds[0][f]]
        cells = [f"{statistics.median(r[f][case] for r in rounds):.1f}" if f in present else "-" for f in frameworks]
        ratio = ""
        if len(frameworks) == 2:
            against = "lstm" if case == "lstm_cell_loop" else case  # the hand-written loop against torch's LSTM
            ratio = f" | {statistics.median(r['minitf'][case] / r['torch'][against] for r in rounds):.2f}" \
                if "minitf" in present else " | -"
        print(f"| {case} | " + " | ".join(cells) + ratio + " |")




def run_worker(args: argparse.Namespace) -> dict:
    import numpy as np

    c = CONFIGS[args.config]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((c["steps"], c["batch"], c["input"])).astype(np.float32)
    g = rng.standard_normal((c["steps"], c["batch"], c["hidden"])).astype(np.float32)
    cases = minitf_cases(c, x, g) if args.worker == "minitf" else torch_cases(c, x, g, args.threads)
    return {name: timed(fn, args.repeats, args.warmup) for name, fn in cases.items()}


def minitf_cases(c: dict, x, g) -> dict:
    import numpy as np

    import minitf as mt
    from minitf import nn
    from minitf.functional.recurrent import composite

    mt.manual_seed(0)
    xt, gt = mt.tensor(x, requires_grad=True), mt.tensor(g)
    lstm, gru = nn.LSTM(c["input"], c["hidden"]), nn.GRU(c["input"], c["hidden"])
    zeros = mt.tensor(np.zeros((c["batch"], c["hidden"]), dtype=np.float32))

    def layer(module):
        def step():
            out, _ = module(xt)
            out.backward(gt)
        return step

    def cell_loop():
        z = composite("lstm", xt, zeros, zeros, lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0,
                      lstm.bias_hh_l0, None, None)
        z[:, :, :c["hidden"]].backward(gt)
    return {"lstm": layer(lstm), "gru": layer(gru), "lstm_cell_loop": cell_loop}


def torch_cases(c: dict, x, g, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    xt, gt = torch.tensor(x, requires_grad=True), torch.tensor(g)
    lstm, gru = torch.nn.LSTM(c["input"], c["hidden"]), torch.nn.GRU(c["input"], c["hidden"])

    def layer(module):
        def step():
            out, _ = module(xt)
            out.backward(gt)
        return step
    return {"lstm": layer(lstm), "gru": layer(gru)}


if __name__ == "__main__":
    main()
