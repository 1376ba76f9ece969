"""The prior over learning curves that the curve model is trained on.

LC-PFN (Adriaensen et al., 2023) learns to extrapolate learning curves by
training on curves drawn from a parametric prior: the curve families that
Domhan et al. (2015) fitted by MCMC, each with a prior over its parameters,
combined with random non-negative weights, plus Gaussian noise of a random
scale. Curves that fall or leave the unit interval are rejected, because
what they model is a validation accuracy that improves over training.

The parameter priors are LC-PFN's "peaked" priors, written here from the
paper's and its code's definitions. LC-PFN's published model combines three
families (``pow3``, ``ilog2``, ``janoschek``: :data:`LCPFN_FAMILIES`) with
unnormalised weights ``U(0, 1)``. Our shipped model is trained on all eleven
families of Domhan et al. (:data:`ALL_FAMILIES`): real curves trained with a
cosine learning-rate schedule rise late, in an S shape the three saturating
families cannot draw (docs/curves.md has the figures). Because eleven
unnormalised curves almost never sum to a value inside [0, 1], larger sets
are combined with weights normalised to sum to one (``normalise=True``).

Everything is vectorised over curves with numpy: a training step draws a
few hundred curves, so a per-curve Python loop would cost more than the
network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from nas.core.errors import ConfigError

#: Length of a prior curve: the epochs 1..MAX_EPOCHS the model knows about (as in LC-PFN).
MAX_EPOCHS = 100

Params = dict[str, np.ndarray]


# -- the families (Domhan et al. 2015); x: (T,) epochs from 1, parameters: (n, 1) ------------------


def pow3(x: np.ndarray, c: np.ndarray, a: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return c - a * x ** (-alpha)


def pow4(x: np.ndarray, c: np.ndarray, a: np.ndarray, b: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return c - (a * x + b) ** (-alpha)


def log_power(x: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    return a / (1.0 + (x / np.exp(b)) ** c)


def exp4(x: np.ndarray, c: np.ndarray, a: np.ndarray, b: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return c - np.exp(-a * x**alpha + b)


def janoschek(x: np.ndarray, a: np.ndarray, beta: np.ndarray, k: np.ndarray, delta: np.ndarray) -> np.ndarray:
    return a - (a - beta) * np.exp(-k * x**delta)


def mmf(
    x: np.ndarray, alpha: np.ndarray, beta: np.ndarray, kappa: np.ndarray, delta: np.ndarray
) -> np.ndarray:
    return alpha - (alpha - beta) / (1.0 + (kappa * x) ** delta)


def weibull(
    x: np.ndarray, alpha: np.ndarray, beta: np.ndarray, kappa: np.ndarray, delta: np.ndarray
) -> np.ndarray:
    return alpha - (alpha - beta) * np.exp(-((kappa * x) ** delta))


def ilog2(x: np.ndarray, c: np.ndarray, a: np.ndarray) -> np.ndarray:
    return c - a / np.log(x + 1.0)


def vap(x: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Vapor pressure."""
    return np.exp(a + b / x + c * np.log(x))


def loglog_linear(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.log(a * np.log(x) + b)


def hill3(x: np.ndarray, theta: np.ndarray, eta: np.ndarray, kappa: np.ndarray) -> np.ndarray:
    """Hill's dose-response curve with zero background."""
    return theta * x**eta / (kappa**eta + x**eta)


# -- LC-PFN's "peaked" parameter priors -----------------------------------------------------------


def _u(rng: np.random.Generator, low: float, high: float, n: int) -> np.ndarray:
    return rng.uniform(low, high, size=(n, 1))


def _n(rng: np.random.Generator, mean: float, std: float, n: int) -> np.ndarray:
    return rng.normal(mean, std, size=(n, 1))


def _prior_pow3(r: np.random.Generator, n: int) -> Params:
    return {"c": _u(r, 0.0, 1.25, n), "a": _u(r, -0.6, 0.6, n), "alpha": np.exp(_n(r, 0.0, 2.0, n))}


def _prior_pow4(r: np.random.Generator, n: int) -> Params:
    return {
        "c": 1.0 - np.exp(_u(r, -5.0, 0.0, n)),
        "a": np.exp(_n(r, -3.0, 2.0, n)),
        "b": np.exp(_u(r, 0.0, 1.0, n)),
        "alpha": np.exp(_n(r, 0.0, 1.0, n)),
    }


def _prior_log_power(r: np.random.Generator, n: int) -> Params:
    return {"a": _n(r, 0.8, 0.1, n), "b": _n(r, 1.0, 1.0, n), "c": _u(r, -3.0, 0.0, n)}


def _prior_exp4(r: np.random.Generator, n: int) -> Params:
    return {
        "c": _n(r, 0.8, 0.1, n),
        "a": np.exp(_n(r, -2.0, 1.0, n)),
        "b": np.exp(_n(r, 0.0, 0.5, n)),
        "alpha": np.exp(_n(r, 0.0, 1.0, n)),
    }


def _prior_janoschek(r: np.random.Generator, n: int) -> Params:
    return {
        "a": _u(r, 0.0, 1.0, n),
        "beta": _u(r, 0.0, 2.0, n),
        "k": np.exp(_n(r, -2.0, 1.0, n)),
        "delta": np.exp(_n(r, 0.0, 0.5, n)),
    }


def _prior_mmf(r: np.random.Generator, n: int) -> Params:
    return {
        "alpha": _n(r, 0.8, 0.1, n),
        "beta": _n(r, 0.2, 0.1, n),
        "kappa": np.exp(_n(r, 0.0, 2.0, n)),
        "delta": np.exp(_n(r, 0.0, 1.0, n)),
    }


def _prior_weibull(r: np.random.Generator, n: int) -> Params:
    return {
        "alpha": _u(r, 0.0, 1.5, n),
        "beta": _u(r, 0.0, 1.0, n),
        "kappa": np.exp(_n(r, -2.0, 1.0, n)),
        "delta": np.exp(_n(r, 0.0, 0.5, n)),
    }


def _prior_ilog2(r: np.random.Generator, n: int) -> Params:
    return {"c": _u(r, 0.0, 1.0, n), "a": _u(r, -0.5, 0.5, n)}


def _prior_vap(r: np.random.Generator, n: int) -> Params:
    return {"a": _u(r, -2.0, 0.0, n), "b": _u(r, -4.0, 0.0, n), "c": np.exp(_u(r, -8.0, 0.0, n))}


def _prior_loglog_linear(r: np.random.Generator, n: int) -> Params:
    return {"a": np.exp(_n(r, -2.0, 1.0, n)), "b": np.exp(_u(r, 0.0, 1.0, n))}


def _prior_hill3(r: np.random.Generator, n: int) -> Params:
    return {
        "theta": _n(r, 0.8, 0.1, n),
        "eta": np.exp(_n(r, 1.0, 1.0, n)),
        "kappa": np.exp(_n(r, 1.0, 2.0, n)),
    }


@dataclass(frozen=True)
class Family:
    """One curve family: its formula and the prior over its parameters."""

    curve: Callable[..., np.ndarray]
    prior: Callable[[np.random.Generator, int], Params]


FAMILIES: dict[str, Family] = {
    "pow3": Family(pow3, _prior_pow3),
    "pow4": Family(pow4, _prior_pow4),
    "log_power": Family(log_power, _prior_log_power),
    "exp4": Family(exp4, _prior_exp4),
    "janoschek": Family(janoschek, _prior_janoschek),
    "mmf": Family(mmf, _prior_mmf),
    "weibull": Family(weibull, _prior_weibull),
    "ilog2": Family(ilog2, _prior_ilog2),
    "vap": Family(vap, _prior_vap),
    "loglog_linear": Family(loglog_linear, _prior_loglog_linear),
    "hill3": Family(hill3, _prior_hill3),
}
ALL_FAMILIES: tuple[str, ...] = tuple(FAMILIES)
#: The combination LC-PFN's released model is trained on.
LCPFN_FAMILIES: tuple[str, ...] = ("pow3", "ilog2", "janoschek")


# -- sampling -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CurvePrior:
    """A prior over curves: which families are combined, how weights and noise are drawn.

    ``noise_log_mean``/``noise_log_std``: the noise standard deviation is
    ``exp(N(mean, std))`` (LC-PFN: ``exp(N(-4, 1))``, a median of 0.018).
    """

    families: tuple[str, ...] = LCPFN_FAMILIES
    normalise: bool = False
    noise_log_mean: float = -4.0
    noise_log_std: float = 1.0
    length: int = MAX_EPOCHS

    def __post_init__(self) -> None:
        unknown = [f for f in self.families if f not in FAMILIES]
        if unknown or not self.families:
            raise ConfigError(
                f"curve families {list(self.families)!r} are not allowed; choose one or more of "
                f"{', '.join(ALL_FAMILIES)}"
            )
        if not 2 <= self.length <= 10_000:
            raise ConfigError(f"curve length {self.length!r} is not allowed; expected 2 to 10000 epochs")

    def sample(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` curves of :attr:`length` epochs: ``(clean, noisy)``, both ``(n, length)`` in [0, 1].

        ``clean`` is the noiseless combination (accepted only if it rises
        from first to last epoch and stays in [0, 1]); ``noisy`` adds Gaussian
        noise of a per-curve scale and is clipped to [0, 1], as an accuracy is.
        """
        if n < 0:
            raise ConfigError(f"number of curves {n!r} is not allowed; expected n >= 0")
        x = np.arange(1, self.length + 1, dtype=np.float64)
        kept: list[np.ndarray] = []
        have = 0
        while have < n:
            batch = self._combine(rng, x, max(2 * (n - have), 16))
            kept.append(batch)
            have += len(batch)
        clean = np.concatenate(kept)[:n] if kept else np.empty((0, self.length))
        noise = np.exp(rng.normal(self.noise_log_mean, self.noise_log_std, size=(n, 1)))
        noisy = np.clip(clean + rng.normal(size=clean.shape) * noise, 0.0, 1.0)
        return clean, noisy

    def _combine(self, rng: np.random.Generator, x: np.ndarray, n: int) -> np.ndarray:
        """Weighted sums of the families for ``n`` draws, the rejected ones removed."""
        weights = rng.uniform(0.0, 1.0, size=(n, len(self.families)))
        if self.normalise:
            weights /= weights.sum(axis=1, keepdims=True)
        y = np.zeros((n, len(x)))
        with np.errstate(all="ignore"):
            for k, name in enumerate(self.families):
                family = FAMILIES[name]
                y += weights[:, k : k + 1] * family.curve(x, **family.prior(rng, n))
        ok = np.isfinite(y).all(axis=1) & (y[:, -1] > y[:, 0]) & (y >= 0).all(axis=1) & (y <= 1).all(axis=1)
        return y[ok]


def sample_curves(
    seed: int, n: int, families: Sequence[str] = LCPFN_FAMILIES, length: int = MAX_EPOCHS
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` prior curves from a fresh generator seeded with ``seed`` (see :meth:`CurvePrior.sample`)."""
    prior = CurvePrior(families=tuple(families), normalise=len(families) > len(LCPFN_FAMILIES), length=length)
    return prior.sample(np.random.default_rng(seed), n)


__all__ = [
    "ALL_FAMILIES",
    "FAMILIES",
    "LCPFN_FAMILIES",
    "MAX_EPOCHS",
    "CurvePrior",
    "Family",
    "sample_curves",
]
