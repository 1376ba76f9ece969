"""Where a trial's learning curve is heading: our LC-PFN's median and 90% band up to its budget.

The trial page draws, after the last stored epoch of the primary objective,
the predicted median and 5%-95% band of every later epoch up to the epochs
the evaluator trains (``trial.budget``, else the study's comparability
``evaluator.epochs``): one batched prediction (:mod:`nas.curves.predict`).
The model reads values in [0, 1], so the curve is mapped by a known range:
the ``lc`` scheduler's ``bounds`` when the study set them, else an accuracy
(its name says so) in [0, 1] or in percent; a metric to minimise is flipped,
as the ``lc`` stopper does. ``nas.curves`` (and torch) is imported only here,
when a band is drawn, so the app starts fast; missing or corrupted weights
become a note on the page, never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nas.core.errors import NASError
from nas.core.trial import Direction, Trial
from nas.store.records import StudyInfo

#: Epochs the curve model knows (``nas.curves.prior.MAX_EPOCHS``; not imported: that needs the model's module).
MODEL_EPOCHS = 100


@dataclass(frozen=True)
class Band:
    """Predicted ``(step, low, median, high)`` rows (metric units) after the observed curve."""

    metric: str
    rows: list[tuple[int, float, float, float]]
    horizon: int


@dataclass(frozen=True)
class Extrapolation:
    """A band, or why there is none (``note``); the page shows either."""

    band: Band | None = None
    note: str | None = None


def horizon(info: StudyInfo, trial: Trial) -> int | None:
    """The epochs the trial trains: its budget, else the study's evaluator ``epochs``."""
    candidates: list[object] = [trial.budget, (info.comparability or {}).get("evaluator.epochs")]
    evaluator = (info.config or {}).get("evaluator")
    if isinstance(evaluator, Mapping) and isinstance(evaluator.get("options"), Mapping):
        candidates.append(evaluator["options"].get("epochs"))
    for value in candidates:
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 1:
            return int(value)
    return None


def value_range(info: StudyInfo, metric: str, values: Sequence[float]) -> tuple[float, float] | None:
    """The range that maps ``metric`` into the model's [0, 1], or None when it is not known."""
    scheduler = (info.config or {}).get("scheduler")
    bounds = scheduler.get("bounds") if isinstance(scheduler, Mapping) else None
    if (
        isinstance(bounds, Sequence)
        and len(bounds) == 2
        and all(isinstance(b, int | float) for b in bounds)
        and bounds[0] < bounds[1]
    ):
        return float(bounds[0]), float(bounds[1])
    if "acc" in metric.lower():
        top = max(values)
        return (0.0, 1.0) if top <= 1.0 else (0.0, 100.0)
    return None


def extrapolate(info: StudyInfo, trial: Trial, curve: Sequence[tuple[int, float]]) -> Extrapolation | None:
    """The band of the primary objective's ``curve`` up to the trial's budget; None: nothing to draw."""
    metric, direction = next(iter(info.objectives.items()))
    epochs = horizon(info, trial)
    points = sorted(curve)
    k = len(points)
    if epochs is None or k == 0 or k >= epochs:
        return None
    values = [v for _, v in points]
    bounds = value_range(info, metric, values)
    if bounds is None:
        return Extrapolation(
            note=f"No extrapolation: the range of {metric!r} is unknown (the learning-curve model reads "
            "accuracy-like values; a study with scheduler.bounds gets one)."
        )
    low, high = bounds
    if any(not low <= v <= high for v in values):
        return Extrapolation(note=f"No extrapolation: {metric!r} leaves its range [{low:g}, {high:g}].")
    if epochs > MODEL_EPOCHS:
        return Extrapolation(
            note=f"No extrapolation: the learning-curve model knows epochs 1..{MODEL_EPOCHS}, "
            f"this trial trains {epochs}."
        )
    flip = direction is Direction.MIN
    scaled = [(v - low) / (high - low) for v in values]
    scaled = [1.0 - v for v in scaled] if flip else scaled
    later = list(range(k + 1, epochs + 1))
    try:
        from nas.curves.predict import load_predictor  # torch: only when a band is drawn

        predicted = load_predictor().predict([scaled] * len(later), later)
    except ImportError as exc:
        return Extrapolation(
            note=f"No extrapolation: the learning-curve model cannot be imported here ({exc})."
        )
    except NASError as exc:
        return Extrapolation(note=f"No extrapolation: {exc}")

    def back(q: float) -> float:
        return low + (1.0 - q if flip else q) * (high - low)

    last_step = points[-1][0]
    rows = []
    for epoch, (q_low, q_mid, q_high) in zip(later, predicted.quantiles.tolist(), strict=True):
        band = sorted((back(q_low), back(q_high)))
        rows.append((last_step + epoch - k, band[0], back(q_mid), band[1]))
    return Extrapolation(band=Band(metric, rows, epochs))


__all__ = ["Band", "Extrapolation", "extrapolate", "horizon", "value_range"]
