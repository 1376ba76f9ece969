"""AttentiveNAS on the elastic fbnet supernet: its Pareto-aware picks, size levels and options.

What it shares with BigNAS (the step around the picks, initialisation, run, resume) is tested for both
in tests/test_bignas.py; here, the picks: each is the best (BestUp) or the worst (WorstUp) of its
candidates by their loss on the step's batch, the candidates share a size level drawn from the
space's size prior, and BestUp and WorstUp train differently.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from elastic_methods import SYNTHETIC, make
from torch.nn import functional as F

from nas.core import ConfigError
from nas.data import Dataset, load_dataset
from nas.oneshot import create_method
from nas.oneshot.attentivenas import AttentiveNasMethod, level_bounds
from nas.oneshot.settings import parse_settings
from nas.supernet.elastic import ElasticSupernet
from search_spaces import get_space


@pytest.fixture(scope="module")
def data() -> Dataset:
    return load_dataset(SYNTHETIC, seed=0)


def attentive(data: Dataset, **options: object) -> AttentiveNasMethod:
    method = make(data, method="attentivenas", **options)
    assert isinstance(method, AttentiveNasMethod)
    return method


def batch_losses(supernet: torch.nn.Module, x, y, teacher, archs, score: str) -> list[float]:
    """Each architecture's loss on the batch, on a copy of the supernet in training mode (batch statistics)."""
    copied = copy.deepcopy(supernet).train()
    losses = []
    with torch.no_grad():
        for arch in archs:
            logits = copied.forward_arch(x, arch)
            if score == "loss":
                losses.append(float(F.cross_entropy(logits, y, label_smoothing=0.1)))
            else:
                losses.append(float(F.kl_div(F.log_softmax(logits, 1), teacher, reduction="batchmean")))
    return losses


@pytest.mark.parametrize(("pareto", "score"), [("best", "loss"), ("worst", "loss"), ("best", "distill")])
def test_each_pick_is_the_best_or_worst_of_its_candidates(pareto: str, score: str, data: Dataset) -> None:
    method = attentive(data, num_random=2, candidates=4, pareto=pareto, candidate_score=score)
    run_oneshot_steps(method, 2)  # trained a little, so the candidates' losses differ
    x, y = method.data.x_weights[:16], method.data.y_weights[:16]
    teacher = F.softmax(method.supernet.forward_arch(x, method.largest).detach(), 1)
    state = copy.deepcopy(method.supernet.state_dict())
    sampler = method.sample_generator.get_state()
    students = method.sandwich(x, y, teacher)
    assert all(torch.equal(v, state[k]) for k, v in method.supernet.state_dict().items())  # BN stats too

    method.sample_generator.set_state(sampler)
    rng = method.step_rng()
    choose = min if pareto == "best" else max
    assert students[0] == method.smallest and len(students) == 3
    for student in students[1:]:
        archs = method.candidates(rng)
        losses = batch_losses(method.supernet, x, y, teacher, archs, score)
        assert len(archs) == 4 and len({method.space.format(a) for a in archs}) > 1
        assert student == archs[losses.index(choose(losses))]
        assert len(set(losses)) > 1  # a real choice, not a tie


def run_oneshot_steps(method: AttentiveNasMethod, steps: int) -> None:
    for start in range(0, 16 * steps, 16):
        x, y = method.data.x_weights[start : start + 16], method.data.y_weights[start : start + 16]
        method.train_step(x, y, x, y)


def picks_while_training(method: AttentiveNasMethod, steps: int) -> list[str]:
    """The sub-network each of ``steps`` training steps picked (``num_random`` 1)."""
    picked, sandwich = [], method.sandwich

    def recording(x, y, teacher):
        students = sandwich(x, y, teacher)
        picked.append(method.space.format(students[1]))
        return students

    method.sandwich = recording  # type: ignore[method-assign]
    run_oneshot_steps(method, steps)
    return picked


def test_bestup_and_worstup_train_different_sub_networks(data: Dataset) -> None:
    best, worst = attentive(data, pareto="best"), attentive(data, pareto="worst")
    best_picks, worst_picks = picks_while_training(best, 4), picks_while_training(worst, 4)
    assert best_picks[0] != worst_picks[0]  # the same candidates (same seed, same weights), opposite ends
    assert best_picks != worst_picks
    pairs = zip(best.supernet.parameters(), worst.supernet.parameters(), strict=True)
    assert not all(torch.equal(a, b) for a, b in pairs)


def test_candidates_share_a_size_level_drawn_from_the_size_prior(data: Dataset) -> None:
    method = attentive(data, candidates=3)
    assert len(method.bounds) == 9 and method.level_shares.sum() == pytest.approx(1.0)
    assert method.level_shares.min() > 0.05  # about equal shares: each level is drawn about as often
    rng, drawn = np.random.default_rng(1), []
    for _ in range(200):
        levels = {method.level(a) for a in method.candidates(rng)}
        assert len(levels) == 1  # the paper's fallback (a sample off its level) never needed here
        drawn.append(levels.pop())
    frequencies = np.bincount(drawn, minlength=len(method.level_shares)) / len(drawn)
    assert np.abs(frequencies - method.level_shares).max() < 0.1


def test_levels_of_repeated_sizes_are_merged() -> None:
    assert level_bounds(np.array([1, 1, 1, 1, 2, 3]), 4).tolist() == [1]
    assert level_bounds(np.arange(100), 4).tolist() == [24, 49, 74]


def test_fbnet_size_is_the_extracted_networks_parameter_count(data: Dataset) -> None:
    supernet = attentive(data).supernet
    rng = np.random.default_rng(0)
    for arch in [supernet.largest(), supernet.smallest(), *(supernet.space.sample(rng) for _ in range(4))]:
        extracted = ElasticSupernet.size(supernet, arch)  # the generic count, through an extraction
        assert supernet.size(arch) == extracted == sum(p.numel() for p in supernet.extract(arch).parameters())


def test_options_are_validated_and_defaults_are_bestup_3(data: Dataset) -> None:
    settings = parse_settings("attentivenas", {})
    assert settings.option("candidates", "attentivenas") == 3 and settings.option("pareto") == "best"
    assert settings.option("candidates", "smash") == settings.option("candidates") == 100
    space = get_space("fbnet", width_mult=0.25)
    with pytest.raises(ConfigError, match=r"pareto.*'best' or 'worst'"):
        create_method("attentivenas", space, data, {"pareto": "middle"})
    with pytest.raises(ConfigError, match=r"candidate_score.*'loss' or 'distill'"):
        create_method("attentivenas", space, data, {"candidate_score": "accuracy"})
    with pytest.raises(ConfigError, match="candidates"):
        create_method("attentivenas", space, data, {"candidates": 0})
    with pytest.raises(ConfigError, match=r"pareto \(used by attentivenas\)"):
        create_method("bignas", space, data, {"pareto": "worst"})
    with pytest.raises(ConfigError, match="does not support space 'nb201'; it searches fbnet"):
        create_method("attentivenas", get_space("nb201", channels=4, cells=1), data, {"epochs": 1})
