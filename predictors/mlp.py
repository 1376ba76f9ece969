"""An ensemble of small MLPs (torch), BANANAS-style.

White et al. (BANANAS, 2021) showed that a handful of independently
initialised MLPs on the path encoding gives both a good mean and a usable
uncertainty (the members' disagreement). Everything random (initialisation
and minibatch order) comes from a ``torch.Generator`` seeded per member, so
the same seed gives the same predictor and the global RNG is never touched.
Training is full CPU and takes well under a second per member at 100 points.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.core import PREDICTORS, SearchSpace, positive_int
from predictors.base import optimiser_options
from predictors.ensemble import MemberEnsemble


def relu_layers(width_in: int, hidden: int, layers: int) -> list[nn.Module]:
    """``layers`` x (Linear to ``hidden``, ReLU): the body of this ensemble's and ``recipe_mlp``'s MLPs.

    nn.Linear initialises itself from the global RNG: build under ``torch.random.fork_rng``
    and draw the real weights with :func:`init_from`.
    """
    modules: list[nn.Module] = []
    width = width_in
    for _ in range(layers):
        modules += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    return modules


def _mlp(width_in: int, hidden: int, layers: int, generator: torch.Generator) -> nn.Sequential:
    # nn.Linear initialises itself from the global RNG on construction; fork it so
    # that state is restored, then draw the real initial weights from the generator.
    with torch.random.fork_rng(devices=[]):
        modules = relu_layers(width_in, hidden, layers)
        modules.append(nn.Linear(hidden if layers else width_in, 1))
    net = nn.Sequential(*modules).double()
    init_from(net, generator)
    return net


def init_from(net: nn.Module, generator: torch.Generator) -> nn.Module:
    """Draw every linear layer's initial weights (torch's default scheme) from ``generator``."""
    for module in net.modules():
        if isinstance(module, nn.Linear):
            nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
            bound = 1.0 / math.sqrt(module.in_features)
            nn.init.uniform_(module.bias, -bound, bound, generator=generator)
    return net


def regress(
    net: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    generator: torch.Generator,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
) -> nn.Module:
    """Fit ``net`` to ``y`` (one column or several) by minibatch MSE, AdamW and a cosine schedule.

    Minibatch order comes from ``generator``, so a seeded generator gives the same fit.
    """
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    optimiser = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=epochs)
    n = xt.shape[0]
    net.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            batch = order[start : start + batch_size]
            optimiser.zero_grad()
            loss = nn.functional.mse_loss(net(xt[batch]).reshape(yt[batch].shape), yt[batch])
            loss.backward()
            optimiser.step()
        schedule.step()
    return net


@PREDICTORS.register("mlp_ensemble")
class MLPEnsemble(MemberEnsemble):
    """``members`` MLPs (``layers`` x ``hidden`` ReLU units); mean and std over members."""

    rank_continuous = True
    label = "mlp_ensemble"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        *,
        hidden: int = 32,
        layers: int = 2,
        epochs: int = 300,
        batch_size: int = 32,
        lr: float = 3e-3,
        weight_decay: float = 1e-3,
        **common: Any,
    ) -> None:
        super().__init__(space, seed, **common)
        self.hidden = positive_int(self.label, "hidden", hidden)
        self.layers = positive_int(self.label, "layers", layers)
        self.epochs = positive_int(self.label, "epochs", epochs)
        self.batch_size = positive_int(self.label, "batch_size", batch_size)
        self.lr, self.weight_decay = optimiser_options(self.label, lr, weight_decay)

    def _fit_member(self, x: np.ndarray, y: np.ndarray, seed: int) -> nn.Sequential:
        generator = torch.Generator().manual_seed(seed)
        net = _mlp(x.shape[1], self.hidden, self.layers, generator)
        regress(net, x, y, generator, self.epochs, self.batch_size, self.lr, self.weight_decay)
        return net.eval()

    def _predict_member(self, member: nn.Sequential, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return member(torch.from_numpy(x)).squeeze(1).numpy()
