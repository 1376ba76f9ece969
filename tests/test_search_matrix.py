"""``nas search`` on every registered space, strategy and one-shot method, with real training.

The matrix is computed from the registries when the module is collected
(``SPACES``, ``STRATEGIES``, ``ONESHOT``, after ``tests/conftest.py`` has
registered the test plugins), so a newly registered space, strategy or method
is searched here without editing this file; :func:`test_the_matrix_covers_every_registered_plugin`
fails loudly if a built-in drops out of a registry. Every one-shot method
meets :data:`PAIRINGS` of the spaces it supports and every strategy
:data:`PAIRINGS` spaces (a rotation that gives every space its share), or every
pair with ``NAS_TEST_MATRIX=full``.

Each search is the ``nas search`` command (its click entry point, in
process), on digits with the ``train`` evaluator at the smallest sizes, and
just long enough to leave the strategy's initial random phase: the budget is
the strategy's ``initial_size`` (shrunk through the options in
``STRATEGY_OPTIONS`` when the strategy takes them) plus one, one trial at a
time, so the last trial is always proposed by the strategy's own method, and
the store's ``system_attrs["phase"]`` of each trial must say so. A one-shot
pair trains one supernet for one epoch, retrains its derived architecture as
an ordinary trial, and each space exports one trial with ``nas export``. A
pair that the space's one-shot view does not support must be refused by
``nas search`` with a message naming both, before anything is stored.

All searches share the module's Ray (conftest's ``local_ray``) and one SQLite
store; each study has its own seed, so none reuses another's results.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from click.testing import CliRunner
from small_spaces import searches, small_options

import nas
from nas.cli import main
from nas.core import SPACES, STRATEGIES, TrialState
from nas.core.oneshot import ONESHOT, oneshot_view
from nas.core.strategy import INITIAL_PHASE
from nas.oneshot.settings import METHOD_OPTIONS
from nas.runner import build_plan
from nas.store.records import StudyStatus
from nas.strategies import strategy_options

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SPACE_NAMES = SPACES.names()
STRATEGY_NAMES = STRATEGIES.names()
METHOD_NAMES = ONESHOT.names()

#: What must be in the matrix (built-ins and the tests' plugins): a minimum, never the exact set.
REQUIRED_SPACES = {"nb201", "darts", "fbnet", "hybrid", "test_chain"}
REQUIRED_STRATEGIES = {"random", "local", "evolution", "predictor", "nsga2", "plugin_mutation"}
REQUIRED_METHODS = {"darts", "pc_darts", "gdas", "spos", "bignas", "attentivenas", "test_random_path"}

#: The smallest spaces that still train: the tests' small options, hybrid cut to two blocks.
SPACE_OPTIONS = {"hybrid": {"blocks": 2, "downsamples": 1, "base_width": 8}}

#: Options that shorten a strategy's initial phase or its per-ask work, set for every strategy
#: that accepts them (by name, so a new strategy with the usual option names is shrunk too).
STRATEGY_OPTIONS: dict[str, object] = {
    "population_size": 2,
    "tournament_size": 2,
    "n_initial": 3,  # a model needs two different results; near-chance small nets often tie
    "n_candidates": 20,
    "num_parents": 2,
    "pretrain_archs": 4,  # fbnetv3: networks whose proxies pre-train its predictor
}

#: One epoch of a small supernet; method-specific ones only for the methods that use them.
ONESHOT_OPTIONS: dict[str, object] = {
    "epochs": 1,
    "batch_size": 32,
    "eval_batch_size": 128,
    "score_images": 32,
    "bn_batches": 1,
    "early_stop_on_collapse": False,
    "partial_channels": 2,  # PC-DARTS: K must leave 2 channels per slice of the 4-channel supernets
    "population": 2,
    "generations": 1,
    "parents": 1,
    "candidates": 4,  # SMASH: random architectures ranked after training
    "target_params": 1e9,  # dnas, rc_darts: a budget every supernet meets (the glue, not the constraint)
}

#: Real training, as small as still learns something: 1 epoch on digits (60-90% validation accuracy).
DATASET = {"name": "digits"}
EVALUATOR = {
    "name": "train",
    "epochs": 1,
    "batch_size": 32,
    "eval_batch_size": 128,
    "latency_repeats": 1,
    "latency_warmup": 0,
}
#: One-shot searches: 400 digits, half training the weights and half the architecture.
ONESHOT_DATASET = {**DATASET, "limit": 400}
INPUT_SHAPE, NUM_CLASSES = (1, 8, 8), 10

#: Packages whose modules every worker imports anyway; any other plugin module goes in ``plugins:``.
BUILTIN_PACKAGES = ("nas", "search_spaces", "predictors")


def _supports(space: str, method: str) -> bool:
    view = oneshot_view(SPACES.get(space))
    return view is not None and view.supports(ONESHOT.get(method).kinds)


#: Spaces each strategy (and one-shot method) is searched on. A black-box pair costs about 12 s
#: here, almost all of it Tune's start and stop and a fresh worker's imports (a worker's setup hook
#: runs when the actor's process starts, so there is no warm pool to win from), so CI runs a covering
#: set rather than the whole cross product: strategy i (sorted) on spaces i .. i+PAIRINGS-1 (mod the
#: number of spaces), so every strategy meets PAIRINGS spaces and every space about
#: PAIRINGS x strategies / spaces strategies. What a strategy does on each space is covered without
#: Ray by the strategy contract tests (tests/test_strategies.py); this matrix checks the glue.
#: ``NAS_TEST_MATRIX=full`` runs every pair (before a release, or after a space change).
PAIRINGS = 1


def _blackbox_pairs() -> list[tuple[str, str]]:
    if os.environ.get("NAS_TEST_MATRIX") == "full" or PAIRINGS >= len(SPACE_NAMES):
        return [(sp, st) for sp in SPACE_NAMES for st in STRATEGY_NAMES if searches(st, sp)]
    pairs = set()
    for i, strategy in enumerate(STRATEGY_NAMES):
        # The rotation's spaces, each moved on to the next space the strategy can search.
        supported = [SPACE_NAMES[(i + k) % len(SPACE_NAMES)] for k in range(len(SPACE_NAMES))]
        supported = [space for space in supported if searches(strategy, space)]
        pairs |= {(space, strategy) for space in supported[:PAIRINGS]}
    # More spaces than the rotation reaches: each left-over space gets the first strategy.
    pairs |= {(space, STRATEGY_NAMES[0]) for space in SPACE_NAMES if all(s != space for s, _ in pairs)}
    return sorted(pairs)


#: One-shot spaces from the cheapest supernet step to the dearest (a darts-space supernet step costs
#: several nb201 ones); a space not listed comes last.
ONESHOT_COST_ORDER = ("test_chain", "nb201", "fbnet", "hybrid", "darts")


def _oneshot_pairs() -> list[tuple[str, str]]:
    """Every method on the cheapest space it supports, every supporting space once, one refusal each.

    A supported pair trains a supernet and retrains its derived architecture
    (two Tune runs: 25 s on nb201, over a minute on darts here), so CI runs a
    covering set: each method on its cheapest supported space
    (:data:`ONESHOT_COST_ORDER`), each space that supports some method with its
    first such method, and each method's first unsupported space (a refusal
    costs no training). Each method's own mechanism is tested on a tiny
    supernet without Ray (tests/test_oneshot*.py); this matrix checks the glue.
    ``NAS_TEST_MATRIX=full`` runs every pair.
    """
    every = [(space, method) for space in SPACE_NAMES for method in METHOD_NAMES]
    if os.environ.get("NAS_TEST_MATRIX") == "full":
        return every
    order = {
        s: ONESHOT_COST_ORDER.index(s) if s in ONESHOT_COST_ORDER else len(ONESHOT_COST_ORDER)
        for s in SPACE_NAMES
    }
    pairs: set[tuple[str, str]] = set()
    for method in METHOD_NAMES:
        supported = sorted((s for s in SPACE_NAMES if _supports(s, method)), key=order.__getitem__)
        pairs |= {(space, method) for space in supported[:1]}
        refused = [space for space in SPACE_NAMES if not _supports(space, method)]
        pairs |= {(space, method) for space in refused[:1]}
    # A space no method reached trains its first supported method, plain DARTS first: the cheapest
    # alpha step (alphabetical order would pick a second-order method such as amended_darts).
    baseline_first = sorted(METHOD_NAMES, key=lambda m: m != "darts")
    for space in SPACE_NAMES:
        if not any(s == space and _supports(s, m) for s, m in pairs):
            pairs.add(
                next(((space, m) for m in baseline_first if _supports(space, m)), (space, METHOD_NAMES[0]))
            )
    return sorted(pairs)


BLACKBOX = _blackbox_pairs()
ONESHOT_PAIRS = _oneshot_pairs()
#: One export per space: after its first supported one-shot method, else after its first strategy.
EXPORTED = {
    next(
        ((s, m) for s, m in ONESHOT_PAIRS if s == space and _supports(s, m)),
        next(pair for pair in BLACKBOX if pair[0] == space),
    )
    for space in SPACE_NAMES
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite store for the whole module (each pair is its own study)."""
    return f"sqlite:///{tmp_path_factory.mktemp('matrix') / 'store.db'}"


def test_the_matrix_covers_every_registered_plugin() -> None:
    assert BLACKBOX and ONESHOT_PAIRS
    pairs_per_strategy = min(PAIRINGS, len(SPACE_NAMES))
    assert all(sum(s == name for _, s in BLACKBOX) >= pairs_per_strategy for name in STRATEGY_NAMES)
    assert REQUIRED_SPACES <= set(SPACE_NAMES)
    assert REQUIRED_STRATEGIES <= set(STRATEGY_NAMES)
    assert REQUIRED_METHODS <= set(METHOD_NAMES)
    # Collected before the tests ran: a plugin registered meanwhile would be missing from the matrix.
    assert {s for s, _ in BLACKBOX} == set(SPACES.names()) == {s for s, _ in ONESHOT_PAIRS}
    assert {s for _, s in BLACKBOX} == set(STRATEGIES.names())
    assert {m for _, m in ONESHOT_PAIRS} == set(ONESHOT.names())
    # Every method trains on at least one space it supports, and every such space trains some method.
    trained = {(s, m) for s, m in ONESHOT_PAIRS if _supports(s, m)}
    assert {m for _, m in trained} == {m for m in METHOD_NAMES if any(_supports(s, m) for s in SPACE_NAMES)}
    assert {s for s, _ in trained} == {s for s in SPACE_NAMES if any(_supports(s, m) for m in METHOD_NAMES)}
    assert {space for space, _ in EXPORTED} == set(SPACE_NAMES)
    assert any(_supports(s, m) for s, m in ONESHOT_PAIRS)


@pytest.mark.parametrize(("space", "strategy"), BLACKBOX)
def test_search_trains_past_the_strategys_initial_phase(
    space: str, strategy: str, local_ray: None, store: str, tmp_path: Path
) -> None:
    accepted = set(strategy_options(strategy))
    options = {k: v for k, v in STRATEGY_OPTIONS.items() if k in accepted}
    config = _config(space, {"name": strategy, **options}, STRATEGIES.get(strategy))
    initial = build_plan(config).strategy.initial_size
    budget = max(initial + 1, 2)
    config["budget"] = {"trials": budget, "concurrent": 1}  # the last ask comes after `initial` results
    _nas(tmp_path, "search", _write(tmp_path, config), "--storage", store, "--quiet")

    study = nas.load_study(config["name"], storage=store)
    trials = sorted(study.trials(), key=lambda t: t.number)
    assert study.status is StudyStatus.FINISHED
    assert [t.state for t in trials] == [TrialState.COMPLETE] * budget
    assert len({study.space.canonical_key(study.space.validate(t.arch)) for t in trials}) == budget
    for trial in trials:
        assert "reused_from" not in trial.system_attrs  # trained here, not another study's result
        _assert_trained(study, trial)
    phases = [t.system_attrs["phase"] for t in trials]
    own = STRATEGIES.get(strategy).phase_name
    assert phases[:initial] == [INITIAL_PHASE] * initial
    # Past its initial phase the strategy proposes by its own method (BOHB may draw its random share
    # instead; tests/test_strategy_spaces.py checks every strategy's own method is used).
    assert INITIAL_PHASE not in phases[initial:], f"{strategy} never left its initial phase"
    assert set(phases[initial:]) <= {own, "random fraction"}, phases
    if (space, strategy) in EXPORTED:
        _export(tmp_path, store, study, trials[-1].number)


@pytest.mark.parametrize(("space", "method"), ONESHOT_PAIRS)
def test_oneshot_search_derives_and_trains_an_architecture(
    space: str, method: str, local_ray: None, store: str, tmp_path: Path
) -> None:
    foreign = {k for k, users in METHOD_OPTIONS.items() if method not in users}
    options = {k: v for k, v in ONESHOT_OPTIONS.items() if k not in foreign}
    config = _config(space, {"name": method, **options}, ONESHOT.get(method))
    config["dataset"] = ONESHOT_DATASET  # a supernet step costs several stand-alone ones
    path = _write(tmp_path, config)
    if not _supports(space, method):  # the space's one-shot view says so: a clear refusal, nothing stored
        output = _nas(tmp_path, "search", path, "--storage", store, "--quiet", exit_code=2)
        assert method in output and space in output
        stored = Path(store.removeprefix("sqlite:///"))  # a refusal before any search creates no store
        assert not stored.exists() or config["name"] not in [
            s.info.name for s in nas.list_studies(storage=store)
        ]
        return
    _nas(tmp_path, "search", path, "--storage", store, "--quiet")

    study = nas.load_study(config["name"], storage=store)
    trials = study.trials()
    assert study.status is StudyStatus.FINISHED
    (supernet,) = [t for t in trials if t.system_attrs.get("kind") == "supernet"]
    (derived,) = [t for t in trials if t.system_attrs.get("kind") == "derived"]
    assert supernet.state is TrialState.PRUNED and supernet.system_attrs["method"] == method
    assert [step for step, _ in study.metrics(supernet)["supernet/train_loss"]] == [1]
    assert derived.state is TrialState.COMPLETE and derived.system_attrs["derived_from"] == supernet.number
    assert derived.arch == study.space.validate(supernet.arch)
    _assert_trained(study, derived)
    if (space, method) in EXPORTED:
        _export(tmp_path, store, study, derived.number)


# -- helpers --------------------------------------------------------------------------------------------


def _config(space: str, strategy: dict[str, Any], plugin: Any) -> dict[str, Any]:
    """A search of ``space`` by ``strategy`` with its own study name and seed (so nothing is reused)."""
    name = f"{space}-{strategy['name']}"
    space_class = SPACES.get(space)
    modules = {c.__module__ for c in (space_class, plugin)}
    return {
        "name": name,
        "plugins": sorted(m for m in modules if m.split(".")[0] not in BUILTIN_PACKAGES),
        "space": {"name": space, **SPACE_OPTIONS.get(space, small_options(space))},
        "dataset": DATASET,
        "strategy": strategy,
        "evaluator": EVALUATOR,
        "seed": zlib.crc32(name.encode()) % 10_000,
    }


def _write(tmp_path: Path, config: dict[str, Any]) -> str:
    path = tmp_path / f"{config['name']}.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def _nas(tmp_path: Path, *args: str, exit_code: int = 0) -> str:
    """Run the ``nas`` command in process (the console script's own entry point); returns its output."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == exit_code, f"nas {' '.join(args)} exited {result.exit_code}:\n{result.output}"
    return result.output


def _assert_trained(study: Any, trial: Any) -> None:
    """The trial's learning curve is stored, and its weights load into the architecture's network."""
    assert [step for step, _ in study.metrics(trial)["val_accuracy"]] == [EVALUATOR["epochs"]]
    (weights,) = [a for a in study.artifacts(trial) if a.kind == "weights"]
    state = torch.load(Path(weights.uri.removeprefix("file://")), weights_only=True)
    model = study.space.build(trial.arch, num_classes=NUM_CLASSES, input_shape=INPUT_SHAPE)
    model.load_state_dict(state)


def _export(tmp_path: Path, store: str, study: Any, number: int) -> None:
    out = tmp_path / "export"
    _nas(
        tmp_path,
        "export",
        study.name,
        "--trial",
        str(number),
        "--format",
        "pytorch",
        "--out",
        str(out),
        "--storage",
        store,
        "--quiet",
    )
    assert (out / "model.pt").is_file()
