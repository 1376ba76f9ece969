"""BigNAS: one elastic supernet whose sub-networks are accurate without retraining.

Yu et al. (2020) train a supernet whose sub-networks are nested slices of the
largest (:class:`~nas.supernet.elastic.ElasticSupernet`) so that any of them,
taken with its inherited weights and BatchNorm recalibrated, is ready to
deploy. Each step (the *sandwich rule*) trains the largest sub-network on the
labels, then the smallest and ``num_random`` uniformly sampled ones on the
largest's soft predictions (*in-place distillation*: KL divergence to the
largest's detached softmax, in the same step). Gradients of all of them
accumulate in the shared weights before one optimiser step. Training the two
extremes every step is what keeps both ends of the space good; distilling
from the largest gives the small ones a smoother target than the labels.

Of BigNAS' training choices we implement those that matter at this scale:

* the last BatchNorm of every residual block starts with scale 0 (each
  block starts as the identity, so deep and shallow sub-networks start alike);
* no weight decay on BatchNorm parameters, biases and the kernel transforms
  (decay only on conv and linear weights; the transforms start at the
  identity, which decay would pull away from);
* label smoothing (``label_smoothing``, 0.1) on the largest sub-network's
  loss only -- the others learn from its soft labels.

Not implemented: BigNAS' exponential moving average of the weights, its
modified learning-rate schedule (constant ending) and its regularisation
(dropout, drop-path) of the largest network only; the supernets here are
small and trained for a few epochs, where these change little.

``derive`` returns the largest sub-network (the most accurate one BigNAS
produces); picking the best sub-network under a device budget is the job of
specialisation, which scores sub-networks with :meth:`BignasMethod.score`:
the extracted stand-alone network, BatchNorm recalibrated on training
batches, evaluated on held-out images.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError
from nas.core.oneshot import ELASTIC, ONESHOT
from nas.oneshot.method import OneShotMethod, batch_statistics
from nas.supernet.elastic import ElasticSupernet
from nas.supernet.recalibrate import recalibrate_bn


def decay_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Optimiser groups: decay on conv/linear weights only (not BN, biases or kernel transforms)."""
    decay, plain = [], []
    for name, parameter in model.named_parameters():
        (plain if parameter.ndim <= 1 or ".transforms." in name else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


@ONESHOT.register("bignas")
class BignasMethod(OneShotMethod):
    """Sandwich-rule training with in-place distillation of an elastic supernet (see the module docstring)."""

    name = "bignas"
    kinds = (ELASTIC,)
    specializable = True
    supernet: ElasticSupernet

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        s = self.settings
        # The base class decays every parameter; BigNAS exempts BatchNorm, biases (and our kernel transforms).
        self.w_optimizer = torch.optim.SGD(
            decay_groups(self.supernet, s.weight_decay), lr=s.lr, momentum=s.momentum
        )
        self.w_scheduler = self.make_w_scheduler()

    def build_supernet(self) -> ElasticSupernet:
        from nas.oneshot.build import build_elastic

        if self.settings.affine is False:
            raise ConfigError(
                "bignas needs affine BatchNorm (it zero-initialises residual scales); drop affine"
            )
        supernet = build_elastic(
            self.space,
            num_classes=self.data.num_classes,
            input_shape=self.data.input_shape,
            channels=self.settings.channels,
            cells=self.settings.cells,
        )
        assert isinstance(supernet, ElasticSupernet)
        return supernet

    def init_arch_parameters(self) -> None:
        """No architecture parameters: BigNAS' zero-initialised residuals, the two ends of the sandwich."""
        for norm in self.supernet.residual_norms():
            nn.init.zeros_(norm.weight)
        self.largest = self.supernet.largest()
        self.smallest = self.supernet.smallest()

    # -- training ----------------------------------------------------------------------------------
    def step_rng(self) -> np.random.Generator:
        """A numpy generator for this step's sampling, seeded from the checkpointed ``sample_generator``.

        Drawing the seed from the base class' generator means a resumed run
        samples as the uninterrupted one did without state of its own.
        """
        return np.random.default_rng(int(torch.randint(2**62, (1,), generator=self.sample_generator)))

    def sandwich(self, x: torch.Tensor, y: torch.Tensor, teacher: torch.Tensor) -> list[Architecture]:
        """Hook: this step's students on batch ``x, y``: the smallest and ``num_random`` uniform samples.

        ``teacher`` is the largest's detached softmax on ``x``. AttentiveNAS
        (:mod:`nas.oneshot.attentivenas`) overrides the hook to pick the samples
        by their loss on the batch; the step around it is shared. It runs
        before the optimiser step, so a scoring hook sees this step's weights.
        """
        count = int(self.settings.option("num_random"))
        rng = self.step_rng()
        return [self.smallest, *(self.space.sample(rng) for _ in range(count))]

    def train_step(
        self, x: torch.Tensor, y: torch.Tensor, x_arch: torch.Tensor, y_arch: torch.Tensor
    ) -> torch.Tensor:
        smoothing = float(self.settings.option("label_smoothing"))
        self.w_optimizer.zero_grad(set_to_none=True)
        logits = self.supernet.forward_arch(x, self.largest)
        F.cross_entropy(logits, y, label_smoothing=smoothing).backward()
        teacher = F.softmax(logits.detach(), dim=1)
        for arch in self.sandwich(x, y, teacher):
            student = F.log_softmax(self.supernet.forward_arch(x, arch), dim=1)
            F.kl_div(student, teacher, reduction="batchmean").backward()
        self.clip_and_step()
        return logits

    def predict(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        """The largest sub-network (the teacher: the supernet's validation curve)."""
        return self.supernet.forward_arch(x, self.largest)

    def derive(self) -> Architecture:
        """The largest sub-network (see the module docstring for why, and where budgets are handled)."""
        return self.largest

    # -- scoring with inherited weights -----------------------------------------------------------------
    @torch.no_grad()
    def score(self, arch: Architecture) -> float:
        """Accuracy (%) of ``arch``'s extracted network, BatchNorm recalibrated on ``bn_batches`` batches."""
        s, data = self.settings, self.data
        model = self.supernet.extract(arch)
        count = min(s.bn_batches * s.batch_size, len(data.y_weights))
        if count:
            starts = range(0, count, s.batch_size)
            recalibrate_bn(model, (self.images(data.x_weights[i : i + s.batch_size]) for i in starts))
            model.eval()
            return accuracy(model, data.x_arch, data.y_arch, s.score_images, s.eval_batch_size, self.device)
        with batch_statistics(model):
            return accuracy(model, data.x_arch, data.y_arch, s.score_images, s.eval_batch_size, self.device)

    # -- memory probe ------------------------------------------------------------------------------------
    def probe_paths(self) -> list[Any]:
        return [self.largest]  # one sub-network's activations are alive at a time; the largest's are most

    def probe_forward(self, x: torch.Tensor, path: Any) -> torch.Tensor:
        return self.supernet.forward_arch(x, path)


@torch.no_grad()
def accuracy(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, images: int, batch: int, device: torch.device
) -> float:
    """Accuracy (%) of ``model`` on the first ``images`` of ``x, y``, in batches."""
    correct, count = 0, min(images, len(y))
    for start in range(0, count, batch):
        stop = min(start + batch, count)
        correct += int((model(x[start:stop].to(device)).argmax(1) == y[start:stop].to(device)).sum())
    return 100.0 * correct / count


__all__ = ["BignasMethod", "accuracy", "decay_groups"]
