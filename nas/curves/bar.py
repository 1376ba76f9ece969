"""The bar (Riemann) distribution: a density that is flat inside each bucket.

A PFN predicts a distribution over a continuous value by classifying it
into buckets (LC-PFN, after Müller et al. 2022): the network outputs one
logit per bucket, the softmax gives each bucket's probability, and the
density inside bucket ``i`` is ``p_i / width_i``. That makes the training
loss an exact negative log-likelihood and any shape learnable (skewed near
1, bimodal), which a Gaussian head could not be.

The outermost buckets carry half-normal tails instead of flat densities
(LC-PFN's "full support" variant), so a value outside the buckets still
gets a finite log-likelihood: the first bucket's mass spreads leftwards
from its right border, the last one's rightwards from its left border, each
half-normal with half its mass within the bucket's width.
"""

from __future__ import annotations

import math

import torch

from nas.core.errors import ConfigError

#: Φ⁻¹(0.75): a half-normal of scale s has half its mass below s · this.
_HALF_MASS = 0.6744897501960817


class BarDistribution:
    """Buckets between ``borders`` (strictly increasing, ``buckets + 1`` values); logits in the last dim."""

    def __init__(self, borders: torch.Tensor) -> None:
        borders = torch.as_tensor(borders, dtype=torch.float32)
        if borders.ndim != 1 or len(borders) < 4 or not bool((borders[1:] > borders[:-1]).all()):
            raise ConfigError(
                f"bucket borders must be a strictly increasing 1-D tensor of at least 4 values, got shape "
                f"{tuple(borders.shape)}"
            )
        self.borders = borders
        self.widths = borders[1:] - borders[:-1]
        # Scales of the half-normal tails (first and last bucket).
        self.left_scale = float(self.widths[0]) / _HALF_MASS
        self.right_scale = float(self.widths[-1]) / _HALF_MASS

    @property
    def buckets(self) -> int:
        return len(self.widths)

    def _check(self, logits: torch.Tensor) -> None:
        if logits.shape[-1] != self.buckets:
            raise ConfigError(
                f"logits have {logits.shape[-1]} buckets in the last dimension, expected {self.buckets}"
            )

    def _expand(self, per_bucket: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``per_bucket`` broadcast to ``y``'s batch shape, as a view (a grid of values costs no copies)."""
        shape = torch.broadcast_shapes(per_bucket.shape[:-1], y.shape)
        return per_bucket.expand(*shape, self.buckets)

    def bucket_of(self, y: torch.Tensor) -> torch.Tensor:
        """Index of the bucket holding each ``y``; values beyond the borders go to the outer buckets."""
        return (torch.searchsorted(self.borders, y.contiguous(), right=True) - 1).clamp(0, self.buckets - 1)

    def log_density(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """log p(y) under each distribution; ``y`` broadcasts with ``logits`` without its last dim."""
        self._check(logits)
        log_p = self._expand(torch.log_softmax(logits, dim=-1), y)
        y = y.expand(log_p.shape[:-1])
        index = self.bucket_of(y)
        out = log_p.gather(-1, index.unsqueeze(-1)).squeeze(-1) - torch.log(self.widths[index])
        first, last = index == 0, index == self.buckets - 1
        # The outer buckets: probability times a half-normal density instead of 1/width.
        left = _half_normal_log_pdf((self.borders[1] - y).clamp(min=0.0), self.left_scale)
        right = _half_normal_log_pdf((y - self.borders[-2]).clamp(min=0.0), self.right_scale)
        out = torch.where(first, log_p[..., 0] + left, out)
        return torch.where(last, log_p[..., -1] + right, out)

    def cdf(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """P(Y <= y) (``y`` broadcasts as in :meth:`log_density`)."""
        self._check(logits)
        p = torch.softmax(logits, dim=-1)
        below = self._expand(torch.cumsum(p, dim=-1) - p, y)  # mass of the buckets left of each bucket
        p = self._expand(p, y)
        y = y.expand(p.shape[:-1])
        index = self.bucket_of(y)
        inside = ((y - self.borders[index]) / self.widths[index]).clamp(0.0, 1.0)
        out = (
            below.gather(-1, index.unsqueeze(-1)).squeeze(-1)
            + p.gather(-1, index.unsqueeze(-1)).squeeze(-1) * inside
        )
        left = p[..., 0] * (1.0 - _half_normal_cdf((self.borders[1] - y).clamp(min=0.0), self.left_scale))
        right = below[..., -1] + p[..., -1] * _half_normal_cdf(
            (y - self.borders[-2]).clamp(min=0.0), self.right_scale
        )
        out = torch.where(index == 0, left, out)
        return torch.where(index == self.buckets - 1, right, out).clamp(0.0, 1.0)

    def prob_above(self, logits: torch.Tensor, threshold: float | torch.Tensor) -> torch.Tensor:
        """P(Y > threshold): LC-PFN's rule stops a trial when this is small for the incumbent's value."""
        y = torch.as_tensor(threshold, dtype=torch.float32).expand(logits.shape[:-1])
        return 1.0 - self.cdf(logits, y)

    def quantile(self, logits: torch.Tensor, q: float) -> torch.Tensor:
        """The value with probability ``q`` below it (0 < q < 1)."""
        self._check(logits)
        if not 0.0 < q < 1.0:
            raise ConfigError(f"quantile level {q!r} is not allowed; expected 0 < q < 1")
        p = torch.softmax(logits.double(), dim=-1)
        cum = torch.cumsum(p, dim=-1)
        index = torch.searchsorted(cum, torch.full((*cum.shape[:-1], 1), q, dtype=cum.dtype)).squeeze(-1)
        index = index.clamp(0, self.buckets - 1)
        mass = p.gather(-1, index.unsqueeze(-1)).squeeze(-1)
        before = cum.gather(-1, index.unsqueeze(-1)).squeeze(-1) - mass
        borders, widths = self.borders.double(), self.widths.double()
        inner = borders[index] + widths[index] * ((q - before) / mass.clamp(min=1e-300)).clamp(0.0, 1.0)
        # Inverting the tails' half-normal CDFs.
        left_u = (1.0 - q / mass.clamp(min=1e-300)).clamp(0.0, 1.0 - 1e-12)
        left = borders[1] - self.left_scale * math.sqrt(2.0) * torch.erfinv(left_u)
        right_u = ((q - before) / mass.clamp(min=1e-300)).clamp(0.0, 1.0 - 1e-12)
        right = borders[-2] + self.right_scale * math.sqrt(2.0) * torch.erfinv(right_u)
        out = torch.where(index == 0, left, inner)
        return torch.where(index == self.buckets - 1, right, out).float()

    def median(self, logits: torch.Tensor) -> torch.Tensor:
        return self.quantile(logits, 0.5)


def _half_normal_log_pdf(z: torch.Tensor, scale: float) -> torch.Tensor:
    return 0.5 * math.log(2.0 / math.pi) - math.log(scale) - 0.5 * (z / scale) ** 2


def _half_normal_cdf(z: torch.Tensor, scale: float) -> torch.Tensor:
    return torch.erf(z / (scale * math.sqrt(2.0)))


def borders_from_values(
    values: torch.Tensor, buckets: int, low: float = 0.0, high: float = 1.0
) -> torch.Tensor:
    """``buckets + 1`` borders from ``low`` to ``high``, finer where ``values`` are dense.

    LC-PFN puts equal numbers of prior values in each bucket. Clipped curves
    pile values on 0 and 1, which would give zero-width buckets, so the
    quantile borders are averaged with evenly spaced ones: strictly
    increasing, and still finer where the prior puts its mass.
    """
    if buckets < 3:
        raise ConfigError(f"buckets={buckets!r} is not allowed; expected at least 3")
    levels = torch.linspace(0.0, 1.0, buckets + 1, dtype=torch.float64)
    quantiles = torch.quantile(values.double().flatten()[:1_000_000].clamp(low, high), levels)
    even = low + (high - low) * levels
    borders = 0.5 * (quantiles + even)
    borders[0], borders[-1] = low, high
    return borders.float()


__all__ = ["BarDistribution", "borders_from_values"]
