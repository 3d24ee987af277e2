"""
Data-parallel training on PyTorch's own engine: torch.distributed and DDP.

Under ``torchrun --nproc_per_node N [--nnodes M ...]`` every process is one rank: it joins
the process group that torchrun describes in its environment (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``), trains a replica of the model on its own
batches or env workers, and DistributedDataParallel averages the gradients, so every replica
takes the same optimizer step. Rank 0 alone writes checkpoints, logs and plots. Without
torchrun the same code runs as one process and nothing here talks to anyone.

Backends: NCCL when the ranks train on CUDA devices (one GPU per rank, ``cuda:LOCAL_RANK``),
gloo on CPU.
"""

import atexit
from dataclasses import dataclass
from datetime import timedelta
import os
from typing import Any, Dict, Optional

from lam_ros.policy import resolve_device
import torch
from torch import distributed as dist
from torch import nn


COLLECTIVE_TIMEOUT_S = 3600.0
"""How long a rank waits in a collective (for instance while rank 0 evaluates) before failing."""


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a (possibly one-process) data-parallel run."""

    rank: int
    """Global rank, 0 .. world_size - 1."""
    world_size: int
    """Processes in the run (1 without torchrun)."""
    local_rank: int
    """Rank on this machine (selects the GPU)."""
    device: torch.device
    """The device this rank trains on."""
    backend: str
    """'nccl', 'gloo', or '' for a single process."""

    @property
    def is_main(self) -> bool:
        """Whether this rank writes checkpoints, logs and plots (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether there is more than one rank."""
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, '')
    try:
        return int(value) if value else default
    except ValueError as err:
        raise ValueError(f'environment variable {name}={value!r} is not an integer (set by '
                         'torchrun; do not set it by hand)') from err


def setup(device: str = 'auto') -> DistContext:
    """
    Join the torchrun process group if there is one; return this rank's context.

    ``device`` is the training device asked for ('auto', 'cpu', 'cuda', 'cuda:N'); under
    torchrun a CUDA device becomes ``cuda:LOCAL_RANK``. Calling it again returns the same
    group. The group is destroyed when the process exits.
    """
    world = _env_int('WORLD_SIZE', 1)
    local_rank = _env_int('LOCAL_RANK', 0)
    resolved = resolve_device(device)
    if world <= 1:
        return DistContext(0, 1, 0, resolved, '')
    if resolved.type == 'cuda':
        resolved = torch.device('cuda', local_rank)
        torch.cuda.set_device(resolved)
    backend = 'nccl' if resolved.type == 'cuda' else 'gloo'
    if not dist.is_initialized():
        # Ranks wait in a collective while rank 0 evaluates or writes checkpoints.
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=COLLECTIVE_TIMEOUT_S))
        atexit.register(shutdown)
    elif dist.get_backend() != backend:
        raise ValueError(f'the process group uses {dist.get_backend()}, but training on '
                         f'{resolved} needs {backend}; use one device type for every stage')
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, resolved, backend)


def shutdown() -> None:
    """Leave the process group (harmless when there is none)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class MethodForward(nn.Module):
    """
    Expose one method of a module as ``forward``, so that DDP can wrap it.

    DDP synchronises gradients of what runs through its ``forward``; a policy's training
    loss is its ``loss`` method, not ``forward``.
    """

    def __init__(self, module: nn.Module, method: str) -> None:
        """Wrap ``module.<method>``."""
        super().__init__()
        self.module = module
        self.method = method

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Call the wrapped method."""
        return getattr(self.module, self.method)(*args, **kwargs)


def data_parallel(module: nn.Module, ctx: DistContext, method: str = 'forward',
                  find_unused_parameters: bool = False) -> nn.Module:
    """
    Return a callable module running ``module.<method>`` with gradient averaging.

    One process: the method itself (wrapped, no communication). Several: a
    DistributedDataParallel replica, which first copies rank 0's parameters and buffers
    to every rank, then all-reduces the gradients of every backward pass.
    """
    wrapped = module if method == 'forward' else MethodForward(module, method)
    if not ctx.distributed:
        return wrapped
    device_ids = [ctx.device.index] if ctx.device.type == 'cuda' else None
    return nn.parallel.DistributedDataParallel(wrapped, device_ids=device_ids,
                                               find_unused_parameters=find_unused_parameters)


def mean_over_ranks(values: Dict[str, float], ctx: DistContext) -> Dict[str, float]:
    """Average a dict of floats over the ranks (every rank gets the result)."""
    if not ctx.distributed or not values:
        return dict(values)
    keys = sorted(values)
    tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64,
                          device=ctx.device)
    dist.all_reduce(tensor)
    return {k: float(v) / ctx.world_size for k, v in zip(keys, tensor.tolist())}


def any_rank(flag: bool, ctx: DistContext) -> bool:
    """Return True on every rank when ``flag`` is True on at least one (a stop request)."""
    if not ctx.distributed:
        return bool(flag)
    tensor = torch.tensor([1.0 if flag else 0.0], device=ctx.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item() > 0)


def broadcast(obj: Any, ctx: DistContext, src: int = 0) -> Any:
    """Return rank ``src``'s value of a picklable object on every rank."""
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src,
                               device=ctx.device if ctx.backend == 'nccl' else None)
    return box[0]


def barrier(ctx: DistContext) -> None:
    """Wait until every rank gets here."""
    if ctx.distributed:
        if ctx.backend == 'nccl':
            dist.barrier(device_ids=[ctx.device.index])
        else:
            dist.barrier()


def rank_seed(seed: int, ctx: Optional[DistContext]) -> int:
    """Seed of this rank's own randomness (data, env workers, dropout); ``seed`` on rank 0."""
    return seed if ctx is None else seed + 1_000_003 * ctx.rank
