"""Every dashboard page through Streamlit's AppTest on a seeded SQLite store.

The store is seeded with the real Study API: a finished two-objective nb201
study with curves and a failed trial, a DARTS trial reporting one-shot α
weights, and a study of a space plugin that is not installed here. Empty and
missing stores, unknown studies and trials must give friendly messages, never
an exception.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from dashboard_pages import open_page
from streamlit.testing.v1 import AppTest

import nas
from dashboard import graph
from nas.core.trial import Trial, TrialState
from nas.store.records import EXPORT_ARTIFACT
from nas.store.testing import ChainSpace

ERROR_TEXT = "RuntimeError: CUDA out of memory (simulated)"
FAILED = 5


def seed(url: str) -> None:
    rng = np.random.default_rng(0)
    multi = nas.create_study(
        "multi",
        url,
        space="nb201",
        objectives={"acc": "max", "lat": "min"},
        config={"strategy": {"name": "random"}},
    )
    for i in range(24):
        trial = multi.ask()
        if i == FAILED:
            multi.tell(trial, state="FAIL", error=f"Traceback (most recent call last):\n{ERROR_TEXT}")
            continue
        for epoch in range(3):
            multi.report(trial, epoch, {"val_accuracy": float(rng.uniform(10, 90)), "loss": 1 / (epoch + 1)})
        multi.tell(
            trial,
            [float(rng.normal(70, 5)), float(rng.gamma(2, 3))],
            user_attrs={"metrics": {"params": 1234.0, "flops": 5.0e6}},
        )
    multi.finish()

    darts = nas.create_study("oneshot", url, space="darts", objectives={"acc": "max"})
    trial = darts.ask()
    for epoch in range(4):
        alphas = {f"alpha/normal/2<-0/{op}": float(rng.random()) for op in ("sep_conv_3x3", "skip_connect")}
        darts.report(trial, epoch, {**alphas, "loss": 1 / (epoch + 1)})
    darts.tell(trial, 91.0)

    chain = nas.create_study("unplugged", url, space=ChainSpace(), objectives={"acc": "max"})
    chain.tell(chain.ask(), 1.0)


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('dash') / 'store.db'}"
    seed(url)
    return url


def specs(app: AppTest, kind: str) -> list[str]:
    return [element.proto.spec for element in app.get(kind)]


def texts(app: AppTest) -> str:
    parts = [
        e.value
        for kind in (
            "title",
            "header",
            "subheader",
            "markdown",
            "caption",
            "info",
            "warning",
            "error",
            "code",
        )
        for e in getattr(app, kind)
    ]
    return "\n".join(str(p) for p in parts)


def test_studies_page_lists_every_study_with_counts(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page(store_url, monkeypatch)
    table = app.dataframe[0].value
    assert list(table["study"]) == ["multi", "oneshot", "unplugged"]
    multi = table[table["study"] == "multi"].iloc[0]
    assert (multi["space"], multi["strategy"], multi["status"]) == ("nb201", "random", "finished")
    assert (multi["trials"], multi["complete"], multi["failed"]) == (24, 23, 1)
    assert "acc (max)" in multi["best"] and "lat (min)" in multi["best"]
    assert table[table["study"] == "oneshot"].iloc[0]["status"] == "running"


def test_trials_page_shows_table_progress_and_pareto(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    study = nas.load_study("multi", store_url)
    app = open_page(store_url, monkeypatch, page="trials", study="multi")
    table = app.dataframe[0].value
    assert list(table["#"]) == list(range(23, -1, -1))  # latest first
    assert {"acc", "lat", "architecture", "state"} <= set(table.columns)
    assert table[table["#"] == FAILED].iloc[0]["state"] == "FAIL"
    assert "trials 1–24 of 24 matching" in texts(app)
    (progress,) = specs(app, "vega_lite_chart")
    assert "acc (max)" in progress
    best = study.best_trial
    assert f"best {best.values['acc']:.6g} at trial {best.number}" in texts(app)

    app.button_group(key="plot_view").set_value("Pareto front").run()
    (pareto,) = specs(app, "vega_lite_chart")
    assert "Pareto front" in pareto and "architecture" in pareto
    front = study.best_trials
    assert f"{len(front)} non-dominated trials (on acc and lat) of 23" in texts(app)


def test_trials_page_filters_by_state_and_architecture(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_page(store_url, monkeypatch, page="trials", study="multi")
    app.multiselect(key="f_states").set_value(["FAIL"]).run()
    assert list(app.dataframe[0].value["#"]) == [FAILED]
    app.multiselect(key="f_states").set_value([]).run()
    study = nas.load_study("multi", store_url)
    with_pool = [t.number for t in study.trials() if "avg_pool_3x3" in t.arch.as_dict().values()]
    app.text_input(key="f_contains").input("AVG_POOL_3x3").run()
    assert sorted(app.dataframe[0].value["#"]) == sorted(with_pool)
    app.selectbox(key="f_order").set_value("acc").run()
    shown = app.dataframe[0].value["acc"].tolist()
    assert shown == sorted(shown, reverse=True)


def test_opening_a_trial_by_number_navigates(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page(store_url, monkeypatch, page="trials", study="multi")
    box = next(n for n in app.number_input if n.label == "open trial #")
    box.set_value(3).run()
    assert app.title[0].value == "Trial 3 · multi"
    assert app.query_params["trial"] == "3"


def test_trial_page_draws_the_architecture_and_curves(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = nas.load_study("multi", store_url)
    app = open_page(store_url, monkeypatch, page="trial", study="multi", trial="3")
    (dot,) = specs(app, "graphviz_chart")
    for op in study.trial(3).arch.as_dict().values():
        assert f'label="{op}"' in dot
    assert graph.op_family("nor_conv_3x3").colour in dot or graph.op_family("avg_pool_3x3").colour in dot
    assert study.space.format(study.trial(3).arch) in texts(app)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["parameters"] == "1234" and metrics["acc (max)"] == f"{study.trial(3).values['acc']:.6g}"
    (curves,) = specs(app, "vega_lite_chart")
    assert "step (epoch)" in curves
    assert [b.label for b in app.get("download_button")]  # an export or genotype download is offered


def test_failed_trial_shows_its_error_text(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page(store_url, monkeypatch, page="trial", study="multi", trial=str(FAILED))
    assert "This trial failed." in [e.value for e in app.error]
    assert any(ERROR_TEXT in c.value for c in app.code)
    assert specs(app, "graphviz_chart")  # the architecture is still drawn
    labels = [b.label for b in app.get("download_button")]
    assert labels == ["Download genotype JSON"]  # a failed trial has no model to export


def test_one_shot_trial_shows_alpha_heatmaps(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page(store_url, monkeypatch, page="trial", study="oneshot", trial="0")
    charts = specs(app, "vega_lite_chart")
    heatmap = [json.loads(s) for s in charts if '"rect"' in s]
    assert len(heatmap) == 1 and "Architecture weights (α) over epochs" in texts(app)
    (dot,) = specs(app, "graphviz_chart")
    assert "normal cell" in dot and "reduce cell" in dot


def test_space_plugin_not_installed_shows_the_raw_genotype(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_page(store_url, monkeypatch, page="trial", study="unplugged", trial="0")
    assert "not installed" in texts(app)
    assert not specs(app, "graphviz_chart")
    assert any(json.loads(j.value).get("space") == "store-chain" for j in app.json)
    trials = open_page(store_url, monkeypatch, page="trials", study="unplugged")
    assert "op0=" in trials.dataframe[0].value["architecture"].iloc[0]


def test_compare_highlights_differences_and_overlays_curves(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = nas.load_study("multi", store_url)
    a, b = study.trial(1).arch, study.trial(2).arch
    differing = [k for k in a if a[k] != b[k]]
    assert differing, "seed two different architectures"
    app = open_page(store_url, monkeypatch, page="compare", study="multi", compare="1,2")
    dots = specs(app, "graphviz_chart")
    assert len(dots) == 2 and all(graph.HIGHLIGHT in dot for dot in dots)
    assert f"{len(differing)} of {len(a)} decisions differ" in texts(app)
    (curves,) = specs(app, "vega_lite_chart")
    assert "trial" in curves


@pytest.mark.parametrize(
    "params, message",
    [
        ({"page": "trials", "study": "nope"}, "no study named 'nope'"),
        ({"page": "trial", "study": "multi", "trial": "999"}, "has no trial number 999"),
        ({"page": "bogus"}, "unknown page 'bogus'"),
        ({"page": "trial", "study": "multi", "trial": "x1"}, "is not a trial number"),
    ],
)
def test_bad_addresses_get_friendly_messages(
    store_url: str, monkeypatch: pytest.MonkeyPatch, params: dict[str, str], message: str
) -> None:
    app = open_page(store_url, monkeypatch, **params)
    assert message in texts(app)
    assert not app.error


@pytest.fixture
def empty_stores(tmp_path: Path) -> Iterator[dict[str, str]]:
    blank = tmp_path / "blank.db"
    sqlite3.connect(blank).close()
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    nas.create_study("gone", fresh, space=ChainSpace()).storage.delete_study("gone")
    yield {
        "missing": f"sqlite:///{tmp_path / 'missing.db'}",
        "blank": f"sqlite:///{blank}",
        "no studies": fresh,
    }


@pytest.mark.parametrize(
    "kind, message",
    [("missing", "run a search first"), ("blank", "is empty"), ("no studies", "no studies yet")],
)
def test_empty_stores_get_friendly_messages(
    empty_stores: dict[str, str], monkeypatch: pytest.MonkeyPatch, kind: str, message: str
) -> None:
    app = open_page(empty_stores[kind], monkeypatch)
    assert message in texts(app)
    assert not app.error
    assert not Path(empty_stores["missing"].removeprefix("sqlite:///")).exists()


def test_sidebar_opens_a_study_and_switches_pages(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page(store_url, monkeypatch)
    next(s for s in app.sidebar.selectbox if s.label == "study").set_value("multi").run()
    assert app.title[0].value == "Study multi"
    next(r for r in app.sidebar.radio if r.label == "page").set_value("compare").run()
    assert app.title[0].value == "Compare trials · multi"
    next(r for r in app.sidebar.radio if r.label == "page").set_value("studies").run()
    assert app.title[0].value == "Studies"
    assert not app.exception


def test_trial_page_buttons_lead_back_and_to_compare(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page(store_url, monkeypatch, page="trial", study="multi", trial="2")
    app.button(key="to_compare").click().run()
    assert app.title[0].value == "Compare trials · multi"
    assert "at least two trial numbers" in texts(app)
    app.text_input(key="compare_numbers").input("2 7").run()
    assert len(specs(app, "graphviz_chart")) == 2
    app.button(key="compare_back").click().run()
    assert app.title[0].value == "Study multi"


def similar_table(app: AppTest) -> object:
    return next(d.value for d in app.dataframe if "similarity" in d.value.columns)


def test_trial_page_lists_similar_architectures(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    study = nas.load_study("multi", store_url)
    app = open_page(store_url, monkeypatch, page="trial", study="multi", trial="3")
    assert "Similar architectures" in [s.value for s in app.subheader]
    table = similar_table(app)
    assert len(table) == 10 and list(table.columns[:4]) == ["similarity", "study", "trial", "state"]
    assert (table["study"].iloc[0], table["trial"].iloc[0], table["similarity"].iloc[0]) == ("multi", 3, 1.0)
    assert table["acc"].iloc[0] == pytest.approx(study.trial(3).values["acc"])
    assert list(table["similarity"]) == sorted(table["similarity"], reverse=True)
    assert table["similarity"].iloc[-1] < 1.0
    for row in table.itertuples():
        if row.state == "COMPLETE":
            assert row.acc == pytest.approx(study.trial(row.trial).values["acc"])
    app.selectbox(key="similar_k").set_value(5).run()
    assert len(similar_table(app)) == 5
    app.toggle(key="similar_all").set_value(True).run()
    assert set(similar_table(app)["study"]) == {"multi"}  # the other studies search other spaces


def test_similar_architectures_of_a_space_that_is_not_installed_is_a_note(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_page(store_url, monkeypatch, page="trial", study="unplugged", trial="0")
    assert any(c.value.startswith("No similar architectures:") for c in app.caption)
    assert not [d for d in app.dataframe if "similarity" in d.value.columns]


def test_a_specialisation_study_shows_each_devices_candidates_and_budgets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/spec.db"
    config = {
        "strategy": {"name": "bignas"},
        "specialize": {"targets": [{"device": "pixel3", "max_latency_ms": 9}]},
    }
    objectives = {"val_accuracy": "max", "latency_ms": "min"}
    study = nas.create_study("bn-specialized", url, space=ChainSpace(), objectives=objectives, config=config)
    rng = np.random.default_rng(0)
    attrs = {"device": "pixel3", "max_latency_ms": 9.0, "target": "pixel3<=9", "derived_from": 0}
    trials = [
        Trial(0, ChainSpace().sample(rng), TrialState.COMPLETE, values={"val_accuracy": 50 + i, "latency_ms": 5 + i},
                  system_attrs={**attrs, "kind": "candidate"})
        for i in range(3)
    ]  # fmt: skip
    study.add_trials(trials)
    loose = {**attrs, "max_latency_ms": 12.0, "target": "pixel3<=12"}
    study.add_trials(
        [Trial(0, trials[2].arch, TrialState.COMPLETE, values={"val_accuracy": 53.0, "latency_ms": 7.0},
                   system_attrs={**attrs, "kind": "specialized", "candidate": 2}),
         Trial(0, trials[2].arch, TrialState.COMPLETE, values={"val_accuracy": 53.0, "latency_ms": 7.0},
                   system_attrs={**loose, "kind": "specialized", "candidate": 2})]
    )  # fmt: skip
    bundle = tmp_path / "pixel3 bundle"
    study.add_artifact(4, EXPORT_ARTIFACT, bundle.as_uri(), "0" * 64)  # what `nas export` records
    app = open_page(url, monkeypatch, page="trials", study="bn-specialized")
    app.button_group(key="plot_view").set_value("Devices").run()
    assert not app.exception, [e.value for e in app.exception]
    (chart,) = specs(app, "vega_lite_chart")
    assert "predicted latency" in chart and "budget" in chart
    assert "3 sub-networks scored with inherited weights for pixel3" in texts(app)
    assert r"9 ms\: trial 3" in texts(app)  # the selected sub-network of the budget (markdown-escaped)
    # Which sub-network was exported for which target: only the 12 ms pick was shipped.
    (targets,) = [d.value for d in app.dataframe if "exported" in d.value.columns]
    assert targets["target"].tolist() == ["pixel3 <= 9 ms", "pixel3 <= 12 ms"]
    assert targets["selected trial"].tolist() == [3, 4]
    assert targets["exported"].tolist() == [False, True]
    assert targets["bundle"].tolist()[1] == str(bundle)
