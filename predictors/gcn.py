"""Graph convolutional predictor: the Neural Predictor of Wen et al. (ECCV 2020).

The network reads the cell itself, not an encoding of its decisions: node
features are the one-hot operation labels of the computational graph
(:func:`predictors.graph.op_graph`: operations on nodes, zero edges dropped,
dead nodes pruned), the adjacency matrix says where data flows. Each layer is
the paper's *bidirectional* graph convolution: one convolution along the
edges and one against them (a node hears its inputs and its consumers), with
self-loops, row-normalised, their ReLU outputs averaged. Node embeddings are
mean-pooled (so relabelling the nodes cannot change the output) and a small
MLP head regresses the objective with an MSE loss.

``two_stage=True`` is the paper's cascade: a classifier with the same body
(binary cross-entropy) learns which cells lie above the ``filter_quantile``
of the training targets, and the regressor is trained on those only; a
candidate the classifier filters out is ranked below every candidate it
keeps (through a monotone squash either side of the threshold, so the order
within each group is the regressor's and a prediction never depends on what
else is in the batch).

``graph_features=True`` feeds the GENNAPE-style graph statistics
(:func:`predictors.graph.graph_features`: operation counts, path depth,
degrees) to the head beside the pooled node states: global facts about the
graph that mean-pooled local convolutions see only indirectly.

Defaults: ``target_transform="rank"`` (a tenth of NAS-Bench-201's cells are
broken and would dominate a squared loss) and ``graph_features=True``; both
were chosen on splits not used for the reported figures (docs/predictors.md).

``members`` networks differ only in their seed; their spread is the std a
search's acquisition needs. All randomness (initialisation, dropout,
minibatch order) is drawn inside a forked torch RNG seeded per member, so the
same seed gives the same predictor and the global RNG is never touched.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from nas.core import PREDICTORS, Architecture, ConfigError, Predictor, SearchSpace, positive_int
from nas.core.seeds import check_seed
from predictors.base import check_targets, fraction_option, optimiser_options
from predictors.ensemble import member_seeds
from predictors.graph import OTHER, GraphFeaturizer, OpGraph, graph_features, op_graph, vocabulary
from predictors.targets import TargetTransform

#: Node features, along- and against-edge propagation matrices, node mask, graph-level features.
Tensors = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def graph_tensors(
    graphs: Sequence[OpGraph], labels: Sequence[str], extra: np.ndarray | None = None
) -> Tensors:
    """A batch's padded node features, propagation matrices, node mask and graph-level ``extra`` rows."""
    index = {label: k for k, label in enumerate(labels)}
    other = index[OTHER]
    size = max(len(g.ops) for g in graphs)
    x = torch.zeros((len(graphs), size, len(labels)))
    adjacency = torch.zeros((len(graphs), size, size))
    mask = torch.zeros((len(graphs), size))
    for b, graph in enumerate(graphs):
        n = len(graph.ops)
        x[b, torch.arange(n), [index.get(op, other) for op in graph.ops]] = 1.0
        adjacency[b, :n, :n] = torch.from_numpy(graph.adjacency).float() + torch.eye(n)
        mask[b, :n] = 1.0

    def row_normalised(a: torch.Tensor) -> torch.Tensor:
        return a / a.sum(dim=2, keepdim=True).clamp(min=1.0)

    # Along the edges a node averages itself and its inputs; against them, itself and its consumers.
    rows = torch.zeros((len(graphs), 0)) if extra is None else torch.from_numpy(extra).float()
    return x, row_normalised(adjacency.transpose(1, 2)), row_normalised(adjacency), mask, rows


class GCNNetwork(nn.Module):
    """Bidirectional GCN layers, masked mean pooling, MLP head (pooled state + ``extra`` inputs) to one output."""

    def __init__(
        self, features: int, hidden: int, layers: int, head: int, dropout: float, extra: int = 0
    ) -> None:
        super().__init__()
        widths = [features] + [hidden] * layers
        pairs = list(zip(widths[:-1], widths[1:], strict=True))
        self.along = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in pairs)
        self.against = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in pairs)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Sequential(
            nn.Linear(hidden + extra, head), nn.ReLU(), nn.Dropout(dropout), nn.Linear(head, 1)
        )

    def embed(
        self, x: torch.Tensor, along: torch.Tensor, against: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """The graph embedding: mean of the final node embeddings over real (unpadded) nodes."""
        h = x
        for forward, backward in zip(self.along, self.against, strict=True):
            h = 0.5 * (F.relu(along @ forward(h)) + F.relu(against @ backward(h)))
            h = self.dropout(h)
        return (h * mask.unsqueeze(2)).sum(dim=1) / mask.sum(dim=1, keepdim=True)

    def forward(
        self,
        x: torch.Tensor,
        along: torch.Tensor,
        against: torch.Tensor,
        mask: torch.Tensor,
        extra: torch.Tensor,
    ) -> torch.Tensor:
        pooled = torch.cat([self.embed(x, along, against, mask), extra], dim=1)
        return self.head(pooled).squeeze(1)


@functools.lru_cache(maxsize=1 << 16)
def _op_graph(space: SearchSpace, arch: Architecture) -> OpGraph:
    """Op graphs are pure functions of (space, arch) and cost a millisecond each: cache them across fits."""
    return op_graph(space, arch)


@PREDICTORS.register("gcn")
class GCNPredictor(Predictor):
    """``members`` bidirectional GCNs on the op graph; optional classify-then-regress cascade."""

    label = "gcn"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        *,
        members: int = 3,
        hidden: int = 64,
        layers: int = 3,
        head: int = 64,
        dropout: float = 0.1,
        epochs: int = 200,
        batch_size: int = 16,
        lr: float = 3e-3,
        weight_decay: float = 1e-3,
        target_transform: str = "rank",
        two_stage: bool = False,
        filter_quantile: float = 0.2,
        graph_features: bool = True,
    ) -> None:
        super().__init__(space, check_seed(seed))
        name = self.label
        self.members = positive_int(name, "members", members)
        self.hidden = positive_int(name, "hidden", hidden)
        self.layers = positive_int(name, "layers", layers)
        self.head = positive_int(name, "head", head)
        self.epochs = positive_int(name, "epochs", epochs)
        self.batch_size = positive_int(name, "batch_size", batch_size)
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"{name} option dropout={dropout!r} is not allowed; expected [0, 1)")
        self.lr, self.weight_decay = optimiser_options(name, lr, weight_decay)
        if not isinstance(two_stage, bool):
            raise ConfigError(f"{name} option two_stage={two_stage!r} is not allowed; expected true or false")
        fraction_option(name, "filter_quantile", filter_quantile)
        if filter_quantile >= 1.0:
            raise ConfigError(
                f"{name} option filter_quantile={filter_quantile!r} is not allowed; expected (0, 1)"
            )
        self.dropout = dropout
        if not isinstance(graph_features, bool):
            raise ConfigError(
                f"{name} option graph_features={graph_features!r} is not allowed; expected true or false"
            )
        self.two_stage, self.filter_quantile = two_stage, filter_quantile
        self._graph_featurizer = GraphFeaturizer(space) if graph_features else None
        self.target = TargetTransform(target_transform)
        self.labels = vocabulary(space)
        self._fitted = False

    # -- graphs ----------------------------------------------------------------------------------
    def graphs(self, archs: Sequence[Architecture]) -> list[OpGraph]:
        if isinstance(archs, Architecture) or not isinstance(archs, Sequence) or not archs:
            raise ConfigError(f"expected a non-empty sequence of architectures, got {type(archs).__name__}")
        return [_op_graph(self.space, arch) for arch in archs]

    def member_seeds(self) -> list[int]:
        """Member ``k`` of a predictor seeded ``s`` uses ``s * 1000 + k`` (as the other ensembles)."""
        return member_seeds(self.seed, self.members)

    def _graph_rows(self, graphs: Sequence[OpGraph]) -> np.ndarray:
        featurizer = self._graph_featurizer
        assert featurizer is not None
        return np.stack([graph_features(g, featurizer.labels, featurizer.op_set) for g in graphs])

    def _tensors(self, graphs: Sequence[OpGraph]) -> Tensors:
        """Network inputs; graph-level features min-max scaled as on the training set."""
        extra = None
        if self._graph_featurizer is not None:
            extra = (self._graph_rows(graphs) - self._extra_low) / self._extra_span
        return graph_tensors(graphs, self.labels, extra)

    # -- training --------------------------------------------------------------------------------
    def fit(self, archs: Sequence[Architecture], targets: Sequence[float]) -> GCNPredictor:
        if isinstance(archs, Architecture) or not isinstance(archs, Sequence) or not archs:
            raise ConfigError("fit needs a non-empty sequence of architectures")
        y = check_targets(targets, len(archs))
        z = self.target.fit_forward(y)
        graphs = self.graphs(archs)
        if self._graph_featurizer is not None:
            rows = self._graph_rows(graphs)
            self._extra_low, span = rows.min(axis=0), np.ptp(rows, axis=0)
            self._extra_span = np.where(span > 0, span, 1.0)
        data = self._tensors(graphs)
        self._threshold = float(np.quantile(z, self.filter_quantile)) if self.two_stage else None
        keep = np.arange(len(z))
        if self._threshold is not None:
            above = np.flatnonzero(z > self._threshold)
            # The regressor learns the kept region only, as in the paper (unless too little is left).
            if above.size >= 2 and np.ptp(z[above]) > 0:
                keep = above
        regress = tuple(t[keep] for t in data)
        #: Training loss per epoch of every network trained, regressors first (for diagnostics).
        self.loss_curves: list[list[float]] = []
        self._regressors = [
            self._train(regress, torch.from_numpy(z[keep]).float(), s, "mse") for s in self.member_seeds()
        ]
        self._classifiers = []
        if self._threshold is not None:
            labels = torch.from_numpy((z > self._threshold).astype(np.float32))
            self._classifiers = [self._train(data, labels, s + 500, "bce") for s in self.member_seeds()]
        self._fitted = True
        return self

    def _train(self, data: Tensors, target: torch.Tensor, seed: int, loss: str) -> GCNNetwork:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            extra = data[4].shape[1]
            net = GCNNetwork(len(self.labels), self.hidden, self.layers, self.head, self.dropout, extra)
            optimiser = torch.optim.AdamW(
                net.parameters(), lr=self.lr, weight_decay=self.weight_decay, foreach=True
            )
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=self.epochs)
            criterion = F.mse_loss if loss == "mse" else F.binary_cross_entropy_with_logits
            n = target.shape[0]
            net.train()
            curve: list[float] = []
            for _ in range(self.epochs):
                order = torch.randperm(n)
                total = 0.0
                for start in range(0, n, self.batch_size):
                    batch = order[start : start + self.batch_size]
                    optimiser.zero_grad()
                    value = criterion(net(*(t[batch] for t in data)), target[batch])
                    value.backward()
                    optimiser.step()
                    total += value.item() * batch.numel()
                schedule.step()
                curve.append(total / n)
        self.loss_curves.append(curve)
        return net.eval()

    # -- prediction ------------------------------------------------------------------------------
    def predict_dist(self, archs: Sequence[Architecture]) -> tuple[np.ndarray, np.ndarray]:
        mean, std = self.predict_graphs(self.graphs(archs))
        return self.target.inverse(mean), self.target.inverse_std(mean, std)

    def predict_graphs(self, graphs: Sequence[OpGraph]) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std over members, in transformed target units, of op graphs given directly."""
        if not self._fitted:
            raise ConfigError(f"{type(self).__name__} is not fitted; call fit(archs, targets) first")
        data = self._tensors(graphs)
        with torch.no_grad():
            z = torch.stack([net(*data) for net in self._regressors])
            if self._classifiers:
                keep = torch.stack([net(*data) for net in self._classifiers]).mean(dim=0) > 0
                t = self._threshold
                z = torch.where(keep, t + F.softplus(z - t), t - F.softplus(t - z))
        predictions = z.double().numpy()
        return predictions.mean(axis=0), predictions.std(axis=0)

    def embed(self, archs: Sequence[Architecture]) -> np.ndarray:
        """The first regressor's graph embeddings (mean-pooled node states), one row per architecture."""
        if not self._fitted:
            raise ConfigError(f"{type(self).__name__} is not fitted; call fit(archs, targets) first")
        with torch.no_grad():
            data = self._tensors(self.graphs(archs))
            return self._regressors[0].embed(*data[:4]).double().numpy()
