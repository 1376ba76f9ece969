"""Evaluator plugins; importing this package registers them in ``nas.core.EVALUATORS``."""

from __future__ import annotations

from nas.evaluators import (
    tabular,  # noqa: F401  (registers nb201_table, fbnet_latency)
    train,  # noqa: F401
)
