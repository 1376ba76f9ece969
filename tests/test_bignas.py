"""BigNAS on the elastic fbnet supernet: sandwich rule, in-place distillation, its choices, resume.

AttentiveNAS shares BigNAS' step (tests/test_attentivenas.py tests its picks), so the tests of what
they share run for both (:mod:`elastic_methods`: tiny fbnet supernets, 1-2 epochs of a few steps).
"""

from __future__ import annotations

import copy

import pytest
import torch
from elastic_methods import ELASTIC_METHODS, SYNTHETIC, make
from torch.nn import functional as F

from nas.core import ConfigError
from nas.data import Dataset, load_dataset
from nas.oneshot import create_method, run_oneshot, save_checkpoint
from nas.oneshot.bignas import accuracy
from nas.supernet.recalibrate import recalibrate_bn
from search_spaces import get_space


@pytest.fixture(scope="module")
def data() -> Dataset:
    return load_dataset(SYNTHETIC, seed=0)


def test_a_step_is_the_sandwich_with_in_place_distillation(data: Dataset) -> None:
    method = make(data, num_random=2, grad_clip=None)
    seen: list = []
    forward = method.supernet.forward_arch

    def recording(x, arch):
        seen.append(arch)
        return forward(x, arch)

    x, y = method.data.x_weights[:16], method.data.y_weights[:16]
    before = copy.deepcopy(method.supernet)
    sampler = method.sample_generator.get_state()
    method.supernet.forward_arch = recording  # type: ignore[method-assign]
    method.train_step(x, y, x, y)
    assert seen[:2] == [method.largest, method.smallest] and len(seen) == 4
    assert len({method.space.format(a) for a in seen}) == 4

    # the same gradient by hand: CE (smoothed) on the largest + KL of each student to its detached softmax
    method.sample_generator.set_state(sampler)
    teacher = before.forward_arch(x, method.largest)
    loss = F.cross_entropy(teacher, y, label_smoothing=0.1)
    target = F.softmax(teacher.detach(), 1)
    students = method.sandwich(x, y, target)
    for arch in students:
        loss = loss + F.kl_div(F.log_softmax(before.forward_arch(x, arch), 1), target, reduction="batchmean")
    loss.backward()
    compared = 0
    for (name, expected), actual in zip(before.named_parameters(), method.supernet.parameters(), strict=True):
        if expected.grad is None:  # a parameter no path of this step used (a stage's projection)
            assert actual.grad is None, name
            continue
        assert torch.allclose(actual.grad, expected.grad, atol=1e-6), name
        compared += 1
    assert compared > 100


@pytest.mark.parametrize("name", sorted(ELASTIC_METHODS))
def test_bignas_initialisation_and_regularisation_choices(name: str, data: Dataset) -> None:
    method = make(data, method=name, weight_decay=1e-4)
    norms = method.supernet.residual_norms()
    assert len(norms) == sum(p.keeps_shape for p in method.space.plans) == 16 and all(
        not n.weight.any() for n in norms
    )  # every residual block starts as identity
    decay, plain = method.w_optimizer.param_groups
    assert decay["weight_decay"] == 1e-4 and plain["weight_decay"] == 0.0
    assert all(p.ndim == 4 or p.ndim == 2 for p in decay["params"])
    names = {id(p): n for n, p in method.supernet.named_parameters()}
    assert all(p.ndim == 1 or "transforms" in names[id(p)] for p in plain["params"])
    assert any("transforms" in names[id(p)] for p in plain["params"])


@pytest.mark.parametrize("name", sorted(ELASTIC_METHODS))
def test_run_trains_derives_the_largest_and_stores_curves(name: str, data: Dataset) -> None:
    method = make(data, method=name, epochs=1)
    result = run_oneshot(method)
    assert result.arch == method.supernet.largest() and result.method == name
    curves = result.curves()
    assert [e for e, _ in curves["supernet/train_loss"]] == [1] and "supernet/val_accuracy" in curves


def test_score_is_the_recalibrated_extracted_network(data: Dataset) -> None:
    method = make(data, bn_batches=2)
    arch = method.space.sample(__import__("numpy").random.default_rng(0))
    net = method.supernet.extract(arch)
    recalibrate_bn(net, [method.data.x_weights[:16], method.data.x_weights[16:32]])
    expected = accuracy(net.eval(), method.data.x_arch, method.data.y_arch, 32, 256, torch.device("cpu"))
    state = copy.deepcopy(method.supernet.state_dict())
    assert method.score(arch) == expected
    assert all(
        torch.equal(v, state[k]) for k, v in method.supernet.state_dict().items()
    )  # supernet untouched


@pytest.mark.parametrize("name", sorted(ELASTIC_METHODS))
def test_resume_from_checkpoint_gives_the_uninterrupted_run(name: str, data: Dataset, tmp_path) -> None:
    full_method = make(data, seed=3, method=name)
    full = run_oneshot(full_method)
    interrupted = make(data, seed=3, method=name)

    def stop(trained, metrics) -> None:
        trained.stop_reason = "killed"

    interrupted.fit(stop)
    interrupted.stop_reason = None
    save_checkpoint(interrupted, tmp_path)
    resumed_method = make(data, seed=3, method=name)
    resumed = run_oneshot(resumed_method, checkpoint_dir=tmp_path)
    assert resumed.resumed_from == 1
    strip = [{k: v for k, v in h.items() if k != "epoch_time_s"} for h in full.history]
    assert [{k: v for k, v in h.items() if k != "epoch_time_s"} for h in resumed.history] == strip
    full_state, resumed_state = full_method.supernet.state_dict(), resumed_method.supernet.state_dict()
    assert all(torch.equal(full_state[k], resumed_state[k]) for k in full_state)


def test_bad_input_is_refused_before_training(data: Dataset) -> None:
    with pytest.raises(ConfigError, match="does not support space 'nb201'; it searches fbnet"):
        create_method("bignas", get_space("nb201", channels=4, cells=1), data, {"epochs": 1})
    with pytest.raises(ConfigError, match="affine"):
        make(data, affine=False)
    with pytest.raises(ConfigError, match=r"num_random \(used by bignas, attentivenas\)"):
        create_method("spos", get_space("fbnet", width_mult=0.25), data, {"num_random": 2})
    with pytest.raises(ConfigError, match="label_smoothing"):
        make(data, label_smoothing=1.0)
