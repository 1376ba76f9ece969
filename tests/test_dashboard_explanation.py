"""The dashboard shows what an interpretable strategy learned: per trial and, newest, per study."""

from __future__ import annotations

import numpy as np
import pytest
from dashboard_pages import open_page

import nas
from nas.core.wl_gp import WLGaussianProcess
from search_spaces import get_space

HOSTILE = "![x](http://example.invalid/leak)"


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('explain') / 'store.db'}"
    space = get_space("nb201")
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(12)]
    values = [
        float(sum(a[e] == "nor_conv_3x3" for e in ("3<-0", "3<-1", "3<-2"))) + rng.normal(0, 0.1)
        for a in archs
    ]
    explanation = {"trials": 12, **WLGaussianProcess(space).fit(archs, values).explain(top=3)}
    explanation["target"] = HOSTILE  # stored by whoever ran the search: shown as text
    study = nas.create_study("explained", url, space="nb201", objectives={"acc": "max"})
    for i, (arch, value) in enumerate(zip(archs, values, strict=True)):
        trial = study.ask(arch)
        if i >= 10:
            study.set_system_attr(trial, "explanation", explanation)
        study.tell(trial, value)
    study.finish()
    return url


def test_trial_page_shows_why_the_strategy_proposed_it(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_page(store_url, monkeypatch, page="trial", study="explained", trial="11")
    assert "Why the strategy proposed this trial" in [s.value for s in app.subheader]
    positive = app.dataframe[-2].value
    assert list(positive.columns) == ["feature", "effect", "support"]
    assert (positive["effect"] > 0).all() and positive["feature"].str.startswith("h").all()
    assert "nor_conv_3x3" in positive["feature"].iloc[0]
    assert (app.dataframe[-1].value["effect"] < 0).all()
    caption = next(c.value for c in app.caption if "WL iterations" in c.value)
    assert "](" not in caption.replace("\\](", "")  # the hostile target is escaped, not a link


def test_a_trial_without_explanation_has_no_panel(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page(store_url, monkeypatch, page="trial", study="explained", trial="2")
    assert "Why the strategy proposed this trial" not in [s.value for s in app.subheader]


def test_trials_page_shows_the_newest_explanation(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page(store_url, monkeypatch, page="trials", study="explained")
    assert any("as of trial 11" in e.label for e in app.expander)
    assert "Sub-graphs that move the prediction" in [s.value for s in app.subheader]
