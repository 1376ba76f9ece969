"""Predicting where learning curves end, from the shipped curve model.

``predict(curves, horizon)`` answers, for many partial curves at once,
what the value at epoch ``horizon`` will be: quantiles, the median and
``P(value > threshold)``, the quantity LC-PFN's stopping rule compares with
a threshold ("stop when the chance of beating the incumbent is below 5%").
Curves are validation accuracies in [0, 1] at epochs 1, 2, ... (one value
per epoch); curves of different lengths share one padded batch.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nas.core.errors import ConfigError, shown
from nas.curves.bar import BarDistribution
from nas.curves.model import CurvePFN
from nas.curves.prior import MAX_EPOCHS
from nas.curves.weights import CurveWeightsError, load_state

#: Quantile levels of a :class:`CurvePrediction` by default: a 90% band and the median.
LEVELS = (0.05, 0.5, 0.95)


@dataclass(frozen=True)
class CurvePrediction:
    """Predicted distribution of each curve's value at its horizon."""

    horizons: np.ndarray  # (n,) epochs predicted
    levels: tuple[float, ...]
    quantiles: np.ndarray  # (n, len(levels))
    median: np.ndarray  # (n,)


class CurvePredictor:
    """A loaded curve model and its bucket borders (see :func:`load_predictor`)."""

    def __init__(self, state: dict[str, object]) -> None:
        try:
            config = dict(state["config"])  # type: ignore[call-overload]
            self.bar = BarDistribution(state["borders"])  # type: ignore[arg-type]
            self.model = CurvePFN(**config)
            self.model.load_state_dict(state["state"])  # type: ignore[arg-type]
        except (KeyError, TypeError, RuntimeError, ValueError) as exc:
            raise CurveWeightsError(f"the curve model's weights do not fit the model: {exc}") from exc
        self.model.eval()

    @classmethod
    def load(cls, path: Path | None = None, sha256: str | None = None) -> CurvePredictor:
        """The model at ``path`` (default: the shipped weights), checksum verified."""
        return cls(load_state(path, sha256))

    # -- the distribution ------------------------------------------------------------------------

    def logits(self, curves: Sequence[Sequence[float]], horizon: int | Sequence[int]) -> torch.Tensor:
        """(n, buckets) logits of each curve's value at its horizon (one batched forward pass)."""
        return self._logits(*_batch(curves, horizon))

    def _logits(self, values: torch.Tensor, valid: torch.Tensor, horizons: torch.Tensor) -> torch.Tensor:
        n, longest = values.shape
        epochs = torch.arange(1, longest + 1, dtype=torch.float32).expand(n, longest)
        with torch.inference_mode():
            out = self.model(epochs, values, horizons.unsqueeze(1), None if bool(valid.all()) else valid)
        return out[:, 0]

    def predict(
        self,
        curves: Sequence[Sequence[float]],
        horizon: int | Sequence[int],
        levels: Sequence[float] = LEVELS,
    ) -> CurvePrediction:
        """Quantiles (at ``levels``) and median of each curve's value at ``horizon``."""
        if isinstance(levels, (str, bytes)) or len(levels) == 0:
            raise ConfigError(
                f"levels {shown(levels)} are not allowed; expected one or more numbers in (0, 1)"
            )
        values, valid, horizons = _batch(curves, horizon)
        logits = self._logits(values, valid, horizons)
        quantiles = torch.stack([self.bar.quantile(logits, float(q)) for q in levels], dim=-1)
        return CurvePrediction(
            horizons=horizons.numpy().astype(int),
            levels=tuple(float(q) for q in levels),
            quantiles=quantiles.numpy(),
            median=self.bar.median(logits).numpy(),
        )

    def prob_above(
        self,
        curves: Sequence[Sequence[float]],
        horizon: int | Sequence[int],
        threshold: float | Sequence[float],
    ) -> np.ndarray:
        """P(value at ``horizon`` > ``threshold``) for each curve (a threshold each, or one for all)."""
        logits = self.logits(curves, horizon)
        return self.bar.prob_above(logits, _per_curve(threshold, len(logits), "threshold")).numpy()

    def log_likelihood(
        self, curves: Sequence[Sequence[float]], horizon: int | Sequence[int], values: float | Sequence[float]
    ) -> np.ndarray:
        """log p(``values`` at ``horizon`` | each curve): how well the model foresaw what happened."""
        logits = self.logits(curves, horizon)
        return self.bar.log_density(logits, _per_curve(values, len(logits), "values")).numpy()


@functools.lru_cache(maxsize=1)
def load_predictor() -> CurvePredictor:
    """The shipped model, loaded once per process."""
    return CurvePredictor.load()


def predict(
    curves: Sequence[Sequence[float]], horizon: int | Sequence[int], levels: Sequence[float] = LEVELS
) -> CurvePrediction:
    """:meth:`CurvePredictor.predict` with the shipped model."""
    return load_predictor().predict(curves, horizon, levels)


def prob_above(
    curves: Sequence[Sequence[float]], horizon: int | Sequence[int], threshold: float | Sequence[float]
) -> np.ndarray:
    """:meth:`CurvePredictor.prob_above` with the shipped model."""
    return load_predictor().prob_above(curves, horizon, threshold)


# -- input checks -------------------------------------------------------------------------------------


def _batch(
    curves: Sequence[Sequence[float]], horizon: int | Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Padded ``(values, valid)`` of shape (n, longest) and the (n,) horizons, all checked."""
    if isinstance(curves, (str, bytes)) or not isinstance(curves, Sequence) or len(curves) == 0:
        raise ConfigError(f"curves must be a non-empty list of curves (lists of values), got {shown(curves)}")
    rows = []
    for i, curve in enumerate(curves):
        row = _floats(curve)
        if row.ndim != 1 or not 1 <= len(row) <= MAX_EPOCHS:
            raise ConfigError(
                f"curve {i} must be 1 to {MAX_EPOCHS} values (one per epoch from epoch 1), got {shown(curve)}; "
                f"the model knows epochs 1..{MAX_EPOCHS}: subsample longer curves"
            )
        if not (np.isfinite(row).all() and (row >= 0).all() and (row <= 1).all()):
            raise ConfigError(
                f"curve {i} has values outside [0, 1] or not finite: {shown(curve)}; the model predicts "
                "accuracy-like metrics in [0, 1] (divide percentages by 100; flip error rates to 1 - error)"
            )
        rows.append(row)
    horizons = np.asarray(_per_curve(horizon, len(rows), "horizon"), dtype=np.float64)
    if not (
        np.all(horizons == np.round(horizons)) and (horizons >= 1).all() and (horizons <= MAX_EPOCHS).all()
    ):
        raise ConfigError(
            f"horizon {shown(horizon)} is not allowed; expected whole epochs from 1 to {MAX_EPOCHS}"
        )
    longest = max(len(r) for r in rows)
    values = np.zeros((len(rows), longest), dtype=np.float32)
    valid = np.zeros((len(rows), longest), dtype=bool)
    for i, row in enumerate(rows):
        values[i, : len(row)] = row
        valid[i, : len(row)] = True
    return torch.from_numpy(values), torch.from_numpy(valid), torch.as_tensor(horizons, dtype=torch.float32)


def _floats(value: object) -> np.ndarray:
    """``value`` as a float array; something that is not numbers gives an empty one (refused by callers)."""
    if isinstance(value, (str, bytes)):
        return np.array([])
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return np.array([])


def _per_curve(value: float | Sequence[float], n: int, name: str) -> torch.Tensor:
    """``value`` as an (n,) tensor: one number for all curves, or one per curve."""
    array = _floats(value)
    if array.ndim == 0:
        array = np.full(n, float(array))
    if array.shape != (n,) or not np.isfinite(array).all():
        raise ConfigError(
            f"{name} {shown(value)} is not allowed; expected one finite number or one per curve ({n})"
        )
    return torch.as_tensor(array, dtype=torch.float32)


__all__ = ["LEVELS", "CurvePrediction", "CurvePredictor", "load_predictor", "predict", "prob_above"]
