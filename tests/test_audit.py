"""Search-space poisoning checks: ``exclude_ops``/``extra_ops``, the audit, ``nas audit-space``, its panel.

The poisoning test runs real searches: DARTS on a tiny ``nb201`` supernet
(4 channels, one cell per stage) on digits, the space poisoned with the
test-only ``noise`` op (``tests/plugins/op_plugin.py``). The supernet is
drawn to a parameter-free op (on digits, 3x3 average pooling: its alpha
leads on every edge and the derived cell is all pooling), the audit flags it,
and the same search with the flagged ops excluded derives a cell that trains
better stand-alone. The black-box flag is checked on real NAS-Bench-201
table values with trials drawn towards one op.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from dashboard_pages import open_page

import nas
from nas.audit import ATTRACTS_HURTS, SHORTCUT, AuditThresholds, audit_study
from nas.cli import main
from nas.core import ConfigError, Trial, TrialState, UnknownOpError
from nas.core.evaluator import EvalRequest
from nas.data import load_dataset
from nas.evaluators.tabular import Nb201TableEvaluator
from nas.evaluators.train import TrainEvaluator
from nas.oneshot import create_method, run_oneshot
from nas.store import open_readonly
from search_spaces import get_space
from search_spaces.nb201 import EDGE_NAMES, OPS

PLUGIN = "plugins.op_plugin"
TINY = {"channels": 4, "cells": 1}
DARTS = {"epochs": 4, "arch_lr": 0.01, "batch_size": 64}
STANDALONE = {"epochs": 5, "batch_size": 64, "lr": 0.05}


# -- the space options ------------------------------------------------------------------------
def test_exclude_ops_takes_ops_out_of_every_edge_and_names_the_allowed_ones() -> None:
    space = get_space("nb201", **TINY, exclude_ops=["avg_pool_3x3", "none"])
    assert space.ops == ("skip_connect", "nor_conv_1x1", "nor_conv_3x3")
    assert all(tuple(v) == space.ops for v in space.choices().values())
    assert space.options["exclude_ops"] == ["avg_pool_3x3", "none"]
    assert "exclude_ops" not in get_space("nb201", **TINY).options  # the benchmark space is unchanged
    assert len(space.path_encode(space.sample(0))) == 3 + 9 + 27
    with pytest.raises(UnknownOpError, match="avg_pool_3x3"):
        space.parse(
            "|avg_pool_3x3~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
        )
    with pytest.raises(ConfigError, match=r"'max_pool'.*allowed: \['none', 'skip_connect'"):
        get_space("nb201", exclude_ops=["max_pool"])
    with pytest.raises(ConfigError, match="leaves no op"):
        get_space("nb201", exclude_ops=list(OPS))
    with pytest.raises(ConfigError, match=r"extra_ops names 'blur'.*allowed: \[.*'noise'"):
        get_space("nb201", extra_ops=["blur"])


def test_a_registered_op_joins_the_space_network_and_supernet_through_extra_ops() -> None:
    import torch

    space = get_space("nb201", **TINY, extra_ops=["noise"])
    assert space.ops[-1] == "noise" and space.parameter_free_ops() == {
        "none",
        "skip_connect",
        "avg_pool_3x3",
        "noise",
    }
    arch = space.make(dict.fromkeys(EDGE_NAMES, "noise"))
    out = space.build(arch, num_classes=3, input_shape=(1, 8, 8))(torch.zeros(2, 1, 8, 8))
    assert out.shape == (2, 3)
    supernet = space.oneshot_view.build(space, channels=4, cells=1, num_classes=3, input_shape=(1, 8, 8))
    assert supernet.groups[0].ops == space.ops
    assert supernet.derive({"cell": np.eye(6)[[5] * 6]}) == arch  # noise is the last column


# -- the black-box flag on real table values ----------------------------------------------------
def _biased_study(url: str, name: str, drawn_to: str, trials: int = 40) -> None:
    """A study whose proposals favour ``drawn_to`` (half of every edge's draws), results from the table."""
    space = get_space("nb201")
    table = Nb201TableEvaluator(space)
    rng = np.random.default_rng(0)
    # The stored config names a module that does not exist: the audit must not try to import it.
    config = {"plugins": ["not_a_module_the_audit_may_import"]}
    study = nas.create_study(name, url, space="nb201", objectives={"val_accuracy": "max"}, config=config)
    rows = []
    for _ in range(trials):
        decisions = {e: drawn_to if rng.random() < 0.5 else OPS[rng.integers(len(OPS))] for e in EDGE_NAMES}
        arch = space.make(decisions)
        values = table.measure(EvalRequest(arch=arch)).values
        rows.append(Trial(number=0, arch=arch, state=TrialState.COMPLETE, values=values))
    study.add_trials(rows)


def test_the_audit_flags_an_op_a_search_is_drawn_to_when_trials_with_it_do_worse(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    _biased_study(url, "pool", "avg_pool_3x3")
    _biased_study(url, "conv", "nor_conv_3x3")
    with open_readonly(url) as store:
        pool = {row.op: row for row in audit_study(store, "pool").ops}
        conv = {row.op: row for row in audit_study(store, "conv").ops}
        strict = audit_study(store, "pool", AuditThresholds(attract_ratio=3.5))
    assert pool["avg_pool_3x3"].lift > 2 and pool["avg_pool_3x3"].effect < 0
    assert pool["avg_pool_3x3"].flags == (ATTRACTS_HURTS,)
    assert [op for op, row in pool.items() if row.flags] == ["avg_pool_3x3"]
    # Drawn to a good op: chosen as often, but trials with it do better, so no flag.
    assert conv["nor_conv_3x3"].lift > 2 and conv["nor_conv_3x3"].effect > 0
    assert not any(row.flags for row in conv.values())
    assert strict.flagged == []  # the thresholds are the caller's
    assert pool["avg_pool_3x3"].alpha_last is None  # no supernet in a black-box study


# -- poisoning a one-shot search -----------------------------------------------------------------
def _search(url: str, name: str, data, exclude: list[str]) -> float:
    """DARTS on the poisoned space, stored as the runner stores it; returns the derived cell's accuracy."""
    options = {**TINY, "extra_ops": ["noise"], **({"exclude_ops": exclude} if exclude else {})}
    space = get_space("nb201", **options)
    study = nas.create_study(
        name,
        url,
        space="nb201",
        space_options=options,
        config={"plugins": [PLUGIN], "strategy": {"name": "darts", **DARTS}},
    )
    result = run_oneshot(create_method("darts", space, data, DARTS, seed=0))
    supernet = Trial(
        number=0,
        arch=result.arch,
        state=TrialState.PRUNED,
        user_attrs=result.user_attrs(),
        system_attrs={"kind": "supernet", "method": "darts"},
    )
    (stored,) = study.add_trials([supernet], metrics=[result.curves()])
    trained = TrainEvaluator(space, data, **STANDALONE).measure(EvalRequest(arch=result.arch, seed=0))
    derived = Trial(
        number=0,
        arch=result.arch,
        state=TrialState.COMPLETE,
        values={"val_accuracy": trained.values["val_accuracy"]},
        system_attrs={"kind": "derived", "method": "darts", "derived_from": stored.number},
    )
    study.add_trials([derived])
    return float(trained.values["val_accuracy"])


@pytest.fixture(scope="module")
def poisoned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The poisoned search, its audit, and the search again without the flagged ops."""
    url = f"sqlite:///{tmp_path_factory.mktemp('audit') / 'store.db'}"
    data = load_dataset({"name": "digits"}, seed=0)
    poisoned_accuracy = _search(url, "poisoned", data, [])
    with open_readonly(url) as store:
        report = audit_study(store, "poisoned")
    recovered_accuracy = _search(url, "recovered", data, report.flagged)
    return {
        "url": url,
        "report": report,
        "poisoned": poisoned_accuracy,
        "recovered": recovered_accuracy,
    }


@pytest.mark.slow
def test_poisoned_supernet_audit_flags_the_shortcut_it_favours_and_excluding_it_recovers(poisoned) -> None:
    report = poisoned["report"]
    rows = {row.op: row for row in report.ops}
    assert report.oneshot and report.searched == 1 and report.judged == 1
    assert list(rows) == [*OPS, "noise"]
    assert report.flagged, [(r.op, r.alpha_last) for r in report.ops]
    for op in report.flagged:
        row = rows[op]
        assert row.flags == (SHORTCUT,) and row.parameter_free
        assert row.alpha_last >= 1.3 * row.uniform > row.alpha_first * 1.1  # alpha grew towards it
    # The derived cell is made of what the supernet favoured.
    assert sum(rows[op].chosen for op in report.flagged) >= 4
    # Noise is parameter-free but the supernet weighs it down: reported, not flagged.
    assert rows["noise"].parameter_free and rows["noise"].alpha_last < rows["noise"].uniform
    # The search without the flagged ops chooses none of them and its cell trains better stand-alone.
    study = nas.load_study("recovered", poisoned["url"])
    (derived,) = study.trials(states=TrialState.COMPLETE)
    assert not set(derived.arch.as_dict().values()) & set(report.flagged)
    assert poisoned["recovered"] > poisoned["poisoned"], (poisoned["recovered"], poisoned["poisoned"])


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, " ".join(result.output.split())  # Rich wraps at the terminal's width


@pytest.mark.slow
def test_audit_space_command_prints_the_table_json_and_clear_errors(poisoned) -> None:
    url, report = poisoned["url"], poisoned["report"]
    code, out = _cli("audit-space", "poisoned", "--storage", url)
    assert code == 0, out
    assert "space audit of poisoned" in out and "noise" in out and "shortcut" in out
    assert f"exclude_ops: {json.dumps(report.flagged)}" in out
    code, out = _cli("audit-space", "poisoned", "--storage", url, "--json")
    data = json.loads(out)
    assert data["flagged"] == report.flagged and data["thresholds"]["shortcut_ratio"] == 1.3
    code, out = _cli("audit-space", "poisoned", "--storage", url, "--json", "--shortcut-ratio", "50")
    assert json.loads(out)["flagged"] == []
    code, out = _cli("audit-space", "nope", "--storage", url)
    assert code == 2 and "nope" in out
    code, out = _cli("audit-space", "poisoned", "--storage", url, "--attract-ratio", "0.5")
    assert code == 2 and "attract_ratio=0.5" in out
    code, out = _cli(
        "audit-space", "poisoned", "--storage", url, "--plugin", PLUGIN, "--plugin", "no_such_op_mod"
    )
    assert code == 2 and "plugin module 'no_such_op_mod' cannot be imported" in out


@pytest.mark.slow
def test_study_page_shows_the_space_audit_with_its_flags(poisoned, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page(poisoned["url"], monkeypatch, page="trials", study="poisoned")
    app.button_group(key="plot_view").set_value("Space audit").run()
    assert not app.exception, [e.value for e in app.exception]
    table = next(d.value for d in app.dataframe if "flags" in d.value.columns)
    flagged = table[table["flags"] != ""]
    assert list(flagged["op"]) == poisoned["report"].flagged
    assert set(flagged["flags"]) == {SHORTCUT}
    assert list(table["op"]) == [*OPS, "noise"]
    assert any("exclude_ops" in c.value for c in app.code)
