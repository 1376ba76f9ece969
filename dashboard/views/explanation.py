"""What an interpretable strategy learned: the sub-graphs that raise and lower its prediction.

A strategy that can explain itself (``Strategy.explain``, e.g. ``bowl``'s WL
features) has its explanation stored with each trial it proposes
(``system_attrs["explanation"]``). The trial page shows the one behind that
trial, the trials page the latest. Everything in it was written to the
store by whoever ran the search, so names go through :func:`as_text` and
the feature tables are dataframes (plain text).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import queries
from dashboard.text import as_text
from nas.core.errors import NASError
from nas.store.records import StudyInfo

#: How many of the newest trials the trials page looks through for an explanation.
LOOK_BACK = 5


def explanation_panel(explanation: object, heading: str) -> bool:
    """Draw ``explanation`` if it is one (a mapping with feature lists); returns whether it drew."""
    if not isinstance(explanation, Mapping):
        return False
    st.subheader(heading)
    details = [
        f"{label} {as_text(explanation[key])}"
        for key, label in (
            ("model", "model"),
            ("trials", "fitted on"),
            ("wl_iterations", "WL iterations"),
            ("target", "target"),
        )
        if key in explanation
    ]
    st.caption(
        " · ".join(details)
        + ". Effect: change of the predicted target per extra occurrence of the sub-graph "
        "(h0: an operation, h1: it with what feeds it, h2: two levels back); support: training "
        "architectures that contain it."
    )
    left, right = st.columns(2)
    for column, key, title in ((left, "positive", "raise the prediction"), (right, "negative", "lower it")):
        column.markdown(f"**{title}**")
        column.dataframe(_rows(explanation.get(key)), hide_index=True, width="stretch")
    return True


def _rows(items: object) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    if isinstance(items, Sequence) and not isinstance(items, str):
        for item in items:
            if isinstance(item, Mapping):
                rows.append(
                    {
                        "feature": str(item.get("feature", "")),
                        "effect": item.get("effect"),
                        "support": item.get("support"),
                    }
                )
    return pd.DataFrame(rows, columns=["feature", "effect", "support"])


def latest_explanation(url: str, info: StudyInfo, next_number: int) -> None:
    """The newest stored explanation among the last :data:`LOOK_BACK` trials, in an expander."""
    for number in range(next_number - 1, max(next_number - 1 - LOOK_BACK, -1), -1):
        try:
            trial = queries.trial(url, info.study_id, number)
        except NASError:
            continue
        explanation = trial.system_attrs.get("explanation")
        if isinstance(explanation, Mapping):
            with st.expander(f"What the strategy has learned (as of trial {number})", expanded=False):
                explanation_panel(explanation, "Sub-graphs that move the prediction")
            return
