"""The trial page's outlook: LC-PFN's extrapolation of a partial curve, the scheduler's decisions, pauses.

The store is built with the real Study API, as a search with the ``lc`` and
``hyperband`` schedulers leaves it (docs/schedulers.md): a running trial with
a partial curve, a trial the ``lc`` stopper stopped (its decision in
``system_attrs["scheduler"]``), one Ray's ASHA stopped (only
``stopped_at_step``, in a study of its own) and a trial paused at a rung (``pauses``/``paused_at``,
stored RUNNING). The band comes from the shipped weights, not a stand-in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace

import pyarrow as pa
import pytest
from click.testing import CliRunner
from dashboard_pages import open_page

import nas
from dashboard.decisions import scheduler_marks
from dashboard.text import WORD_JOINER
from nas.cli import main
from nas.cli import store as store_cli
from nas.core.promotion import mo_order
from nas.core.trial import TrialState
from nas.curves import weights
from nas.curves.predict import load_predictor

EPOCHS = 12
RUNNING_CURVE = [31.0, 44.0, 51.5, 55.0]  # val_accuracy in percent, epochs 1..4
ASHA_DECISION = {
    "name": "asha",
    "epoch": 1,
    "rung": 1,
    "value": 11.0,
    "cutoff": 40.25,
    "rank": 4,
    "rung_size": 5,
    "reduction_factor": 3.0,
}
LC_DECISION = {"name": "lc", "epoch": 3, "p_beats_best": 0.0123, "best": 71.5, "threshold": 0.05}


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('curves') / 'store.db'}"
    study = nas.create_study(
        "sched",
        url,
        space="nb201",
        objectives={"val_accuracy": "max"},
        config={"strategy": {"name": "random"}, "scheduler": {"name": "lc"}},
        comparability={"space.name": "nb201", "evaluator.name": "train", "evaluator.epochs": EPOCHS},
    )
    running = study.ask(budget=EPOCHS)  # 0: running, 4 of 12 epochs
    for epoch, value in enumerate(RUNNING_CURVE, start=1):
        study.report(running, epoch, {"val_accuracy": value, "val_loss": 2.0 / epoch})

    stopped = study.ask(budget=EPOCHS)  # 1: stopped by lc at epoch 3
    for epoch, value in enumerate([12.0, 15.0, 16.0], start=1):
        study.report(stopped, epoch, {"val_accuracy": value})
    study.set_system_attr(stopped, "scheduler", LC_DECISION)
    study.tell(stopped, state="PRUNED", user_attrs={"stopped_at_step": 3})

    paused = study.ask(budget=EPOCHS)  # 2: paused by hyperband after epoch 2
    for epoch, value in enumerate([25.0, 38.0], start=1):
        study.report(paused, epoch, {"val_accuracy": value})
    study.set_system_attr(paused, "pauses", [2])
    study.set_system_attr(paused, "paused_at", 2)

    asha = nas.create_study(
        "asha", url, space="nb201", objectives={"val_accuracy": "max"}, config={"scheduler": {"name": "asha"}}
    )
    old = asha.ask(budget=EPOCHS)  # stopped by ASHA before stops were recorded: only the epoch
    asha.report(old, 1, {"val_accuracy": 10.0})
    asha.tell(old, state="PRUNED", user_attrs={"stopped_at_step": 1})
    new = asha.ask(budget=EPOCHS)  # stopped by ASHA with its decision (FinishingAsha records it)
    asha.report(new, 1, {"val_accuracy": 11.0})
    asha.set_system_attr(new, "scheduler", ASHA_DECISION)
    asha.tell(new, state="PRUNED", user_attrs={"stopped_at_step": 1})
    return url


def chart_data(app: object) -> list[dict]:
    """Every row of every dataset of every Vega-Lite chart on the page."""
    rows: list[dict] = []
    for element in app.get("vega_lite_chart"):  # type: ignore[attr-defined]
        spec = json.loads(element.proto.spec)
        for values in spec.get("datasets", {}).values():
            rows.extend(values)
        for dataset in element.proto.datasets:  # Streamlit sends Altair's data frames as Arrow
            rows.extend(pa.ipc.open_stream(dataset.data.data).read_pandas().to_dict("records"))
    return rows


def captions(app: object) -> str:
    """The captions as read: without the backslashes that keep stored text from being Markdown."""
    text = "\n".join(c.value for c in app.caption)  # type: ignore[attr-defined]
    return re.sub(r"\\(.)", r"\1", text).replace(WORD_JOINER, "")


def test_a_partial_curve_gets_the_extrapolated_median_and_band_to_the_budget(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_page(store_url, monkeypatch, page="trial", study="sched", trial="0")
    band = [r for r in chart_data(app) if {"low", "median", "high"} <= set(r)]
    assert sorted(r["step"] for r in band) == list(range(4, EPOCHS + 1))  # joined at epoch 4, then 5..12
    predicted = [r for r in band if r["step"] > 4]
    assert all(0 <= r["low"] <= r["median"] <= r["high"] <= 100 for r in predicted)
    # Percent in, percent out: the curve was scaled to [0, 1] for the model and back.
    assert max(r["median"] for r in predicted) > RUNNING_CURVE[-1] - 10
    expected = load_predictor().predict([[v / 100 for v in RUNNING_CURVE]], [EPOCHS])
    last = next(r for r in band if r["step"] == EPOCHS)
    assert last["median"] == pytest.approx(100 * float(expected.median[0]), abs=1e-3)
    assert "LC-PFN's extrapolation" in captions(app) and "to epoch 12" in captions(app)


def test_a_stopped_trial_shows_the_stoppers_reason_at_its_epoch(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_page(store_url, monkeypatch, page="trial", study="sched", trial="1")
    text = captions(app)
    assert "stopped at epoch 3 by lc: P(final value > best 71.5) = 0.012 < threshold 0.05" in text
    rules = [r for r in chart_data(app) if "decision" in r]
    assert [(r["step"], r["decision"]) for r in rules] == [(3, "stopped")]
    assert any(r.get("step") == EPOCHS and "median" in r for r in chart_data(app))  # band from epoch 3

    asha = open_page(store_url, monkeypatch, page="trial", study="asha", trial="0")
    assert "stopped at rung epoch 1 by asha: below the cutoff" in captions(asha)
    asha = open_page(store_url, monkeypatch, page="trial", study="asha", trial="1")
    assert (
        "stopped at rung epoch 1 by asha: value 11 below the rung's cutoff 40.25 (ranked 4 of 5 trials "
        "recorded there; the top 1/3 go on)"
    ) in captions(asha)


def test_a_paused_trial_is_shown_paused_on_its_page_in_the_table_and_the_cli(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_page(store_url, monkeypatch, page="trial", study="sched", trial="2")
    assert ":orange-badge[PAUSED at epoch 2]" in [m.value for m in app.markdown]  # st.badge
    assert any("paused at epoch 2" in i.value for i in app.info)
    assert [(r["step"], r["decision"]) for r in chart_data(app) if "decision" in r] == [(2, "paused")]
    table = open_page(store_url, monkeypatch, page="trials", study="sched").dataframe[0].value
    states = dict(zip(table["#"], table["state"], strict=True))
    assert states == {0: "RUNNING", 1: "PRUNED", 2: "PAUSED at epoch 2"}
    assert nas.load_study("sched", store_url).trial(2).state is TrialState.RUNNING  # stored state unchanged

    monkeypatch.setattr(store_cli.console, "width", 200)  # one table row per trial, unwrapped
    result = CliRunner().invoke(main, ["trials", "sched", "--storage", store_url])
    assert result.exit_code == 0, result.output
    assert "PAUSED at epoch 2" in result.output


@pytest.fixture
def corrupted_weights(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    load_predictor.cache_clear()
    monkeypatch.setattr(weights, "WEIGHTS_SHA256", "0" * 64)
    yield
    load_predictor.cache_clear()


def test_corrupted_weights_are_a_caption_not_a_crash(
    store_url: str, monkeypatch: pytest.MonkeyPatch, corrupted_weights: None
) -> None:
    app = open_page(store_url, monkeypatch, page="trial", study="sched", trial="0")
    assert "No extrapolation" in captions(app) and "lcpfn.pt" in captions(app)
    assert "corrupted" in captions(app)
    assert not [r for r in chart_data(app) if "median" in r]


def test_moasha_decisions_name_the_rung_and_the_rank(store_url: str) -> None:
    point, recorded = [-50.0, 3.0], [[-60.0, 2.0], [-55.0, 2.5]]  # dominated by both
    assert list(mo_order([*recorded, point])).index(2) == 2
    decision = {
        "name": "moasha",
        "epoch": 3,
        "rung_size": 3,
        "point": point,
        "recorded": recorded,
        "tie_break": "epsnet",
        "promoted": 1,
    }
    stored = nas.load_study("sched", store_url).trial(1)
    trial = replace(stored, system_attrs={"scheduler": decision})
    (mark,) = scheduler_marks(trial, "moasha")
    assert (mark.step, mark.kind) == (3, "stopped")
    assert "rung epoch 3" in mark.reason and "ranked 3 of 3" in mark.reason and "top 1 of 3" in mark.reason
