"""The trial page's "similar architectures" panel: the stored cells closest to this trial's.

Retrieval by the normalised WL kernel (:mod:`nas.retrieval`, the same query
as ``nas similar``): the table lists the most similar trials with their
study, values and state, the trial itself first; picking a row opens that
trial. A space whose plugin draws no graph gets a note instead of a table.
Study names and genotypes were written by whoever ran the search, so they
are shown as dataframe cells (plain text) or through :func:`as_text`.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import queries
from dashboard.navigation import Route
from dashboard.text import as_text
from dashboard.views.common import go, nav_key
from nas.core.errors import NASError
from nas.store.records import StudyInfo

#: Rows the panel offers (the query included).
K_CHOICES = (5, 10, 20, 50)


def similar_panel(url: str, info: StudyInfo, number: int) -> None:
    """The panel for trial ``number`` of ``info``: a k picker, a scope toggle and the table."""
    st.subheader("Similar architectures")
    left, right, _ = st.columns([1, 2, 3])
    k = left.selectbox("how many", K_CHOICES, index=1, key="similar_k")
    everywhere = right.toggle("all studies of this space", key="similar_all")
    try:
        with st.spinner("indexing the stored architectures…"):
            matches = queries.similar(url, info.name, number, int(k), bool(everywhere))
    except NASError as exc:
        st.caption(f"No similar architectures: {as_text(exc)}")
        return
    st.caption(
        "Similarity: the normalised Weisfeiler-Lehman kernel of the architecture graphs "
        "(1: the same labelled sub-graphs, 0: none shared). Select a row to open the trial."
    )
    objectives = list(info.objectives)
    rows = [
        {
            "similarity": m.similarity,
            "study": m.study,
            "trial": m.trial.number,
            "state": m.trial.state.value,
            **{name: (m.trial.values or {}).get(name) for name in objectives},
            "architecture": " ".join(str(v) for _, v in m.trial.arch.decisions),
        }
        for m in matches
    ]
    columns = ["similarity", "study", "trial", "state", *objectives, "architecture"]
    event = st.dataframe(
        pd.DataFrame(rows, columns=columns),
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="single-row",
        key=nav_key(f"similar-{info.name}-{number}"),
        column_config={
            "similarity": st.column_config.ProgressColumn(format="%.3f", min_value=0.0, max_value=1.0),
            **{name: st.column_config.NumberColumn(format="%.5g") for name in objectives},
        },
    )
    picked = event.selection.rows if event is not None else []
    if picked:
        match = matches[picked[0]]
        label = f"Open trial {match.trial.number} of {as_text(match.study)}"
        if st.button(label, type="primary", key="open_similar"):
            go(Route("trial", match.study, trial=match.trial.number))
