"""``pnas``: cells grow one decision per level, the surrogate ranks the expansions, the top ``beam`` train."""

from __future__ import annotations

import pytest

from nas.core import ConfigError
from nas.core.architecture import Architecture
from nas.core.trial import Trial, TrialState
from nas.strategies import create_strategy
from search_spaces import get_space
from search_spaces.nb201 import EDGE_NAMES

NB201 = get_space("nb201")
#: Each operation is worth the same on every edge: what one level learns transfers to the next.
WORTH = {"nor_conv_3x3": 4.0, "nor_conv_1x1": 3.0, "avg_pool_3x3": 1.0, "skip_connect": 0.5, "none": 0.0}


def value(arch: Architecture) -> float:
    return sum(WORTH[str(arch[e])] for e in EDGE_NAMES)


def search(asks: int, **options: object) -> list[Architecture]:
    strategy = create_strategy("pnas", NB201, seed=0, **options)
    archs = []
    for number in range(asks):
        arch = strategy.ask()
        assert arch is not None
        archs.append(arch)
        strategy.tell(Trial(number, arch, TrialState.COMPLETE, values={"val_accuracy": value(arch)}))
    return archs


def test_cells_grow_one_decision_per_level_and_the_surrogate_picks_the_expansions() -> None:
    beam = 2
    archs = search(5 + 5 * beam, beam=beam)
    # Level 1: every op on the first edge, every other edge the filler (an identity).
    level1 = archs[:5]
    assert {a[EDGE_NAMES[0]] for a in level1} == set(WORTH)
    assert all(a[e] == "skip_connect" for a in level1 for e in EDGE_NAMES[1:])
    # Level 2: the best level-1 cell (conv 3x3 on edge 1) expanded on edge 2; the surrogate, having
    # seen conv 3x3 pay on edge 1, ranks it first on edge 2 too, so it trains before the others.
    first, second = archs[5], archs[6]
    assert (first[EDGE_NAMES[0]], first[EDGE_NAMES[1]]) == ("nor_conv_3x3", "nor_conv_3x3")
    assert all(first[e] == "skip_connect" for e in EDGE_NAMES[2:])
    assert (
        second[EDGE_NAMES[0]] in ("nor_conv_3x3", "nor_conv_1x1") and second[EDGE_NAMES[2]] == "skip_connect"
    )
    # Each level trains `beam` new cells; after the sixth edge the optimum has been trained.
    assert max(archs, key=value).as_dict() == dict.fromkeys(EDGE_NAMES, "nor_conv_3x3")


def test_after_the_last_level_it_refines_the_best_cells() -> None:
    strategy = create_strategy("pnas", NB201, seed=1, beam=2)
    for number in range(16):
        arch = strategy.ask()
        strategy.tell(Trial(number, arch, TrialState.COMPLETE, values={"val_accuracy": value(arch)}))
    assert strategy.level > len(EDGE_NAMES)
    arch = strategy.ask()
    assert strategy.last_phase == "refine" and arch is not None


@pytest.mark.parametrize("name", ["darts", "fbnet", "hybrid"])
def test_partial_cells_are_valid_on_every_space_so_levels_advance(name: str) -> None:
    """Filled cells pass the space's rules (DARTS' two inputs of a node differ), so no level is skipped."""
    space = get_space(name)
    strategy = create_strategy("pnas", space, seed=0, beam=2)
    for number in range(20):
        arch = strategy.ask()
        assert arch is not None and strategy.last_phase == "progressive"
        strategy.tell(Trial(number, arch, TrialState.COMPLETE, values={"val_accuracy": float(number % 7)}))
    first_choices = len(next(iter(space.choices().values())))
    # Level 1 in full, then at most `beam` new cells a level (fewer when expansions were trained already).
    assert strategy.level >= 2 + (20 - first_choices) // 2


@pytest.mark.parametrize(("option", "bad"), [("beam", 0), ("beam", 2.5), ("ridge", 0.0), ("ridge", "x")])
def test_bad_options_are_config_errors(option: str, bad: object) -> None:
    with pytest.raises(ConfigError, match=f"{option}="):
        create_strategy("pnas", NB201, **{option: bad})
