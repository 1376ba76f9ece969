"""FBNetV3's predictor: an MLP over (architecture, training recipe), pre-trained on cheap proxies.

Dai et al. 2021 ("FBNetV3: Joint Architecture-Recipe Search using Predictor
Pretraining") predict a network's accuracy from its architecture *and* the
recipe it is trained with, and make the few expensive results go further by
first training the predictor's architecture encoder on targets that cost
nothing to compute for thousands of architectures (FLOPs, parameters); the
accuracy model then starts from that encoder and is fine-tuned on the
observed accuracies.

Here each of ``members`` ensemble members is

* an *encoder*: ``layers`` x ``hidden`` ReLU units over the space's encoding
  (path or one-hot bits, as every predictor here);
* a *proxy head*: one output per proxy in ``proxies`` (any names of
  :data:`predictors.zero_cost.PROXIES`; default FLOPs, parameters and the
  data-free zero-cost score ``synflow``), trained in :meth:`RecipeMLP.pretrain`
  on the proxies' normal rank scores (scale-free: FLOPs in millions and log
  synflow weigh alike);
* an *accuracy head* over ``[encoder output, recipe vector]``, trained with
  the encoder (which starts from its pre-trained weights) in :meth:`RecipeMLP.fit`.

The recipe vector is whatever numeric encoding the caller uses (the
``fbnetv3`` strategy maps each decision to [0, 1]); without recipes the
predictor is an arch-only MLP and keeps the registry's predictor contract.
The mean and std over members are the prediction and its uncertainty. All
randomness comes from per-member generators seeded from ``seed``. The work
runs on one torch thread: the matrices are tiny, and on a busy machine
(the search driver shares it with trials) more threads cost up to 30 times more.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from nas.core import PREDICTORS, Architecture, ConfigError, Predictor, SearchSpace, positive_int
from nas.core.predictor import check_targets
from nas.core.seeds import check_seed
from nas.training import torch_threads
from predictors.base import optimiser_options
from predictors.ensemble import member_seeds, spread
from predictors.features import Featurizer
from predictors.mlp import init_from, regress, relu_layers
from predictors.targets import TargetTransform
from predictors.zero_cost import PROXIES, score_arch, synthetic_batch

logger = logging.getLogger(__name__)

#: The pre-training targets FBNetV3 uses (FLOPs, parameters) plus a data-free zero-cost score.
DEFAULT_PROXIES: tuple[str, ...] = ("flops", "params", "synflow")

_Method = TypeVar("_Method", bound=Callable[..., Any])


def _one_thread(method: _Method) -> _Method:
    """Run ``method`` on one torch thread (restored afterwards)."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with torch_threads(1):
            return method(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


#: Phases of a member's randomness (one generator each, so pre-training does not shift the fit's draws).
_PRETRAIN, _FIT = 0, 1


class _Member(nn.Module):
    """One ensemble member: encoder, proxy head and (once the recipe width is known) accuracy head."""

    def __init__(self, width_in: int, hidden: int, layers: int, proxies: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(*relu_layers(width_in, hidden, layers))
        self.proxy_head = nn.Linear(hidden, proxies)
        self.head: nn.Module | None = None

    def attach_head(self, recipe_width: int, hidden: int, generator: torch.Generator) -> None:
        with torch.random.fork_rng(devices=[]):  # nn.Linear draws from the global RNG on construction
            head = nn.Sequential(
                nn.Linear(self.proxy_head.in_features + recipe_width, hidden), nn.ReLU(), nn.Linear(hidden, 1)
            )
        self.head = init_from(head, generator).double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Accuracy from ``[arch bits | recipe]`` once a head is attached, else the proxies."""
        width = self.encoder[0].in_features
        embedding = self.encoder(x[:, :width])
        if self.head is None:
            return self.proxy_head(embedding)
        return self.head(torch.cat([embedding, x[:, width:]], dim=1))


@PREDICTORS.register("recipe_mlp")
class RecipeMLP(Predictor):
    """FBNetV3's predictor: proxy-pre-trained encoder plus an accuracy head over (arch, recipe)."""

    label = "recipe_mlp"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        *,
        members: int = 3,
        hidden: int = 32,
        layers: int = 2,
        epochs: int = 200,
        pretrain_epochs: int = 100,
        batch_size: int = 32,
        lr: float = 3e-3,
        weight_decay: float = 1e-3,
        proxies: Sequence[str] = DEFAULT_PROXIES,
        input_shape: Sequence[int] = (3, 32, 32),
        num_classes: int = 10,
        encoding: str = "auto",
        target_transform: str = "standard",
    ) -> None:
        super().__init__(space, check_seed(seed))
        self.members = positive_int(self.label, "members", members)
        self.hidden = positive_int(self.label, "hidden", hidden)
        self.layers = positive_int(self.label, "layers", layers)
        self.epochs = positive_int(self.label, "epochs", epochs)
        self.pretrain_epochs = positive_int(self.label, "pretrain_epochs", pretrain_epochs)
        self.batch_size = positive_int(self.label, "batch_size", batch_size)
        self.lr, self.weight_decay = optimiser_options(self.label, lr, weight_decay)
        if isinstance(proxies, str) or not proxies:
            raise ConfigError(
                f"{self.label} option proxies={proxies!r} is not allowed; expected a list of proxy names"
            )
        self.proxies = tuple(PROXIES.get(name).name for name in proxies)  # unknown names: close matches
        if len(input_shape) != 3 or not all(isinstance(d, int) and d >= 1 for d in input_shape):
            raise ConfigError(
                f"{self.label} option input_shape={list(input_shape)!r} is not allowed; expected [channels, height, width]"
            )
        self.input_shape = (int(input_shape[0]), int(input_shape[1]), int(input_shape[2]))
        self.num_classes = positive_int(self.label, "num_classes", num_classes, 2)
        self.featurizer = Featurizer(space, encoding)
        self.target = TargetTransform(target_transform)
        #: Per member: the encoder's pre-trained weights (None: not pre-trained).
        self._pretrained: list[dict[str, torch.Tensor]] | None = None
        self._members: list[_Member] | None = None
        self._recipe_width = 0

    # -- pre-training ------------------------------------------------------------------------
    @property
    def pretrained(self) -> bool:
        return self._pretrained is not None

    @_one_thread
    def proxy_table(self, archs: Sequence[Architecture]) -> np.ndarray:
        """The proxies of each architecture (rows) on a freshly initialised network, NaN where undefined."""
        x, y = synthetic_batch(2, self.input_shape, self.num_classes, seed=self.seed)
        rows = [
            score_arch(
                self.space,
                arch,
                self.proxies,
                x,
                y,
                seed=self.seed,
                num_classes=self.num_classes,
                fallback=math.nan,
            )
            for arch in archs
        ]
        return np.array([[row[name] for name in self.proxies] for row in rows], dtype=np.float64)

    @_one_thread
    def pretrain(self, archs: Sequence[Architecture], table: np.ndarray | None = None) -> RecipeMLP:
        """Train every member's encoder and proxy head on the proxies of ``archs`` (no result needed).

        ``table`` (rows of :attr:`proxies` values) skips computing them. Architectures with an
        undefined proxy are left out; each proxy is learned as the normal scores of its ranks.
        """
        if isinstance(archs, Architecture) or not isinstance(archs, Sequence) or len(archs) < 2:
            raise ConfigError("pretrain needs a sequence of at least 2 architectures")
        table = self.proxy_table(archs) if table is None else np.asarray(table, dtype=np.float64)
        if table.shape != (len(archs), len(self.proxies)):
            raise ConfigError(
                f"proxy table has shape {table.shape}; expected ({len(archs)}, {len(self.proxies)}) for {self.proxies}"
            )
        keep = np.isfinite(table).all(axis=1)
        if keep.sum() < 2:
            raise ConfigError(
                f"only {int(keep.sum())} of {len(archs)} architectures have finite proxies {list(self.proxies)}; "
                "pre-training needs at least 2"
            )
        x = self.featurizer([a for a, k in zip(archs, keep, strict=True) if k])
        columns = [
            TargetTransform("rank").fit_forward(col) if np.ptp(col) > 0 else np.zeros_like(col)
            for col in table[keep].T
        ]
        targets = np.stack(columns, axis=1)
        self._pretrained = []
        for seed in member_seeds(self.seed, self.members):
            generator = torch.Generator().manual_seed(_phase_seed(seed, _PRETRAIN))
            member = self._new_member(x.shape[1], generator)
            regress(
                member,
                x,
                targets,
                generator,
                self.pretrain_epochs,
                self.batch_size,
                self.lr,
                self.weight_decay,
            )
            self._pretrained.append({k: v.detach().clone() for k, v in member.encoder.state_dict().items()})
        logger.debug("%s: pre-trained on %d architectures x %s", self.label, int(keep.sum()), self.proxies)
        return self

    # -- the predictor contract ------------------------------------------------------------------
    @_one_thread
    def fit(
        self, archs: Sequence[Architecture], targets: Sequence[float], recipes: np.ndarray | None = None
    ) -> RecipeMLP:
        """Fine-tune on observed results; ``recipes`` is one numeric row per architecture (or None)."""
        if isinstance(archs, Architecture) or not isinstance(archs, Sequence) or not archs:
            raise ConfigError("fit needs a non-empty sequence of architectures")
        y = self.target.fit_forward(check_targets(targets, len(archs)))
        r = self._recipes(recipes, len(archs))
        self._recipe_width = r.shape[1]
        x = np.concatenate([self.featurizer(archs), r], axis=1)
        width = x.shape[1] - r.shape[1]
        if self._pretrained is not None and self._pretrained[0]["0.weight"].shape[1] != width:
            raise ConfigError(
                f"the pre-trained encoder takes {self._pretrained[0]['0.weight'].shape[1]} features, got {width}"
            )
        members = []
        for index, seed in enumerate(member_seeds(self.seed, self.members)):
            generator = torch.Generator().manual_seed(_phase_seed(seed, _FIT))
            member = self._new_member(width, generator)
            if self._pretrained is not None:
                member.encoder.load_state_dict(self._pretrained[index])
            member.attach_head(r.shape[1], self.hidden, generator)
            regress(member, x, y, generator, self.epochs, self.batch_size, self.lr, self.weight_decay)
            members.append(member.eval())
        self._members = members
        return self

    @_one_thread
    def predict_dist(
        self, archs: Sequence[Architecture], recipes: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        if self._members is None:
            raise ConfigError(f"{type(self).__name__} is not fitted; call fit(archs, targets) first")
        r = self._recipes(recipes, len(archs))
        if r.shape[1] != self._recipe_width:
            raise ConfigError(
                f"recipes have {r.shape[1]} columns, but the predictor was fitted with {self._recipe_width}"
            )
        x = torch.from_numpy(np.concatenate([self.featurizer(archs), r], axis=1))
        with torch.no_grad():
            mean, std = spread([m(x).squeeze(1).numpy() for m in self._members])
        return self.target.inverse(mean), self.target.inverse_std(mean, std)

    def predict(self, archs: Sequence[Architecture], recipes: np.ndarray | None = None) -> np.ndarray:
        return self.predict_dist(archs, recipes)[0]

    # -- internals ---------------------------------------------------------------------------------
    def _new_member(self, width: int, generator: torch.Generator) -> _Member:
        with torch.random.fork_rng(devices=[]):  # nn.Linear draws from the global RNG on construction
            member = _Member(width, self.hidden, self.layers, len(self.proxies))
        return init_from(member, generator).double()  # type: ignore[return-value]

    @staticmethod
    def _recipes(recipes: Any, count: int) -> np.ndarray:
        if recipes is None:
            return np.zeros((count, 0))
        r = np.asarray(recipes, dtype=np.float64)
        if r.ndim != 2 or r.shape[0] != count:
            raise ConfigError(
                f"recipes must be a matrix with one row per architecture ({count}), got shape {r.shape}"
            )
        if not np.isfinite(r).all():
            raise ConfigError("recipes contain NaN or infinity")
        return r


def _phase_seed(seed: int, phase: int) -> int:
    """A member's generator seed for one phase (pre-training, fitting): distinct, reproducible."""
    return int(np.random.SeedSequence([seed, phase]).generate_state(1)[0])


__all__ = ["DEFAULT_PROXIES", "RecipeMLP"]
