"""Real 2-process gloo groups for data-parallel tests, without Ray.

Each rank is a spawned process running ``fn(rank, world, port, out)``; inside
it, :func:`gloo_group` joins the group on one thread and leaves it however the
body ends. Shared by the trial and supernet data-parallel tests.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from private_postgres import free_port


@contextlib.contextmanager
def gloo_group(rank: int, world: int, port: int) -> Iterator[None]:
    """This process as ``rank`` of a ``world``-process gloo group on ``port`` (one thread each)."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        yield
    finally:
        dist.destroy_process_group()


def spawn_ranks(fn: Callable[[int, int, int, str], None], out: Path, world: int = 2) -> None:
    """Run ``fn(rank, world, port, str(out))`` in ``world`` processes on a free port; wait for all."""
    mp.spawn(fn, args=(world, free_port(), str(out)), nprocs=world, join=True)
