"""Data-parallel training: every rank holds the whole model and sums its gradients with the others.

    comm = minitf.distributed.init()                  # MPI under mpiexec, else one process
    ddp = DistributedDataParallel(model, comm)         # rank 0's weights on every rank
    n = comm.allreduce_numbers([n_tokens_here])[0]    # the global number of target tokens
    loss = F.cross_entropy(model(x), y, reduction="sum") / n
    loss.backward()                                    # buckets start all-reducing during backward
    ddp.finish()                                       # wait; .grad is now the global gradient
    optimizer.step()

Gradients are grouped into buckets of about `bucket_mb` megabytes in reverse registration
order (the order in which backward completes them: PyTorch DDP's and Horovod's tensor
fusion). A post-accumulate-grad hook on each parameter notes when its gradient is final;
when a bucket's last gradient is, the bucket is packed into one flat buffer and its
all-reduce starts in the background, so communication overlaps the rest of the backward
pass. `finish()` waits for every bucket and unpacks the sums into `.grad`.

Gradients are summed, not averaged: divide the loss by the global count of what it sums
over (tokens, examples), so that N ranks with batches b_1..b_N compute the gradient of one
process on their union. `average=True` divides by the number of ranks instead (PyTorch's
convention, for losses that are already means of equally sized batches).
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

from .. import backend
from ..autograd import Tensor
from ..nn import Module
from .comm import Communicator, Work


class _Bucket:
    """Parameters whose gradients travel together in one flat buffer."""

    def __init__(self, params: list[Tensor]) -> None:
        self.params = params
        self.sizes = [p.data.size for p in params]
        xp = backend.get_array_module(params[0].data)
        self.buffer = xp.empty(sum(self.sizes), dtype=params[0].data.dtype)
        self.ready = 0
        self.work: Work | None = None

    def pack(self) -> None:
        offset = 0
        for p, n in zip(self.params, self.sizes):
            view = self.buffer[offset:offset + n]
            if p.grad is None:
                view.fill(0)
            else:
                view[...] = p.grad.reshape(-1)
            offset += n

    def unpack(self, scale: float) -> None:
        offset = 0
        if scale != 1.0:
            self.buffer *= scale
        for p, n in zip(self.params, self.sizes):
            flat = self.buffer[offset:offset + n]
            if p.grad is None:
                p.grad = flat.reshape(p.data.shape).copy()
            else:
                p.grad[...] = flat.reshape(p.data.shape)
            offset += n


class DistributedDataParallel:
    """Wraps `model` for data-parallel training over `comm` (see the module docstring).

    Calling the wrapper calls the model. `no_sync()` skips communication for micro-batches
    whose gradients should only accumulate locally (gradient accumulation).
    """

    def __init__(self, model: Module, comm: Communicator, bucket_mb: float = 25.0,
                 average: bool = False, broadcast: bool = True) -> None:
        if bucket_mb <= 0:
            raise ValueError(f"bucket_mb must be positive, got {bucket_mb}")
        self.module, self.comm, self.average = model, comm, average
        self.params = [p for p in model.parameters() if p.requires_grad]
        if broadcast:
            self.broadcast_parameters()
        self.buckets = _make_buckets(self.params, bucket_mb * 2**20)
        self._bucket_of = {id(p): b for b in self.buckets for p in b.params}
        self._sync = True
        self._hooks = [p.register_post_accumulate_grad_hook(self._grad_ready) for p in self.params]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def broadcast_parameters(self, root: int = 0) -> None:
        """Give every rank root's weights (done once at construction)."""
        for p in self.params:
            self.comm.broadcast(p.data, root)

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Backward passes inside accumulate gradients locally, without communication."""
        previous, self._sync = self._sync, False
        try:
            yield
        finally:
            self._sync = previous

    def _grad_ready(self, param: Tensor) -> None:
        if not self._sync or self.comm.size == 1:
            return
        bucket = self._bucket_of[id(param)]
        bucket.ready += 1
        if bucket.ready == len(bucket.params):
            self._launch(bucket)
        for other in self.buckets:  # let the transfers in flight progress (see Work.poll)
            if other.work is not None:
                other.work.poll()

    def _launch(self, bucket: _Bucket) -> None:
        bucket.pack()
        bucket.work = self.comm.iallreduce(bucket.buffer)

    def wait(self) -> None:
        """Wait until every bucket's all-reduce is done, without writing `.grad` yet.

        Buckets with parameters that got no gradient this step (unused by the forward pass)
        are sent now, with zeros for the missing gradients, so all ranks stay in step.
        """
        if self.comm.size == 1:
            return
        for bucket in self.buckets:
            if bucket.work is None:
                self._launch(bucket)
        for bucket in self.buckets:
            bucket.work.wait()

    def finish(self) -> None:
        """Wait for every bucket's all-reduce (see `wait`) and write the global gradients into `.grad`."""
        if self.comm.size == 1:
            return
        self.wait()
        scale = 1.0 / self.comm.size if self.average else 1.0
        for bucket in self.buckets:
            bucket.unpack(scale)
            bucket.work, bucket.ready = None, 0

    def remove_hooks(self) -> None:
        for handle in self._hooks:
            handle.remove()


def _make_buckets(params: list[Tensor], capacity_bytes: float) -> list[_Bucket]:
    """Group parameters, last registered first, into buckets of one dtype and device up to capacity."""
    buckets: list[_Bucket] = []
    current: list[Tensor] = []
    size = 0
    for p in reversed(params):
        same_kind = not current or (p.data.dtype == current[0].data.dtype and p.device == current[0].device)
        if current and (size + p.data.nbytes > capacity_bytes or not same_kind):
            buckets.append(_Bucket(current))
            current, size = [], 0
        current.append(p)
        size += p.data.nbytes
    if current:
        buckets.append(_Bucket(current))
    return buckets
