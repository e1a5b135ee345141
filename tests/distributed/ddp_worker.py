"""A tiny Transformer trained data-parallel for a few steps; run by tests/distributed/test_distributed.py.

    mpiexec -n 2 python tests/distributed/ddp_worker.py --out weights.npz [--accumulate 2]

Every step's global batch is the same for any number of ranks; each rank trains on its
shard (rows rank::size, uneven token counts), the loss is the sum over its target tokens
divided by the global count, and gradients are summed by DistributedDataParallel. Rank 0
writes the final weights. `train(SingleProcess())` is the one-process reference.
"""
from __future__ import annotations

import argparse
import contextlib
import sys

import numpy as np

import minitf as mt
import minitf.functional as F
from minitf.data import make_batch, shard_batch
from minitf.distributed import Communicator, DistributedDataParallel
from minitf.nn import Seq2SeqTransformer, TransformerConfig
from minitf.optim import AdamW, clip_grad_norm

PAD, BOS, EOS, VOCAB = 0, 1, 2, 23


def make_model() -> Seq2SeqTransformer:
    mt.manual_seed(0)
    model = Seq2SeqTransformer(TransformerConfig(VOCAB, VOCAB, d_model=16, n_heads=2, n_encoder_layers=1,
                                                 n_decoder_layers=1, d_ff=24, dropout=0.0, max_len=16))
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    return model


def global_batches(steps: int, seed: int = 1) -> list:
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(steps):
        examples = [(rng.integers(3, VOCAB, rng.integers(1, 8)), rng.integers(3, VOCAB, rng.integers(1, 8)))
                    for _ in range(int(rng.integers(5, 9)))]
        batches.append(make_batch(examples, PAD, BOS, EOS))
    return batches


def train(comm: Communicator, steps: int = 3, accumulate: int = 1, bucket_mb: float = 0.002,
          die_rank: int = -1) -> dict[str, np.ndarray]:
    model = make_model()
    ddp = DistributedDataParallel(model, comm, bucket_mb=bucket_mb)
    optimizer = AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
    for step, batch in enumerate(global_batches(steps)):
        if comm.rank == die_rank and step == 1:
            sys.exit(0)  # leaves without a word, mid-training
        shard = shard_batch(batch, comm.rank, comm.size)
        micro = [shard_batch(shard, k, accumulate) for k in range(accumulate)] if shard else [None] * accumulate
        total = comm.allreduce_numbers([sum(m.n_tgt_tokens for m in micro if m is not None)])[0]
        optimizer.zero_grad()
        for k, m in enumerate(micro):
            if m is None:
                continue
            with ddp.no_sync() if k < accumulate - 1 else contextlib.nullcontext():
                logits = ddp(m.src, m.tgt_in, m.src_mask)
                loss = F.cross_entropy(logits, m.tgt_out, ignore_index=PAD, label_smoothing=0.1,
                                       reduction="sum") / total
                loss.backward()
        ddp.finish()
        clip_grad_norm(model.parameters(), 0.5)
        optimizer.step()
    return {name: p.data for name, p in model.named_parameters()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--accumulate", type=int, default=1)
    parser.add_argument("--die-rank", type=int, default=-1)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    from minitf.distributed.mpi import MPICommunicator
    comm = MPICommunicator(timeout=args.timeout)
    weights = train(comm, accumulate=args.accumulate, die_rank=args.die_rank)
    if comm.rank == 0:
        np.savez(args.out, **weights)


if __name__ == "__main__":
    main()
