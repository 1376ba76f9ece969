"""Batch-1 CPU latency of the exported model: PyTorch eager, TorchScript and ONNX Runtime.

Each engine runs single-threaded (``torch.set_num_threads(1)`` for the
duration, ONNX Runtime with one intra-op thread): a deployed small model
usually serves one request per core, and on a shared machine one thread
gives figures that do not depend on what else is running. The figure is the
median of ``repeats`` timed forwards after ``warmup`` untimed ones.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas.export.formats import Runner
from nas.training import torch_threads

LATENCY_THREADS = 1
DEFAULT_REPEATS = 50
DEFAULT_WARMUP = 5


def median_ms(run: Runner, batch: np.ndarray, repeats: int, warmup: int) -> float:
    """Median wall time of ``run(batch)`` in milliseconds."""
    for _ in range(warmup):
        run(batch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(batch)
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def measure_latency(
    runners: Mapping[str, Runner],
    input_shape: tuple[int, int, int],
    *,
    repeats: int = DEFAULT_REPEATS,
    warmup: int = DEFAULT_WARMUP,
) -> dict[str, Any]:
    """Median batch-1 latency per engine (``runners`` must use one thread) and how it was measured."""
    batch = torch.randn(1, *input_shape, generator=torch.Generator().manual_seed(1)).numpy()
    with torch_threads(LATENCY_THREADS):
        ms = {engine: median_ms(run, batch, repeats, warmup) for engine, run in runners.items()}
    return {
        "ms": ms,
        "batch_size": 1,
        "threads": LATENCY_THREADS,
        "statistic": "median",
        "repeats": repeats,
        "warmup": warmup,
        "cpu": cpu_name(),
    }


def cpu_name() -> str:
    """The CPU model (from /proc/cpuinfo on Linux), else what :mod:`platform` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


__all__ = ["DEFAULT_REPEATS", "DEFAULT_WARMUP", "LATENCY_THREADS", "cpu_name", "measure_latency", "median_ms"]
