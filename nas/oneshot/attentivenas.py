"""AttentiveNAS: BigNAS' sandwich rule with the middle sub-networks picked at the Pareto front.

Wang et al. (2021) keep BigNAS' step (:mod:`nas.oneshot.bignas`: the largest
on the labels, the smallest and the middle sub-networks distilled from it,
one optimiser step) and change only how the middle ones are chosen. Uniform
samples rarely lie on the accuracy-size Pareto front; AttentiveNAS trains
the sub-networks at the front's edge instead. Each pick:

1. draws a size level from the space's size distribution (the prior of
   uniform sampling, so every size range is trained as often as before);
2. samples ``candidates`` sub-networks of that level (uniform samples kept
   only if their size falls in the level: the uniform distribution
   restricted to it);
3. ranks them by a cheap score with the inherited weights and trains the
   best (``pareto: best``, *BestUp*: pushes the front up) or the worst
   (``pareto: worst``, *WorstUp*: lifts the weakest of each size).

The score (``candidate_score``) is the paper's ``loss``: each candidate's
label-smoothed cross-entropy on the step's batch, computed without gradients
and with the batch's own BatchNorm statistics (the running ones untouched);
``distill`` ranks by the KL divergence to the largest's soft labels, the loss
the candidate would then train on. Defaults are the paper's released
BestUp-3 setting: the best of 3 candidates by loss. A step costs BigNAS'
``2 + num_random`` forward/backward passes plus ``num_random * candidates``
forward passes.

Differences from the paper: the size is the sub-network's parameter count
(:meth:`~nas.supernet.elastic.ElasticSupernet.size`, a table sum for fbnet)
rather than its FLOPs, and the levels are :data:`LEVELS` equal-probability
bins of the sizes of :data:`CALIBRATION` uniform samples (the paper rounds
FLOPs to 25 MFLOPs steps of ImageNet models, a scale that does not carry to
other spaces); like the paper, a pick that finds no candidate of its level in
:data:`MAX_TRIALS` samples takes the last samples anyway. The accuracy
predictor the paper also tries in place of the loss is not implemented.

Everything else (initialisation, decay groups, derive, scoring for
specialisation, checkpoints) is BigNAS': the level boundaries are recomputed
from the seed, and the picks draw from BigNAS' checkpointed sampler, so a
resumed run continues exactly.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from nas.core.architecture import Architecture
from nas.core.oneshot import ONESHOT
from nas.oneshot.bignas import BignasMethod
from nas.oneshot.method import batch_statistics

#: Uniform samples whose sizes fix the levels (drawn once from the seed; ~0.3 ms each on fbnet).
CALIBRATION = 500
#: Size levels, bins of (about) equal shares of the calibration samples (fewer if sizes repeat).
LEVELS = 10
#: Samples a pick tries per candidate before it takes one outside its level (the paper's 100).
MAX_TRIALS = 100


def level_bounds(sizes: np.ndarray, levels: int) -> np.ndarray:
    """Inner boundaries of ``levels`` bins holding equal shares of ``sizes`` (repeated ones merged)."""
    inner = np.quantile(sizes, np.linspace(0.0, 1.0, levels + 1)[1:-1], method="lower")
    return np.unique(inner)


@ONESHOT.register("attentivenas")
class AttentiveNasMethod(BignasMethod):
    """BigNAS' step with Pareto-aware middle sub-networks (see the module docstring)."""

    name = "attentivenas"

    def init_arch_parameters(self) -> None:
        """BigNAS' initialisation, and the size levels from :data:`CALIBRATION` samples of the seed."""
        super().init_arch_parameters()
        rng = np.random.default_rng([self.seed, 0xA77E])
        sizes = np.array([self.supernet.size(self.space.sample(rng)) for _ in range(CALIBRATION)])
        self.bounds = level_bounds(sizes, LEVELS)
        # each level's share of the samples: the prior a pick draws its level from (no level is empty)
        levels = np.searchsorted(self.bounds, sizes, side="right")
        self.level_shares = np.bincount(levels, minlength=len(self.bounds) + 1) / len(sizes)

    def level(self, arch: Architecture) -> int:
        """The size level of ``arch`` (0: the smallest sizes)."""
        return int(np.searchsorted(self.bounds, self.supernet.size(arch), side="right"))

    def candidates(self, rng: np.random.Generator) -> list[Architecture]:
        """``candidates`` uniform samples of one size level, the level drawn from the size prior."""
        count = int(self.settings.option("candidates", self.name))
        target = int(rng.choice(len(self.level_shares), p=self.level_shares))
        found: list[Architecture] = []
        while len(found) < count:
            for _ in range(MAX_TRIALS):
                arch = self.space.sample(rng)
                if self.level(arch) == target:
                    break
            found.append(arch)  # after MAX_TRIALS misses, the last sample anyway (as the paper does)
        return found

    @torch.no_grad()
    def candidate_scores(
        self, x: torch.Tensor, y: torch.Tensor, teacher: torch.Tensor, archs: list[Architecture]
    ) -> list[float]:
        """Each candidate's loss on the batch (lower is better), per ``candidate_score``."""
        smoothing = float(self.settings.option("label_smoothing"))
        distill = self.settings.option("candidate_score") == "distill"
        scores = []
        with batch_statistics(self.supernet):
            for arch in archs:
                logits = self.supernet.forward_arch(x, arch)
                if distill:
                    loss = F.kl_div(F.log_softmax(logits, dim=1), teacher, reduction="batchmean")
                else:
                    loss = F.cross_entropy(logits, y, label_smoothing=smoothing)
                scores.append(float(loss))
        return scores

    def pick(self, archs: list[Architecture], scores: list[float]) -> Architecture:
        """The best (lowest loss) or worst (highest) of ``archs``, per ``pareto``; the first on ties."""
        best = self.settings.option("pareto") == "best"
        return archs[int(np.argmin(scores) if best else np.argmax(scores))]

    def sandwich(self, x: torch.Tensor, y: torch.Tensor, teacher: torch.Tensor) -> list[Architecture]:
        """The smallest and ``num_random`` Pareto-aware picks (BigNAS' uniform samples replaced)."""
        rng = self.step_rng()
        picks = []
        for _ in range(int(self.settings.option("num_random"))):
            archs = self.candidates(rng)
            picks.append(self.pick(archs, self.candidate_scores(x, y, teacher, archs)))
        return [self.smallest, *picks]


__all__ = ["CALIBRATION", "LEVELS", "MAX_TRIALS", "AttentiveNasMethod", "level_bounds"]
