"""The learning-curve model (nas.curves): prior, bar distribution, shipped weights, predictions.

The shipped weights must load (checksum verified) and reproduce a stored
prediction, so a changed model, loader or bucket rule shows up here; the
mechanism check (more of a curve observed, narrower prediction) fails for a
model that ignores its input. Inference speed is measured in
``benchmarks/curves.py``, not here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from nas.core.errors import ConfigError
from nas.curves.bar import BarDistribution, borders_from_values
from nas.curves.predict import CurvePredictor, load_predictor
from nas.curves.prior import ALL_FAMILIES, FAMILIES, LCPFN_FAMILIES, MAX_EPOCHS, CurvePrior, sample_curves
from nas.curves.train import save, train
from nas.curves.weights import DEFAULT_WEIGHTS, WEIGHTS_SHA256, CurveWeightsError, load_state

FIXTURE = Path(__file__).with_name("data") / "curves_fixture.json"


# -- prior --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("families", [LCPFN_FAMILIES, ALL_FAMILIES, ("mmf",), ("vap", "hill3")])
def test_prior_curves_have_the_requested_shape_and_stay_in_range(families: tuple[str, ...]) -> None:
    prior = CurvePrior(families=families, normalise=len(families) > 3, length=60)
    clean, noisy = prior.sample(np.random.default_rng(3), 257)
    assert clean.shape == noisy.shape == (257, 60)
    assert np.isfinite(clean).all() and (clean >= 0).all() and (clean <= 1).all()
    assert (noisy >= 0).all() and (noisy <= 1).all()
    assert (clean[:, -1] > clean[:, 0]).all()  # the prior's curves improve
    assert 0 < np.abs(noisy - clean).mean() < 0.2  # noise is there, and small


def test_prior_is_seeded_and_every_family_is_sampled_in_range() -> None:
    a, b = sample_curves(5, 16), sample_curves(5, 16)
    assert np.array_equal(a[1], b[1]) and not np.array_equal(a[1], sample_curves(6, 16)[1])
    x = np.arange(1, MAX_EPOCHS + 1, dtype=float)
    for name, family in FAMILIES.items():
        with np.errstate(all="ignore"):
            y = family.curve(x, **family.prior(np.random.default_rng(0), 2000))
        ok = np.isfinite(y).all(axis=1) & (y >= 0).all(axis=1) & (y <= 1).all(axis=1) & (y[:, -1] > y[:, 0])
        assert ok.mean() > 0.01, f"family {name}: its prior almost never gives a valid curve"


def test_prior_refuses_unknown_families() -> None:
    with pytest.raises(ConfigError, match="'pow5'"):
        CurvePrior(families=("pow3", "pow5"))


# -- bar distribution ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bar() -> BarDistribution:
    _, values = sample_curves(0, 500)
    return BarDistribution(borders_from_values(torch.as_tensor(values), 50))


def test_bar_density_integrates_to_one_and_matches_its_cdf(bar: BarDistribution) -> None:
    logits = torch.randn(4, bar.buckets, generator=torch.Generator().manual_seed(0)) * 2
    grid = torch.linspace(-1.0, 2.0, 150_001)
    density = bar.log_density(logits[:, None, :], grid.expand(4, -1)).exp()
    assert torch.allclose(torch.trapezoid(density, grid, dim=-1), torch.ones(4), atol=2e-3)
    # The CDF is the integral of the density (checked at a border and inside a tail).
    for point in (0.5, 1.02):
        upto = grid <= point
        integral = torch.trapezoid(density[:, upto], grid[upto], dim=-1)
        assert torch.allclose(bar.cdf(logits, torch.full((4,), point)), integral, atol=2e-3)


def test_bar_quantiles_are_monotone_and_invert_the_cdf(bar: BarDistribution) -> None:
    logits = torch.randn(8, bar.buckets, generator=torch.Generator().manual_seed(1)) * 3
    levels = [0.001, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 0.999]
    q = torch.stack([bar.quantile(logits, p) for p in levels], dim=-1)
    assert (q[:, 1:] > q[:, :-1]).all()
    for i, p in enumerate(levels):
        assert torch.allclose(bar.cdf(logits, q[:, i]), torch.full((8,), p), atol=1e-4)
    assert torch.allclose(bar.prob_above(logits, 0.3), 1 - bar.cdf(logits, torch.full((8,), 0.3)))
    with pytest.raises(ConfigError, match="1.5"):
        bar.quantile(logits, 1.5)


# -- shipped weights ----------------------------------------------------------------------------------


def test_shipped_weights_load_verified_small_and_reproduce_the_stored_prediction() -> None:
    assert DEFAULT_WEIGHTS.stat().st_size <= 10_000_000
    fixture = json.loads(FIXTURE.read_text())
    model = load_predictor()
    got = model.predict(fixture["curves"], fixture["horizon"], fixture["levels"])
    np.testing.assert_allclose(got.quantiles, fixture["quantiles"], atol=1e-5)
    above = model.prob_above(fixture["curves"], fixture["horizon"], fixture["threshold"])
    np.testing.assert_allclose(above, fixture["prob_above"], atol=1e-5)


def test_corrupted_or_missing_weights_give_our_error_naming_the_file(tmp_path: Path) -> None:
    copy = tmp_path / "lcpfn.pt"
    data = bytearray(DEFAULT_WEIGHTS.read_bytes())
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))
    assert load_state()["format"] == 1  # the shipped file itself passes
    with pytest.raises(CurveWeightsError, match=r"corrupted.*python -m nas.curves.train") as error:
        CurvePredictor.load(copy, sha256=WEIGHTS_SHA256)
    assert str(copy) in str(error.value)
    with pytest.raises(CurveWeightsError, match="no checksum"):
        CurvePredictor.load(copy)  # no sha256 given and no sidecar file
    with pytest.raises(CurveWeightsError, match=r"cannot be read.*python -m nas.curves.train"):
        CurvePredictor.load(tmp_path / "missing.pt", sha256="0" * 64)


def test_prediction_narrows_as_more_of_a_prior_curve_is_observed() -> None:
    _, curves = sample_curves(424242, 64)
    model = load_predictor()
    widths = []
    for observed in (5, 20, 60, 90):
        q = model.predict([c[:observed] for c in curves], MAX_EPOCHS, levels=(0.05, 0.95)).quantiles
        widths.append(float(np.mean(q[:, 1] - q[:, 0])))
    assert widths[0] > widths[1] > widths[2] > widths[3], widths
    # And the median follows the curve: its error shrinks too.
    err = [
        float(np.abs(model.predict([c[:k] for c in curves], MAX_EPOCHS).median - curves[:, -1]).mean())
        for k in (5, 90)
    ]
    assert err[1] < err[0] / 2, err


def test_a_batch_of_curves_of_different_lengths_predicts_each_as_alone() -> None:
    _, curves = sample_curves(11, 3)
    batch = [curves[0][:7], curves[1][:40], curves[2][:1]]
    model = load_predictor()
    together = model.prob_above(batch, [50, 100, 30], 0.6)
    alone = [model.prob_above([c], h, 0.6)[0] for c, h in zip(batch, [50, 100, 30], strict=True)]
    np.testing.assert_allclose(together, alone, atol=1e-5)


@pytest.mark.parametrize(
    ("curves", "horizon", "match"),
    [
        ([[0.2, 1.5]], 10, "outside \\[0, 1\\]"),
        ([[0.2, float("nan")]], 10, "not finite"),
        ([[]], 10, "1 to 100 values"),
        ([[0.1] * 101], 10, "1 to 100 values"),
        ([], 10, "non-empty list"),
        ([[0.1, 0.2]], 0, "horizon 0"),
        ([[0.1, 0.2]], 101, "horizon 101"),
        ([[0.1, 0.2]], [10, 20], "one per curve"),
    ],
)
def test_bad_curves_and_horizons_are_refused(curves: list, horizon: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_predictor().predict(curves, horizon)  # type: ignore[arg-type]


def test_training_writes_weights_that_load_with_their_checksum(tmp_path: Path) -> None:
    state = train(
        seed=1, steps=2, batch=4, width=16, depth=1, heads=2, buckets=20, border_curves=300, log_every=1
    )
    again = train(
        seed=1, steps=2, batch=4, width=16, depth=1, heads=2, buckets=20, border_curves=300, log_every=1
    )
    assert all(torch.equal(again["state"][k], v) for k, v in state["state"].items())  # seeded
    path = tmp_path / "small.pt"
    digest = save(state, path)
    assert (tmp_path / "small.pt.sha256").read_text().startswith(digest)
    model = CurvePredictor.load(path)
    assert model.bar.buckets == 20
    assert model.predict([[0.1, 0.2, 0.3]], 10).quantiles.shape == (1, 3)
    shutil.copy(path, tmp_path / "other.pt")
    with pytest.raises(CurveWeightsError, match="other.pt.sha256"):
        CurvePredictor.load(tmp_path / "other.pt")


def write_fixture() -> None:
    """Store the shipped model's prediction on four prior curves (run after retraining on purpose)."""
    _, curves = sample_curves(2026, 4)
    inputs = [[round(float(v), 6) for v in c[:k]] for c, k in zip(curves, (3, 10, 25, 50), strict=True)]
    levels, horizon, threshold = [0.05, 0.25, 0.5, 0.75, 0.95], 100, 0.6
    model = CurvePredictor.load()
    prediction = model.predict(inputs, horizon, levels)
    FIXTURE.write_text(
        json.dumps(
            {
                "made_by": "python tests/test_curves.py (write_fixture)",
                "curves": inputs,
                "horizon": horizon,
                "levels": levels,
                "threshold": threshold,
                "quantiles": prediction.quantiles.tolist(),
                "prob_above": model.prob_above(inputs, horizon, threshold).tolist(),
            },
            indent=1,
        )
        + "\n"
    )


if __name__ == "__main__":
    write_fixture()
