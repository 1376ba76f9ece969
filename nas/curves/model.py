"""The curve PFN: a small transformer from a partial curve to a distribution at later epochs.

Each observed epoch is a token (its epoch and value); each epoch asked
about is a query token (its epoch only). Observed tokens attend to each
other and queries attend only to observed tokens, never to other queries,
so a query's prediction does not depend on which other epochs were asked
about and one forward pass answers any number of them (LC-PFN's
attention pattern). There is no positional encoding besides the epoch
itself: the set of observations is what matters, not their order.

Curves of different lengths share a batch by padding the observed tokens;
the padding is masked out of every attention.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nas.curves.prior import MAX_EPOCHS


def epoch_features(epochs: torch.Tensor) -> torch.Tensor:
    """``(..., 2)`` features of 1-based epochs: linear and logarithmic position in [0, 1].

    The families are power laws and logarithms of the epoch, so the log
    position lets early epochs, where curves change fastest, be told apart.
    """
    return torch.stack([epochs / MAX_EPOCHS, torch.log(epochs) / math.log(MAX_EPOCHS)], dim=-1)


class Block(nn.Module):
    """Pre-norm transformer block whose keys and values are the observed tokens only."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.query = nn.Linear(width, width)
        self.key_value = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))

    def forward(self, x: torch.Tensor, observed: int, mask: torch.Tensor | None) -> torch.Tensor:
        """``x``: (B, T, W), its first ``observed`` tokens are the keys; ``mask``: (B, 1, 1, observed)."""
        b, t, w = x.shape
        h = self.norm1(x)
        q = self.query(h).view(b, t, self.heads, -1).transpose(1, 2)
        k, v = self.key_value(h[:, :observed]).view(b, observed, 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.out(attended.transpose(1, 2).reshape(b, t, w))
        return x + self.mlp(self.norm2(x))


class CurvePFN(nn.Module):
    """Logits over ``buckets`` for the value at each query epoch, given the observed (epoch, value) pairs."""

    def __init__(self, buckets: int, width: int = 64, depth: int = 4, heads: int = 4) -> None:
        super().__init__()
        self.config = {"buckets": buckets, "width": width, "depth": depth, "heads": heads}
        self.epoch_embed = nn.Linear(2, width)
        self.value_embed = nn.Linear(1, width)
        self.query_embed = nn.Parameter(torch.zeros(width))
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, buckets))

    def forward(
        self,
        epochs: torch.Tensor,
        values: torch.Tensor,
        query_epochs: torch.Tensor,
        valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``epochs``/``values``/``valid``: (B, K) observations (``valid`` False marks padding);
        ``query_epochs``: (B, Q). Returns (B, Q, buckets) logits."""
        observed = epochs.shape[1]
        # Values are accuracies in [0, 1]: centred and scaled to unit variance of U(0, 1).
        tokens = self.epoch_embed(epoch_features(epochs)) + self.value_embed(
            ((values - 0.5) * 3.46).unsqueeze(-1)
        )
        queries = self.epoch_embed(epoch_features(query_epochs)) + self.query_embed
        x = torch.cat([tokens, queries], dim=1)
        mask = None if valid is None else valid[:, None, None, :]
        for block in self.blocks:
            x = block(x, observed, mask)
        return self.head(self.norm(x[:, observed:]))


__all__ = ["CurvePFN", "epoch_features"]
