"""The defining mechanism of each method on the hook loop, on a tiny nb201 supernet.

Derivation, checkpoint-resume and the option checks of every registered
method are covered by the contract tests of ``tests/test_oneshot.py``; here
each method shows what its paper says it does.
"""

from __future__ import annotations

import copy
import logging
import math
import re

import pytest
import torch
from torch import nn

from nas.core.errors import ConfigError
from nas.data import Dataset, load_dataset
from nas.oneshot import create_method, run_oneshot
from nas.oneshot.dropnas import op_groups
from nas.oneshot.loop import check_options
from nas.oneshot.rarts import distance, proximity
from nas.oneshot.resource import BUDGET_WINDOW, device_table, latency_table
from nas.oneshot.sharpdarts import cosine_power_annealing
from nas.supernet import CellPath
from search_spaces import get_space
from search_spaces.fbnet.supernet import LAYERS
from search_spaces.nb201.supernet import SearchCell as Nb201SearchCell

pytestmark = pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad")
BEST_NB201 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
SYNTHETIC = {"name": "synthetic", "num_samples": 160, "num_test": 16, "num_classes": 4, "shape": (3, 8, 8)}


@pytest.fixture(scope="module")
def data() -> Dataset:
    return load_dataset(SYNTHETIC, seed=0)


def make(method: str, data: Dataset, **options: object):
    settings = {"epochs": 2, "batch_size": 16, "check_memory": False, **options}
    return create_method(method, get_space("nb201", channels=4, cells=1), data, settings, seed=0)


def arch_grads(method, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    method.a_optimizer.zero_grad(set_to_none=True)
    method.arch_loss(x, y).backward(inputs=method.arch_parameters())
    return [p.grad.clone() for p in method.arch_parameters()]


# -- drnas --------------------------------------------------------------------------------------------------


def test_drnas_samples_lie_on_the_simplex_and_train_the_concentration(data: Dataset) -> None:
    searcher = make("drnas", data)
    first, second = searcher.op_weights()["cell"], searcher.op_weights()["cell"]
    assert torch.allclose(first.sum(-1), torch.ones(first.shape[0]), atol=1e-5) and (first >= 0).all()
    assert not torch.equal(first, second)  # a fresh sample per step, not a point estimate
    mean = searcher.expected_weights()["cell"]
    concentration = searcher.concentration()["cell"]
    assert torch.allclose(mean, concentration / concentration.sum(-1, keepdim=True))
    # The reparameterised sample carries the validation loss's gradient into alpha.
    grads = arch_grads(searcher, searcher.data.x_arch[:16], searcher.data.y_arch[:16])
    assert grads[0].abs().sum() > 0
    before = concentration.detach().clone()
    run_oneshot(searcher)
    after = searcher.concentration()["cell"].detach()
    assert (after - before).abs().max() > 1e-3  # the concentration moved
    assert searcher.alpha_history[-1] != searcher.alpha_history[0]


def test_drnas_draws_from_its_own_generator_only(data: Dataset) -> None:
    searcher = make("drnas", data)
    torch.manual_seed(123)
    outside = torch.rand(3)
    torch.manual_seed(123)
    searcher.op_weights()
    assert torch.equal(torch.rand(3), outside)  # the global stream is untouched
    state = searcher.sample_generator.get_state()
    sample = searcher.op_weights()["cell"]
    searcher.sample_generator.set_state(state)
    assert torch.equal(searcher.op_weights()["cell"], sample)  # the same state draws the same sample


def test_drnas_prior_term_is_the_kl_to_the_uniform_dirichlet(data: Dataset) -> None:
    searcher = make("drnas", data, prior_weight=0.5)
    assert float(searcher.regularization()) < 1e-4  # alpha ~ 0: elu(alpha) + 1 ~ 1, the prior itself
    with torch.no_grad():
        searcher.alpha["cell"][:, 1] += 3.0
    assert float(searcher.regularization()) > 0.1
    assert float(make("drnas", data, prior_weight=0.0).regularization()) == 0.0


# -- beta_darts -------------------------------------------------------------------------------------------------


def test_beta_decay_shrinks_the_spread_of_alpha(data: Dataset) -> None:
    """Same seed, same batches: with beta-decay, alpha ends less spread out than plain DARTS'."""
    options = {"epochs": 3, "arch_lr": 0.05, "arch_weight_decay": 0.0}
    plain = make("darts", data, **options)
    decayed = make("beta_darts", data, beta_decay=20.0, **options)
    for searcher in (plain, decayed):
        run_oneshot(searcher)
    spread = {s.name: float(s.alpha["cell"].detach().std(dim=-1).mean()) for s in (plain, decayed)}
    assert spread["beta_darts"] < 0.8 * spread["darts"]


def test_beta_decay_weight_ramps_linearly_from_zero(data: Dataset) -> None:
    searcher = make("beta_darts", data, epochs=5, beta_decay=2.0)
    with torch.no_grad():
        searcher.alpha["cell"].normal_()
    expected = torch.logsumexp(searcher.alpha["cell"], dim=-1).mean()
    for epoch, weight in [(0, 0.0), (2, 1.0), (4, 2.0)]:
        searcher.epoch = epoch
        assert float(searcher.regularization()) == pytest.approx(weight * float(expected), rel=1e-6)
    # Its gradient is softmax(alpha): the leading op of each edge decays most.
    searcher.alpha["cell"].grad = None
    searcher.regularization().backward()
    grad = searcher.alpha["cell"].grad
    assert torch.equal(grad.argmax(-1), searcher.alpha["cell"].detach().argmax(-1))


# -- sharpdarts ----------------------------------------------------------------------------------------------------


def test_sharpdarts_learning_rate_follows_cosine_power_annealing(data: Dataset) -> None:
    epochs, lr, low, power = 4, 0.05, 0.002, 10.0
    searcher = make("sharpdarts", data, epochs=epochs, lr=lr, lr_min=low, power_order=power)
    run_oneshot(searcher)
    seen = [row["lr"] for row in searcher.history]
    for epoch, value in enumerate(seen):
        share = (1 + math.cos(math.pi * epoch / epochs)) / 2
        assert value == pytest.approx(low + (lr - low) * (power**share - 1) / (power - 1), rel=1e-9)
    assert seen[0] == pytest.approx(lr)
    # Faster than cosine at first (the power curve lies under the cosine one), and p = 1 is cosine.
    cosine = [low + (lr - low) * (1 + math.cos(math.pi * e / epochs)) / 2 for e in range(epochs)]
    assert all(p < c for p, c in zip(seen[1:], cosine[1:], strict=True))
    assert cosine_power_annealing(1, epochs, lr, low, 1.0) == pytest.approx(cosine[1])


def test_sharpdarts_max_weight_runs_the_strongest_op_at_full_strength(data: Dataset) -> None:
    searcher = make("sharpdarts", data)
    with torch.no_grad():
        searcher.alpha["cell"].normal_()
    weights, softmax = searcher.op_weights()["cell"], searcher.expected_weights()["cell"]
    assert torch.allclose(weights.max(-1).values, torch.ones(weights.shape[0]))
    assert torch.allclose(weights - softmax, (1 - softmax.max(-1, keepdim=True).values).expand_as(weights))
    assert torch.equal(weights.argmax(-1), softmax.argmax(-1))


# -- dropnas ----------------------------------------------------------------------------------------------------------


def test_dropnas_drops_each_op_group_at_its_own_rate(data: Dataset) -> None:
    searcher = make("dropnas", data, drop_rate=0.05)
    group = searcher.supernet.groups[0]
    free, weighted = op_groups(group, searcher.space.parameter_free_ops())
    assert [group.ops[i] for i in free] == ["none", "skip_connect", "avg_pool_3x3"]
    assert [group.ops[i] for i in weighted] == ["nor_conv_1x1", "nor_conv_3x3"]
    masks = torch.stack([searcher.draw_mask(group) for _ in range(2000)])  # (draws, edges, ops)
    dropped = 1.0 - masks.double().mean(dim=(0, 1))
    # Each op drops at rate**(1/group size), a little less where an emptied group got an op back.
    assert dropped[free].tolist() == pytest.approx([0.05 ** (1 / 3)] * 3, abs=0.03)
    assert dropped[weighted].tolist() == pytest.approx([0.05 ** (1 / 2)] * 2, abs=0.03)
    assert 0.05 ** (1 / 2) - 0.05 / 2 - 0.03 < float(dropped[weighted].mean())
    for members in (free, weighted):  # a group is never dropped whole
        assert masks[..., members].any(dim=-1).all()
    # Ops are dropped a group at a time: both groups' patterns vary independently of each other.
    assert not torch.equal(masks[..., free].all(-1), masks[..., weighted].all(-1))


def test_dropnas_dropped_ops_get_no_weight_and_no_gradient(data: Dataset) -> None:
    searcher = make("dropnas", data, drop_rate=0.3)
    searcher.begin_step()
    keep = searcher.keep["cell"]
    assert not keep.all()
    weights = searcher.op_weights()["cell"]
    assert (weights[~keep] == 0).all()
    assert torch.allclose(weights.sum(-1), torch.ones(weights.shape[0]))
    grad = arch_grads(searcher, searcher.data.x_arch[:16], searcher.data.y_arch[:16])[0]
    assert (grad[~keep] == 0).all() and (grad[keep] != 0).any()
    assert torch.allclose(searcher.eval_path().weights["cell"], torch.softmax(searcher.alpha["cell"], -1))
    logits = searcher.supernet(searcher.data.x_arch[:4], searcher.train_path())
    assert (
        logits.shape == (4, 4) and not nn.functional.cross_entropy(logits, searcher.data.y_arch[:4]).isnan()
    )


# -- robust_darts ------------------------------------------------------------------------------------------------------


def test_power_iteration_matches_the_dense_hessian_of_a_tiny_model() -> None:
    """The dominant eigenvalue by Hessian-vector products equals the largest |eigenvalue| of the dense Hessian."""
    from nas.oneshot.robust_darts import dominant_eigenvalue

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(32, 5, generator=generator)
    y = torch.randint(3, (32,), generator=generator)
    weights = torch.randn(5, 3, generator=generator)
    alpha = torch.randn(2, 3, generator=generator, requires_grad=True)

    def loss_of(a: torch.Tensor) -> torch.Tensor:  # a softmax-mixed two-layer model, like a mixed op
        hidden = torch.tanh(x @ weights) * torch.softmax(a[0], -1) + torch.sigmoid(x @ weights) * a[1]
        return nn.functional.cross_entropy(hidden * 3.0, y)

    dense = torch.autograd.functional.hessian(loss_of, alpha.detach()).reshape(6, 6)
    eigenvalues = torch.linalg.eigvalsh(dense)
    expected = float(eigenvalues[eigenvalues.abs().argmax()])
    found = dominant_eigenvalue(lambda: loss_of(alpha), [alpha], 200, torch.Generator().manual_seed(1))
    assert found == pytest.approx(expected, rel=1e-3)


def test_robust_darts_stops_when_the_eigenvalue_grows_and_falls_back(data: Dataset) -> None:
    from nas.oneshot.robust_darts import early_stop_epoch

    assert early_stop_epoch([1.0, 1.0, 1.1, 1.2], window=2, ratio=0.75) is None  # grew by 15%: go on
    assert early_stop_epoch([1.0, 1.0, 1.5, 1.5], window=2, ratio=0.75) == 2  # grew by 50%: back to epoch 2
    assert early_stop_epoch([1.0, 1.0, 1.5], window=2, ratio=0.75) is None  # too few epochs to judge

    searcher = make(
        "robust_darts", data, epochs=4, hessian_window=1, hessian_iterations=5, hessian_ratio=0.999
    )
    searcher.fit(lambda trained, metrics: setattr(trained, "stop_reason", "pause"))
    searcher.stop_reason = None
    first = {k: v.detach().clone() for k, v in searcher.alpha.items()}
    assert len(searcher.eigenvalues) == 1 and math.isfinite(searcher.eigenvalues[0])
    assert searcher.history[0]["hessian_eigenvalue"] == searcher.eigenvalues[0]
    searcher.train_epoch()
    searcher.after_epoch({})
    searcher.eigenvalues[-1] = 10.0 * abs(searcher.eigenvalues[0]) + 1.0  # as if the loss turned sharp
    reason = searcher.should_stop({})
    assert reason is not None and "derived from epoch 1" in reason
    assert all(torch.equal(searcher.alpha[k], first[k]) for k in first)


def test_robust_darts_trains_exactly_as_darts_until_it_stops(data: Dataset) -> None:
    """Measuring the eigenvalue changes nothing of training: DARTS-ES is DARTS plus a stop, so the
    plain-DARTS collapse the stop must beat is on robust_darts' own curves."""
    plain = make("darts", data, epochs=2)
    robust = make("robust_darts", data, epochs=2, hessian_iterations=3, hessian_window=5)
    plain.fit()
    robust.fit()
    for key in ("train_loss", "val_loss"):  # val_loss: BatchNorm's running statistics untouched too
        assert [h[key] for h in robust.history] == [h[key] for h in plain.history]
    assert robust.alpha_history == plain.alpha_history
    assert [h["skip_share"] for h in robust.history] == [h["skip_share"] for h in plain.history]
    assert all(torch.equal(robust.alpha[k], plain.alpha[k]) for k in plain.alpha)


def test_robust_darts_warns_once_when_its_stop_cannot_fire(
    data: Dataset, caplog: pytest.LogCaptureFixture
) -> None:
    """epochs=3 with hessian_window=2 ends before epoch 4, the stop's first chance: one warning, at the start."""
    with caplog.at_level(logging.WARNING, logger="nas.oneshot.robust_darts"):
        searcher = make("robust_darts", data, epochs=3, hessian_window=2, hessian_iterations=2)
    warnings = [r.getMessage() for r in caplog.records if r.name == "nas.oneshot.robust_darts"]
    assert len(warnings) == 1
    assert "epochs=3" in warnings[0] and "epoch 4" in warnings[0] and "hessian_window=2" in warnings[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="nas.oneshot.robust_darts"):
        searcher.fit()
        make(
            "robust_darts", data, epochs=4, hessian_window=2, hessian_iterations=2
        )  # can fire at its last epoch
    assert [r for r in caplog.records if r.name == "nas.oneshot.robust_darts"] == []
    assert searcher.epoch == 3


def test_robust_darts_memory_estimate_counts_the_double_backward(data: Dataset) -> None:
    from nas.oneshot import estimate_memory

    plain, robust = make("darts", data), make("robust_darts", data)
    ratio = estimate_memory(robust, 16).activations / estimate_memory(plain, 16).activations
    assert ratio == pytest.approx(2.0, rel=0.05)


# -- gold_nas -------------------------------------------------------------------------------------------------------


def test_gold_nas_prices_ops_by_flops_and_parameters(data: Dataset) -> None:
    searcher = make("gold_nas", data)
    ops = searcher.supernet.groups[0].ops
    cost = searcher.costs["cell"]
    by_op = {op: cost[:, o] for o, op in enumerate(ops)}
    assert torch.allclose(
        by_op["nor_conv_3x3"], by_op["nor_conv_3x3"][0].expand(6)
    )  # one cell: every edge alike
    assert float(by_op["nor_conv_3x3"][0]) > float(by_op["nor_conv_1x1"][0]) > 0.0
    for free in ("none", "skip_connect", "avg_pool_3x3"):
        assert float(by_op[free].abs().sum()) == 0.0
    assert float(cost.sum()) == pytest.approx(1.0, rel=1e-5)  # shares of the whole supernet
    assert not searcher.kept["cell"][:, ops.index("none")].any()  # the zero op starts pruned
    # Sigmoid weights: independent per op (no softmax budget), 0 for pruned ops.
    weights = searcher.op_weights()["cell"]
    assert torch.allclose(weights[:, 1:], torch.sigmoid(searcher.alpha["cell"][:, 1:]))
    # The penalty's gradient pushes exactly the ops that cost something down.
    searcher.alpha["cell"].grad = None
    searcher.regularization().backward()
    grad = searcher.alpha["cell"].grad
    assert (grad[:, [ops.index("nor_conv_1x1"), ops.index("nor_conv_3x3")]] > 0).all()
    assert (grad[:, [ops.index("skip_connect"), ops.index("avg_pool_3x3")]] == 0).all()


def test_gold_nas_starts_the_spaces_zero_ops_pruned(data: Dataset) -> None:
    searcher = make_on("gold_nas", get_space("darts", channels=4, cells=3), data)
    for group in searcher.supernet.groups:
        assert searcher.kept[group.name].all(dim=0).tolist() == [op != "none" for op in group.ops]
    # Without a zero op among the candidates, every op starts in the search.
    space = get_space("nb201", channels=4, cells=1, exclude_ops=["none"])
    assert make_on("gold_nas", space, data).kept["cell"].all()


def test_gold_nas_is_one_level_and_pruned_ops_stay_pruned(data: Dataset) -> None:
    searcher = make("gold_nas", data, prune_threshold=0.2, prune_max=2, arch_lr=0.05)
    ops = searcher.supernet.groups[0].ops
    conv3, conv1 = ops.index("nor_conv_3x3"), ops.index("nor_conv_1x1")
    with torch.no_grad():
        searcher.alpha["cell"][0, conv3] = -7.0
        searcher.alpha["cell"][1, conv1] = -6.5
        searcher.alpha["cell"][2, 1:] = -5.0  # every op of edge 2 below the threshold
    kept = searcher.kept["cell"]
    assert searcher.prune() == 2  # at most prune_max per round, the weakest first
    assert not kept[0, conv3] and not kept[1, conv1] and kept[2, 1:].all()
    assert [searcher.prune() for _ in range(3)] == [2, 1, 0]
    assert int(kept[2].sum()) == 1  # an edge keeps its strongest op
    with torch.no_grad():  # however strong alpha becomes, a pruned op has weight 0 and no gradient
        searcher.alpha["cell"][0, conv3] = 5.0
    assert float(searcher.op_weights()["cell"][0, conv3]) == 0.0
    # One level: one loss on one batch trains both alpha and the weights, in one backward pass.
    x, y = searcher.data.x_weights[:16], searcher.data.y_weights[:16]
    reference = copy.deepcopy(searcher.supernet)
    path = CellPath({"cell": searcher.op_weights()["cell"]})
    loss = nn.functional.cross_entropy(reference(x, path), y) + searcher.regularization()
    expected = torch.autograd.grad(loss, searcher.alpha["cell"])[0]
    before = [p.detach().clone() for p in searcher.supernet.parameters()]
    searcher.one_level_step(x, y)
    grad = searcher.alpha["cell"].grad
    assert torch.allclose(grad, expected, atol=1e-6) and grad[kept].abs().sum() > 0
    assert float(grad[0, conv3]) == 0.0 and float(grad[~kept].abs().sum()) == 0.0
    assert any(not torch.equal(b, p) for b, p in zip(before, searcher.supernet.parameters(), strict=True))
    run_oneshot(searcher)
    assert not kept[0, conv3] and not kept[1, conv1]
    assert str(searcher.derive()["1<-0"]) != "nor_conv_3x3"  # derived from the survivors only


def test_gold_nas_resource_penalty_shrinks_the_kept_set(data: Dataset) -> None:
    """Same seed and batches: a heavy resource penalty prunes more, and the costly ops first."""
    options = {"epochs": 2, "arch_lr": 0.1, "prune_every": 2, "prune_threshold": 0.3, "prune_max": 30}
    light = make("gold_nas", data, resource_weight=1e-3, **options)
    heavy = make("gold_nas", data, resource_weight=50.0, **options)
    assert light.kept_cost() == pytest.approx(heavy.kept_cost())
    for searcher in (light, heavy):
        run_oneshot(searcher)
    assert heavy.kept_ops() < light.kept_ops()
    assert heavy.kept_cost() < 0.5 * light.kept_cost()
    assert [h["kept_ops"] for h in heavy.history] == sorted(
        (h["kept_ops"] for h in heavy.history), reverse=True
    )
    assert heavy.history[-1]["kept_cost"] == pytest.approx(heavy.kept_cost())
    # A resource target stops the search as soon as the kept ops cost no more than it.
    target = make("gold_nas", data, resource_weight=50.0, min_resource=0.6, **{**options, "prune_max": 2})
    result = run_oneshot(target)
    assert result.stop_reason is not None and "pruning finished" in result.stop_reason
    assert heavy.kept_cost() < target.kept_cost() <= 0.6 < light.kept_cost() and target.prune() == 0


def test_gold_nas_prunes_fbnet_blocks_per_layer(data: Dataset) -> None:
    """On fbnet (alpha per layer) an edge is a layer: the kept-op masks are per-layer block masks."""
    searcher = make_on("gold_nas", FBNET, data, prune_threshold=0.2, prune_max=30)
    blocks, layer = list(LAYERS.ops), LAYERS.edges[0]
    kept, cost = searcher.kept["layers"], searcher.costs["layers"]
    assert kept.shape == cost.shape == (len(LAYERS.edges), len(blocks)) and kept.all()  # fbnet has no zero op
    assert float(cost.sum()) == pytest.approx(1.0, rel=1e-5)  # shares of the whole supernet
    identity = torch.tensor([plan.keeps_shape for plan in FBNET.plans])
    assert (cost[identity, blocks.index("skip")] == 0).all()  # where skip is the identity it costs nothing
    assert (cost[:, [b != "skip" for b in blocks]] > 0).all()  # every MBConv block has weights
    with torch.no_grad():
        searcher.alpha["layers"][0, :] = -5.0  # every block of the first layer below the threshold...
        searcher.alpha["layers"][0, 2] = -4.0  # ...this one the strongest
        searcher.alpha["layers"][1, 3] = -6.0
    before = searcher.kept_cost()
    assert searcher.prune() == len(blocks)  # the first layer keeps one block, the second loses one
    assert kept[0].tolist() == [b == 2 for b in range(len(blocks))]
    assert int(kept[1].sum()) == len(blocks) - 1 and not kept[1, 3] and kept[2:].all()
    assert searcher.kept_cost() < before
    with torch.no_grad():  # a pruned block has weight 0 and no gradient, however strong alpha becomes
        searcher.alpha["layers"][0, 0] = 5.0
    assert float(searcher.op_weights()["layers"][0, 0]) == 0.0
    searcher.one_level_step(searcher.data.x_weights[:16], searcher.data.y_weights[:16])
    grad = searcher.alpha["layers"].grad
    assert float(grad[~kept].abs().sum()) == 0.0 and grad[kept].abs().sum() > 0
    assert searcher.derive()[layer] == blocks[2]  # the layer's survivor, not the pruned strong alpha


# -- sd_darts -------------------------------------------------------------------------------------------------------


def test_sd_darts_distils_from_a_vote_of_supernet_snapshots(data: Dataset) -> None:
    from nas.oneshot.method import batch_statistics

    searcher = make("sd_darts", data, distill_teachers=2, distill_temperature=2.0, epochs=4)
    searcher.fit(lambda trained, metrics: setattr(trained, "stop_reason", "pause"))
    searcher.stop_reason = None
    assert searcher.teachers == [] and searcher.history[0]["distill_loss"] == 0.0  # no teacher in epoch 1
    frozen = copy.deepcopy(searcher.supernet)
    weights = {k: torch.softmax(a.detach(), -1) for k, a in searcher.alpha.items()}
    searcher.begin_epoch()
    (teacher,) = searcher.teachers
    assert teacher["epoch"] == 1
    x = searcher.data.x_arch[:16]
    logits = searcher.supernet(x, searcher.train_path())
    assert float(searcher.distillation(x, logits)) == pytest.approx(
        0.0, abs=1e-6
    )  # the student is the teacher
    for step in range(3):  # the student moves on; the teacher is the frozen snapshot
        index = slice(16 * step, 16 * step + 16)
        searcher.train_step(
            searcher.data.x_weights[index], searcher.data.y_weights[index], x, searcher.data.y_arch[:16]
        )
    with batch_statistics(frozen):
        expected = torch.softmax(frozen(x, CellPath(weights)) / 2.0, -1)
    assert torch.allclose(searcher.teacher_probs(x), expected, atol=1e-5)
    searcher.supernet.zero_grad(set_to_none=True)
    term = searcher.distillation(x, searcher.supernet(x, searcher.train_path()))
    assert float(term) > 1e-6
    term.backward()
    assert sum(float(p.grad.abs().sum()) for p in searcher.supernet.parameters() if p.grad is not None) > 0
    for epoch in (2, 3):  # a window of the last distill_teachers snapshots, oldest dropped
        searcher.epoch = epoch
        searcher.begin_epoch()
    assert [t["epoch"] for t in searcher.teachers] == [2, 3]


# -- smash ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("space", "size"), [("nb201", {"channels": 4, "cells": 1}), ("darts", {"channels": 4, "cells": 3})]
)
def test_smash_generates_the_weights_of_any_sampled_architecture(
    space: str, size: dict, data: Dataset
) -> None:
    import numpy as np

    from nas.oneshot.smash import generated_parameters

    searcher = create_method(
        "smash",
        get_space(space, **size),
        data,
        {"epochs": 1, "batch_size": 16, "check_memory": False},
        seed=0,
    )
    network = searcher.supernet
    shapes = {name: p.shape for name, p in generated_parameters(network.base).items()}
    rng = np.random.default_rng(0)
    archs = [searcher.space.sample(rng) for _ in range(4)]
    generated = [network.generate(network.encode(network.base.path(a))) for a in archs]
    for weights in generated:
        assert {k: v.shape for k, v in weights.items()} == shapes
    for first, second in zip(generated, generated[1:], strict=False):  # different archs, different weights
        assert all(not torch.allclose(first[k], second[k]) for k in shapes)
    x, y = searcher.data.x_weights[:8], searcher.data.y_weights[:8]
    # An architecture whose every convolution reaches the output (nb201 samples may leave a node unused).
    arch = searcher.space.parse(BEST_NB201) if space == "nb201" else archs[0]
    logits = network.forward_arch(x, arch)
    assert logits.shape == (8, 4)
    nn.functional.cross_entropy(logits, y).backward()
    # The loss trains the hypernetwork; the supernet's own kernels are never used.
    assert network.trunk[0].weight.grad.abs().sum() > 0
    assert all(network.base.get_parameter(k).grad is None for k in shapes)
    used = [i for i, right in enumerate(network.right) if right.grad is not None]
    assert 0 < len(used) < len(shapes)  # only the chosen ops' heads


def test_smash_ranks_candidates_with_generated_weights_and_refuses_other_spaces(data: Dataset) -> None:
    from nas.core import ConfigError

    options = {"candidates": 5, "score_images": 32, "bn_batches": 1, "hyper_hidden": 8}
    searcher = make("smash", data, epochs=1, **options)
    result = run_oneshot(searcher)
    top = result.evolution["top"]
    assert top[0]["arch"] == result.arch_string and 1 < len(top) <= 5
    assert [t["supernet_accuracy"] for t in top] == sorted(
        (t["supernet_accuracy"] for t in top), reverse=True
    )
    with pytest.raises(ConfigError, match="smash.*fbnet|smash.*searches darts, nb201"):
        create_method("smash", get_space("fbnet", width_mult=0.25), data, {"epochs": 1})


@pytest.mark.parametrize(
    ("method", "options", "fragment"),
    [
        ("gold_nas", {"prune_threshold": 1.5}, "prune_threshold: Input should be less than 1 (got 1.5)"),
        ("gold_nas", {"resource_growth": 1.0}, "resource_growth: Input should be greater than 1"),
        ("sd_darts", {"distill_teachers": 0}, "distill_teachers: Input should be greater than or equal to 1"),
        ("smash", {"hyper_rank": 1000}, "hyper_rank: Input should be less than or equal to 64 (got 1000)"),
        ("darts", {"candidates": 3}, "does not use option(s) candidates (used by smash, attentivenas)"),
    ],
)
def test_new_method_options_are_checked(method: str, options: dict, fragment: str, data: Dataset) -> None:
    from nas.core import ConfigError

    with pytest.raises(ConfigError) as error:
        make(method, data, **options)
    assert fragment in str(error.value)


# -- rarts, amended_darts, d_darts: bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "options", "fragment"),
    [
        ("rarts", {"relaxation": -1.0}, "greater than or equal to 0 (got -1.0)"),
        ("rarts", {"relaxation": 1000.0}, "less than or equal to 100 (got 1000.0)"),
        ("rarts", {"train_loss_weight": 0.0}, "greater than 0 (got 0.0)"),
        ("amended_darts", {"amend_weight": 11.0}, "less than or equal to 10 (got 11.0)"),
        ("amended_darts", {"relaxation": 1.0}, "does not use option(s) relaxation"),
        ("d_darts", {"selection": "perturbation"}, "does not use option(s) selection"),
    ],
)
def test_relaxed_amended_and_distributed_darts_refuse_bad_options(
    method: str, options: dict, fragment: str, data: Dataset
) -> None:
    with pytest.raises(ConfigError) as error:
        make(method, data, **options)
    assert fragment in str(error.value) and all(name in str(error.value) for name in options)


@pytest.mark.parametrize("method", ["rarts", "amended_darts", "d_darts"])
def test_relaxed_amended_and_distributed_darts_refuse_a_space_without_cells(
    method: str, data: Dataset
) -> None:
    hybrid = get_space("hybrid", blocks=2, downsamples=1, base_width=8)
    with pytest.raises(
        ConfigError, match=f"'{method}' does not support space 'hybrid'; it searches darts, nb201"
    ):
        create_method(method, hybrid, data, {"epochs": 1})


# -- rarts ----------------------------------------------------------------------------------------------------------


def test_rarts_weight_copies_drift_apart_and_the_penalty_pulls_them_together(data: Dataset) -> None:
    loose, tight = (
        make("rarts", data, epochs=1, relaxation=0.0),
        make("rarts", data, epochs=1, relaxation=20.0),
    )
    assert distance(loose.supernet, loose.twin) == 0.0  # y starts as a copy of w
    for searcher in (loose, tight):
        run_oneshot(searcher)
    apart = {s.settings.relaxation: s.history[-1]["weight_distance"] for s in (loose, tight)}
    assert apart[0.0] > 0 and apart[20.0] > 0  # trained on different splits, the copies differ
    assert apart[20.0] < 0.5 * apart[0.0]
    # The penalty's gradient is beta (w - y) on w, nothing on the anchor y.
    w = [p.detach().clone().requires_grad_() for p in loose.supernet.parameters()][:3]
    y = [p.detach().clone().requires_grad_() for p in loose.twin.parameters()][:3]
    proximity(w, y, 3.0).backward()
    assert all(torch.allclose(a.grad, 3.0 * (a - b)) and b.grad is None for a, b in zip(w, y, strict=True))


def test_rarts_memory_estimate_counts_the_second_network(data: Dataset) -> None:
    from nas.oneshot import estimate_memory

    searcher = make("rarts", data)
    plain, relaxed = estimate_memory(make("darts", data), 16), estimate_memory(searcher, 16)
    assert relaxed.activations / plain.activations == pytest.approx(2.0, rel=0.05)
    twin = sum(p.numel() * p.element_size() for p in searcher.twin.parameters())
    assert relaxed.optimizer - plain.optimizer == 3 * twin  # y, its gradients, its momentum


def test_rarts_alpha_learns_from_both_splits(data: Dataset) -> None:
    """alpha's gradient is grad L_val(y) + lambda grad L_train(w): linear in lambda, with both parts non-zero."""
    grads = {}
    for weight in (0.5, 1.0, 2.0):
        searcher = make("rarts", data, train_loss_weight=weight)
        x, y = searcher.data.x_weights[:16], searcher.data.y_weights[:16]
        xa, ya = searcher.data.x_arch[:16], searcher.data.y_arch[:16]
        with torch.no_grad():
            for p in searcher.twin.parameters():  # y != w, so the two parts are told apart
                p.mul_(1.1)
        loss = searcher.relaxed_arch_loss(x, y, xa, ya)
        grads[weight] = torch.autograd.grad(loss, searcher.arch_parameters())[0]
    train_part = (grads[2.0] - grads[1.0]) / 1.0
    assert torch.allclose(grads[1.0] - grads[0.5], 0.5 * train_part, atol=1e-7)
    val_part = grads[1.0] - train_part
    assert train_part.abs().sum() > 0 and val_part.abs().sum() > 0


# -- amended_darts -----------------------------------------------------------------------------------------------------


def test_amended_gradient_matches_the_dense_computation_on_a_tiny_model() -> None:
    """grad_a L_val - eta * d2L_train/(da dw) (H + decay I) grad_w L_val, with dense Hessians, in float64."""
    from nas.oneshot.amended_darts import amended_gradients

    generator = torch.Generator().manual_seed(0)
    x_train, x_val = torch.randn(24, 5, generator=generator), torch.randn(24, 5, generator=generator)
    y_train, y_val = (
        torch.randint(3, (24,), generator=generator),
        torch.randint(3, (24,), generator=generator),
    )
    weights = torch.randn(5, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    alpha = torch.randn(2, 3, generator=generator, dtype=torch.float64, requires_grad=True)

    def loss(w: torch.Tensor, a: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = x.double()  # a softmax-mixed pair of ops, like a mixed op
        hidden = torch.tanh(x @ w) * torch.softmax(a[0], -1) + torch.sigmoid(x @ w) * a[1]
        return nn.functional.cross_entropy(hidden * 3.0, y)

    eta, decay = 0.3, 0.01
    found = amended_gradients(
        lambda: loss(weights, alpha, x_val, y_val),
        lambda: loss(weights, alpha, x_train, y_train),
        [weights],
        [alpha],
        eta,
        decay,
    )[0]

    w0, a0 = weights.detach(), alpha.detach()
    hessian = torch.autograd.functional.hessian(lambda w: loss(w, a0, x_train, y_train), w0).reshape(15, 15)
    hessian = hessian + decay * torch.eye(15, dtype=torch.float64)

    def arch_gradient(w: torch.Tensor) -> torch.Tensor:
        a = a0.clone().requires_grad_()
        return torch.autograd.grad(loss(w, a, x_train, y_train), a, create_graph=True)[0]

    mixed = torch.autograd.functional.jacobian(arch_gradient, w0).reshape(6, 15)  # d2L_train / (da dw)
    val_w, val_a = torch.autograd.grad(loss(weights, alpha, x_val, y_val), [weights, alpha])
    expected = val_a.flatten() - eta * mixed @ hessian @ val_w.flatten()
    assert torch.allclose(found.flatten(), expected, rtol=1e-5, atol=1e-8)
    assert not torch.allclose(found, val_a, rtol=1e-3)  # the amended term matters
    assert torch.equal(weights.detach(), w0)  # the finite differences put the weights back


def test_amended_darts_step_leaves_the_weights_where_they_were(data: Dataset) -> None:
    searcher = make("amended_darts", data, amend_weight=1.0)
    before = [p.detach().clone() for p in searcher.supernet.parameters()]
    alpha = searcher.alpha["cell"].detach().clone()
    split = searcher.data
    searcher.arch_step(split.x_weights[:16], split.y_weights[:16], split.x_arch[:16], split.y_arch[:16])
    assert all(torch.equal(p, b) for p, b in zip(searcher.supernet.parameters(), before, strict=True))
    assert not torch.equal(searcher.alpha["cell"], alpha)


# -- d_darts ---------------------------------------------------------------------------------------------------------------


def test_d_darts_cells_get_their_own_alpha_and_move_independently(data: Dataset) -> None:
    searcher = make("d_darts", data, epochs=1)
    supernet = searcher.supernet
    assert sorted(searcher.alpha) == ["cell_0", "cell_1", "cell_2"] == [f"cell_{i}" for i in range(3)]
    with torch.no_grad():
        for alpha in searcher.alpha.values():
            alpha.normal_()
    seen: list[torch.Tensor] = []
    hooks = [
        cell.register_forward_pre_hook(lambda module, args: seen.append(args[1].detach().clone()))
        for cell in supernet.modules()
        if isinstance(cell, Nb201SearchCell)
    ]
    supernet(searcher.data.x_arch[:4], searcher.mixed_path())
    for hook in hooks:
        hook.remove()
    assert len(seen) == 3  # each cell ran with its own softmax(alpha_i)
    for i, weights in enumerate(seen):
        assert torch.allclose(weights, torch.softmax(searcher.alpha[f"cell_{i}"], -1))
    grads = arch_grads(searcher, searcher.data.x_arch[:16], searcher.data.y_arch[:16])
    assert not torch.allclose(grads[0], grads[1]) and not torch.allclose(grads[1], grads[2])

    before = {k: v.detach().clone() for k, v in searcher.alpha.items()}
    run_oneshot(searcher)
    moves = [searcher.alpha[k].detach() - before[k] for k in sorted(before)]
    assert all(m.abs().max() > 1e-4 for m in moves)
    assert not torch.allclose(moves[0], moves[1], atol=1e-6) and not torch.allclose(
        moves[1], moves[2], atol=1e-6
    )
    # The cell type's genotype is the argmax of the mean of its cells' distributions.
    mean = torch.stack([torch.softmax(searcher.alpha[k], -1) for k in sorted(before)]).mean(0)
    assert torch.allclose(searcher.expected_weights()["cell"], mean)
    assert searcher.derive() == supernet.derive({"cell": mean.detach().numpy()})
    report = searcher.selection_report()
    assert sorted(report["cells"]) == sorted(before) and 0.0 <= report["agreement"] <= 1.0


def test_d_darts_gives_every_darts_cell_its_own_alpha(data: Dataset) -> None:
    searcher = create_method(
        "d_darts", get_space("darts", channels=4, cells=3), data, {"epochs": 1, "check_memory": False}
    )
    groups = searcher.supernet.cell_groups
    assert len(groups) == 3 and set(groups) == {"normal", "reduce"}
    assert list(searcher.alpha) == [f"{group}_{i}" for i, group in enumerate(groups)]
    assert set(searcher.op_weights()) == {"normal", "reduce"}
    searcher.space.validate(searcher.derive())


# -- dnas and rc_darts: resource budgets --------------------------------------------------------------------


def make_on(method: str, space, data: Dataset, **options: object):
    settings = {"epochs": 2, "batch_size": 16, "check_memory": False, **options}
    return create_method(method, space, data, settings, seed=0)


FBNET = get_space("fbnet", width_mult=0.25)


@pytest.fixture(scope="module")
def pixel3(data_dir):
    return device_table(FBNET, "pixel3")


def test_dnas_expected_latency_is_the_device_table_weighted_sum(data: Dataset, pixel3) -> None:
    searcher = make_on("dnas", FBNET, data, latency_device="pixel3", target_latency_ms=20.0)
    with torch.no_grad():
        for alpha in searcher.alpha.values():
            alpha.copy_(torch.randn(alpha.shape, generator=torch.Generator().manual_seed(1)))
    probs = searcher.expected_weights()["layers"].detach().numpy()
    by_hand = pixel3.constant + sum(
        probs[i, o] * pixel3.costs[(layer, block)]
        for i, layer in enumerate(LAYERS.edges)
        for o, block in enumerate(LAYERS.ops)
    )
    assert float(searcher.expected_resource()) == pytest.approx(by_hand, rel=1e-5)
    # A one-hot distribution gives the architecture's table latency, which on pixel3 (additive,
    # HW-NAS-Bench) is the measured one.
    table = latency_table(FBNET)
    for row in (0, 1, 2):
        arch = table.archs[row]
        onehot = searcher.supernet.path(arch).weights
        measured = table.value(arch, "pixel3")
        assert float(searcher.resource.expected(onehot)) == pytest.approx(measured, rel=1e-4)
        assert searcher.resource.of(searcher.supernet.choices(arch)) == pytest.approx(measured, rel=1e-4)


def test_dnas_latency_term_pushes_alpha_toward_faster_blocks(data: Dataset, pixel3) -> None:
    fastest = pixel3.fastest(FBNET)
    searcher = make_on("dnas", FBNET, data, latency_device="pixel3", target_latency_ms=fastest + 1.0)
    alpha = searcher.alpha["layers"]
    (grad,) = torch.autograd.grad(searcher.latency_factor(), [alpha])
    costs = searcher.resource.costs["layers"]
    # Over the budget, descending the term moves every layer's weight to its cheaper blocks:
    # the gradient is largest on the slowest block and smallest on the fastest.
    assert (grad.argmax(dim=1) == costs.argmax(dim=1)).all()
    assert (grad.argmin(dim=1) == costs.argmin(dim=1)).all()
    before = float(searcher.expected_resource())
    optimizer = torch.optim.SGD([alpha], lr=1.0)
    for _ in range(3):
        optimizer.zero_grad()
        searcher.latency_factor().backward(inputs=[alpha])
        optimizer.step()
    assert float(searcher.expected_resource()) < before
    # Within budget the term is the constant factor alpha: plain cross-entropy, no pull.
    relaxed = make_on("dnas", FBNET, data, latency_device="pixel3", target_latency_ms=1000.0)
    factor = relaxed.latency_factor()
    assert float(factor) == pytest.approx(0.2)
    (flat,) = torch.autograd.grad(factor, [relaxed.alpha["layers"]])
    assert float(flat.abs().max()) == 0.0


def test_dnas_anneals_the_temperature_geometrically(data: Dataset) -> None:
    searcher = make("dnas", data, epochs=3, tau_max=4.0, tau_min=1.0, target_params=1e9)
    taus = []
    for epoch in range(3):
        searcher.epoch = epoch
        taus.append(searcher.tau())
    assert taus == pytest.approx([4.0, 2.0, 1.0])
    searcher.epoch = 0
    first, second = searcher.op_weights()["cell"], searcher.op_weights()["cell"]
    assert not torch.equal(first, second)  # a Gumbel sample per step
    assert torch.allclose(first.sum(-1), torch.ones(first.shape[0]))


def test_rc_darts_projects_alpha_within_the_parameter_budget(data: Dataset) -> None:
    space = get_space("nb201", channels=4, cells=1)
    free = make_on("rc_darts", space, data, target_params=1e9)
    uniform, smallest = float(free.expected_resource()), free.resource.minimum()
    target = smallest + 0.3 * (uniform - smallest)
    searcher = make_on("rc_darts", space, data, target_params=target)
    assert float(searcher.expected_resource()) <= target  # projected when created
    seen = []
    searcher.fit(lambda m, _: seen.append(float(m.expected_resource().detach())))
    assert seen and max(seen) <= target
    assert searcher.history[-1]["expected_params"] <= target
    # The projected alpha's argmax is the cheapest cell, far under budget; the budgeted read-out
    # spends the budget (the most probable cell within 5% under it) without exceeding it.
    argmax = searcher.resource.of(searcher.supernet.choices(searcher.magnitude_derive()))
    searcher.space.validate(searcher.derive())
    assert argmax < (1 - BUDGET_WINDOW) * target <= searcher.derived_resource() <= target
    # The projection changes only an infeasible alpha, and then only as far as the budget needs.
    assert searcher.project() == 0
    with torch.no_grad():
        searcher.alpha["cell"].zero_()
    assert searcher.project() > 0
    assert target * (1 - 2e-3) <= float(searcher.expected_resource()) <= target


def test_rc_darts_counts_only_the_edges_and_ops_a_darts_cell_keeps(data: Dataset) -> None:
    searcher = make_on("rc_darts", get_space("darts", channels=4, cells=3), data, target_params=1e9)
    arch = searcher.derive()
    # A derived cell's parameters: the constant plus its kept ops; the supernet's modules agree.
    kept = sum(
        sum(p.numel() for p in module.parameters())
        for group, edge, op, module in searcher.supernet.candidate_ops()
        if searcher.supernet.choices(arch)[group][edge] == op
    )
    assert searcher.resource.of(searcher.supernet.choices(arch)) == searcher.resource.constant + kept
    keep = searcher.resource.keep["normal"]
    assert float(keep.sum()) == pytest.approx(8.0)  # two incoming edges per node, four nodes
    # A binding budget: the projected expectation fits it, and the derived cell spends it (the
    # knapsack over nodes, each keeping two edges, through the supernet's own derivation).
    smallest, uniform = searcher.resource.minimum(), float(searcher.expected_resource().detach())
    target = smallest + 0.4 * (uniform - smallest)
    bound = make_on("rc_darts", get_space("darts", channels=4, cells=3), data, target_params=target)
    assert float(bound.expected_resource().detach()) <= target
    bound.space.validate(bound.derive())
    assert (1 - BUDGET_WINDOW) * target <= bound.derived_resource() <= target


@pytest.mark.parametrize(
    ("space", "options", "fragment"),
    [
        (FBNET, {"latency_device": "pixel9", "target_latency_ms": 10.0}, "pixel3"),
        (FBNET, {"latency_device": "pixel3", "target_latency_ms": 1.0}, "2.839 ms"),
        ("darts", {"latency_device": "pixel3", "target_latency_ms": 10.0}, "fbnet"),
        (FBNET, {}, "needs a budget"),
        (FBNET, {"target_latency_ms": 10.0}, "latency_device"),
        (FBNET, {"target_params": 1e6, "latency_device": "pixel3", "target_latency_ms": 10.0}, "two budgets"),
    ],
)
def test_bad_budgets_are_refused_before_training(space, options, fragment: str, data_dir) -> None:
    space = get_space(space) if isinstance(space, str) else space
    for method in ("dnas", "rc_darts"):
        with pytest.raises(ConfigError, match=re.escape(fragment)):
            check_options(method, space, options)


def test_a_parameter_budget_below_the_smallest_supernet_path_names_it(data: Dataset) -> None:
    with pytest.raises(ConfigError, match=r"smallest achievable on this nb201 supernet is \d+"):
        make("rc_darts", data, target_params=10.0)
