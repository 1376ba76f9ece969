"""The Pareto-set function against a brute-force definition."""

from __future__ import annotations

import numpy as np
import pytest

from nas.core import ConfigError
from nas.core.pareto import pareto_mask


def brute_force(points: np.ndarray, directions: list[str]) -> np.ndarray:
    signs = np.array([-1.0 if d == "max" else 1.0 for d in directions])
    costs = points * signs
    return np.array(
        [not any(np.all(q <= p) and np.any(q < p) for q in costs) for p in costs],
        dtype=bool,
    )


@pytest.mark.parametrize("directions", [["max"], ["min", "min"], ["max", "min"], ["max", "min", "max"]])
@pytest.mark.parametrize("seed", range(5))
def test_matches_brute_force(directions: list[str], seed: int) -> None:
    rng = np.random.default_rng(seed)
    points = rng.integers(0, 6, size=(60, len(directions))).astype(float)  # many ties
    assert np.array_equal(pareto_mask(points, directions), brute_force(points, directions))


def test_equal_points_stay_together_and_order_does_not_matter() -> None:
    points = np.array([[1.0, 1.0], [1.0, 1.0], [0.0, 2.0], [2.0, 2.0]])
    mask = pareto_mask(points, ["min", "min"])
    assert mask.tolist() == [True, True, True, False]
    assert pareto_mask(points[::-1], ["min", "min"]).tolist() == mask[::-1].tolist()


def test_empty_and_bad_input() -> None:
    assert pareto_mask(np.empty((0, 2)), ["max", "min"]).shape == (0,)
    with pytest.raises(ConfigError, match="do not match 2 directions"):
        pareto_mask([[1.0, 2.0, 3.0]], ["max", "min"])
    with pytest.raises(ConfigError, match="finite"):
        pareto_mask([[1.0, float("nan")]], ["max", "min"])
    with pytest.raises(ConfigError, match="direction"):
        pareto_mask([[1.0]], ["up"])
