"""The parity check: every exported format computes what the PyTorch model computes.

The same random float32 inputs go through the eager model (the reference)
and through each format as read back from the bundle's files. Inputs come
at batch sizes 1 and 3, so a TorchScript trace or an ONNX graph that baked
in the example's batch size fails here instead of in production. The
tolerance, 1e-4 absolute on the logits, is far above float32 rounding
noise of these small networks and far below any real disagreement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from nas.export.errors import ParityError
from nas.export.formats import Runner

TOLERANCE = 1e-4
#: Batch size of each random parity input (1 and 3: the batch axis must be dynamic).
BATCH_SIZES: tuple[int, ...] = (1, 3, 1, 3)
PARITY_SEED = 0


def parity_inputs(
    input_shape: tuple[int, int, int], batch_sizes: Sequence[int] = BATCH_SIZES, seed: int = PARITY_SEED
) -> list[np.ndarray]:
    """Standard normal inputs (the scale of standardised data), drawn from a local generator."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(n, *input_shape, generator=generator).numpy() for n in batch_sizes]


def check_parity(
    reference: Runner,
    candidates: Mapping[str, Runner],
    inputs: Sequence[np.ndarray],
    tolerance: float = TOLERANCE,
) -> dict[str, float]:
    """Max abs difference to the reference per format; :class:`ParityError` if any exceeds ``tolerance``."""
    expected = [reference(x) for x in inputs]
    result: dict[str, float] = {}
    for fmt, run in candidates.items():
        diffs: list[float] = []
        for x, want in zip(inputs, expected, strict=True):
            got = np.asarray(run(x))
            if got.shape != want.shape:
                raise ParityError(
                    fmt,
                    float("inf"),
                    tolerance,
                    f"{fmt} parity check failed: for an input of shape {x.shape} it returned logits of shape "
                    f"{got.shape}, PyTorch {want.shape}",
                )
            diffs.append(float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)))))
        worst = float("nan") if any(np.isnan(diffs)) else max(diffs)
        if not worst <= tolerance:
            raise ParityError(
                fmt,
                worst,
                tolerance,
                f"{fmt} parity check failed: its logits differ from PyTorch's by up to {worst:.3g} "
                f"(allowed: {tolerance:g}) on {len(inputs)} random inputs; the {fmt} file does not "
                "compute the same model, so nothing was exported",
            )
        result[fmt] = worst
    return result


__all__ = ["BATCH_SIZES", "TOLERANCE", "check_parity", "parity_inputs"]
