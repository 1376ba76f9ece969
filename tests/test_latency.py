"""Latency predictors: the lookup table is exact on additive latencies, robust fits resist outliers."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from nas.core import PREDICTORS, ConfigError
from predictors.latency import LatencyLUT, LearnedLatency
from predictors.metrics import spearman
from search_spaces import get_space


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # OpenMP/BLAS pools oversubscribe a shared 2-core machine (10x slower boosted trees).
    with threadpool_limits(1):
        yield


FBNET = get_space("fbnet", width_mult=0.25)  # options do not matter: only the encoding is used
NB201 = get_space("nb201")


def additive_world(space, count: int, seed: int):
    """Architectures with latency = const + a random per-(decision, value) cost: truly additive."""
    rng = np.random.default_rng(seed)
    table = {
        (name, value): rng.uniform(0.1, 2.0) for name, values in space.choices().items() for value in values
    }
    archs = [space.sample(rng) for _ in range(count)]
    latency = np.array([3.0 + sum(table[(n, a[n])] for n in space.choices()) for a in archs])
    return archs, latency, table


def test_registered() -> None:
    assert PREDICTORS.get("latency_lut") is LatencyLUT
    assert PREDICTORS.get("latency_learned") is LearnedLatency


def test_lut_is_exact_on_additive_latency() -> None:
    archs, latency, truth = additive_world(FBNET, 400, seed=0)
    lut = LatencyLUT(FBNET).fit(archs[:300], latency[:300])
    mean, std = lut.predict_dist(archs[300:])
    np.testing.assert_allclose(mean, latency[300:], atol=1e-8)
    assert std.max() < 1e-8
    # Within a decision the fitted entries differ exactly as the true costs do.
    table = lut.table()
    name = next(iter(FBNET.choices()))
    a, b = FBNET.choices()[name][:2]
    assert table[(name, a)] - table[(name, b)] == pytest.approx(truth[(name, a)] - truth[(name, b)])
    assert isinstance(lut.constant, float)


def test_lut_works_on_any_space_with_an_encoding() -> None:
    archs, latency, _ = additive_world(NB201, 120, seed=1)
    lut = LatencyLUT(NB201).fit(archs[:80], latency[:80])
    np.testing.assert_allclose(lut.predict(archs[80:]), latency[80:], atol=1e-8)


def test_robust_models_resist_outliers() -> None:
    """A tenth of the training measurements spiked 5x (a busy phone): robust fits keep the ranking."""
    archs, latency, _ = additive_world(FBNET, 900, seed=2)
    rng = np.random.default_rng(3)
    noisy = latency[:600] + rng.normal(0, 0.3, 600)
    spikes = rng.choice(600, size=60, replace=False)
    noisy[spikes] *= 5.0
    test, truth = archs[600:], latency[600:]
    plain = spearman(LatencyLUT(FBNET).fit(archs[:600], noisy).predict(test), truth)
    huber = spearman(LatencyLUT(FBNET, loss="huber").fit(archs[:600], noisy).predict(test), truth)
    learned = spearman(LearnedLatency(FBNET, max_iter=50).fit(archs[:600], noisy).predict(test), truth)
    assert huber > plain + 0.02
    assert learned > plain + 0.02
    assert huber > 0.95


def test_learned_model_captures_a_non_additive_effect() -> None:
    """Latency with an interaction (two adjacent heavy blocks cost extra): trees learn it, the table cannot."""
    rng = np.random.default_rng(4)
    archs = [FBNET.sample(rng) for _ in range(1200)]
    names = list(FBNET.choices())
    heavy = np.array([[str(a[n]).endswith("e6") for n in names[:2]] for a in archs])
    latency = heavy.sum(axis=1) + 6.0 * (heavy[:, 0] & heavy[:, 1]) + rng.normal(0, 0.05, len(archs))
    train, test = slice(0, 800), slice(800, None)
    lut = LatencyLUT(FBNET).fit(archs[train], latency[train])
    learned = LearnedLatency(FBNET, max_iter=100).fit(archs[train], latency[train])
    error_lut = np.abs(lut.predict(archs[test]) - latency[test]).mean()
    error_learned = np.abs(learned.predict(archs[test]) - latency[test]).mean()
    assert error_learned < 0.5 * error_lut


def test_bad_input() -> None:
    archs, latency, _ = additive_world(FBNET, 10, seed=5)
    with pytest.raises(ConfigError, match="loss='l1'"):
        LatencyLUT(FBNET, loss="l1")
    with pytest.raises(ConfigError, match="learning_rate"):
        LearnedLatency(FBNET, learning_rate=0.0)
    with pytest.raises(ConfigError, match="constant"):
        LatencyLUT(FBNET).fit(archs, [1.0] * 10)
    with pytest.raises(ConfigError, match="not fitted"):
        LatencyLUT(FBNET).table()
    with pytest.raises(ConfigError, match="must match"):
        LatencyLUT(FBNET).fit(archs, latency[:5])


def test_real_additive_device_is_predicted_exactly(data_dir) -> None:
    """HW-NAS-Bench's pixel3 latencies are a per-layer sum: 400 measurements pin the table down."""
    with open(data_dir / "fbnet" / "fbnet_latency_ms.csv") as handle:
        rows = [r for _, r in zip(range(700), csv.DictReader(handle), strict=False)]
    archs = [FBNET.parse(r["arch"]) for r in rows]
    latency = np.array([float(r["pixel3"]) for r in rows])
    lut = LatencyLUT(FBNET).fit(archs[:400], latency[:400])
    np.testing.assert_allclose(lut.predict(archs[400:]), latency[400:], rtol=1e-6)
