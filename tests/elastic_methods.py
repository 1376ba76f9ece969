"""Tiny elastic one-shot methods (BigNAS' step: bignas, attentivenas) on fbnet, for their tests.

fbnet at width 0.25 on 3x8x8 synthetic images, 1-2 epochs of a few steps.
"""

from __future__ import annotations

from nas.data import Dataset
from nas.oneshot import create_method
from nas.oneshot.bignas import BignasMethod
from search_spaces import get_space

SYNTHETIC = {"name": "synthetic", "num_samples": 96, "num_test": 16, "num_classes": 4, "shape": (3, 8, 8)}

#: The methods on BigNAS' step, with options keeping them cheap (AttentiveNAS: 2 candidates per pick).
ELASTIC_METHODS: dict[str, dict[str, object]] = {"bignas": {}, "attentivenas": {"candidates": 2}}


def make(data: Dataset, seed: int = 0, method: str = "bignas", **options: object) -> BignasMethod:
    """A tiny elastic ``method`` on fbnet at width 0.25 (one random or picked sub-network per step)."""
    settings = {"epochs": 2, "batch_size": 16, "check_memory": False, "num_random": 1, "score_images": 32}
    made = create_method(
        method,
        get_space("fbnet", width_mult=0.25),
        data,
        {**settings, **ELASTIC_METHODS[method], **options},
        seed=seed,
    )
    assert isinstance(made, BignasMethod)
    return made
