"""The Compare page: architectures side by side with their differences highlighted, curves overlaid."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, graph, queries
from dashboard.navigation import MAX_COMPARE, Route, parse_numbers
from dashboard.text import as_text
from dashboard.views.common import architecture_panel, fmt_value, go
from nas.core.architecture import Architecture
from nas.core.errors import NASError
from nas.core.trial import Trial
from nas.store.records import StudyInfo

#: Architectures per row of the side-by-side view.
PER_ROW = 2


def render(url: str, study: str, numbers: tuple[int, ...]) -> None:
    info = queries.study(url, study)
    st.title(f"Compare trials · {as_text(info.name)}")
    text = st.text_input(
        "trials to compare",
        value=" ".join(map(str, numbers)),
        placeholder="trial numbers, e.g. 3 17 42",
        key="compare_numbers",
    )
    wanted, bad = parse_numbers(text)
    if bad:
        st.warning(f"ignored (not trial numbers): {as_text(', '.join(bad))}")
    if len(wanted) > MAX_COMPARE:
        st.warning(f"comparing the first {MAX_COMPARE} of {len(wanted)} trials")
        wanted = wanted[:MAX_COMPARE]
    if wanted != numbers:
        go(Route("compare", info.name, compare=wanted))
    if st.button("← trials", key="compare_back"):
        go(Route("trials", info.name))
    found = queries.trials_by_numbers(url, info.study_id, wanted)
    missing = sorted(set(wanted) - {t.number for t in found})
    if missing:
        st.warning(f"study {as_text(repr(info.name))} has no trial(s) {missing}")
    if len(found) < 2:
        st.info("Enter at least two trial numbers of this study (or select rows on the Trials page).")
        return
    _values(info, found)
    _decisions(found)
    _architectures(info, found)
    curves = {
        str(t.number): charts.split_alpha(queries.metrics(url, info.study_id, t.number))[0] for t in found
    }
    if any(curves.values()):
        st.subheader("Learning curves")
        st.altair_chart(charts.curves_chart(curves), width="content")


def _values(info: StudyInfo, found: list[Trial]) -> None:
    rows = [
        {
            "trial": t.number,
            "state": t.state.value,
            **{n: fmt_value(t.values.get(n) if t.values else None) for n in info.objectives},
            "budget": fmt_value(t.budget),
        }
        for t in found
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def differing_decisions(archs: list[Architecture]) -> list[str]:
    """Names of the decisions on which the architectures do not all agree (in decision order)."""
    names = list(dict.fromkeys(name for arch in archs for name in arch))
    return [n for n in names if len({repr(_get(arch, n)) for arch in archs}) > 1]


def _get(arch: Architecture, name: str) -> object:
    try:
        return arch[name]
    except KeyError:
        return None


def _decisions(found: list[Trial]) -> None:
    archs = [t.arch for t in found]
    differing = differing_decisions(archs)
    st.subheader("Decisions")
    only = st.toggle("only differing decisions", value=len(differing) > 0, key="only_diff")
    names = list(dict.fromkeys(name for arch in archs for name in arch))
    shown = [n for n in names if n in differing] if only else names
    frame = pd.DataFrame(
        {f"trial {t.number}": [str(_get(t.arch, n)) for n in shown] for t in found},
        index=pd.Index(shown, name="decision"),
    )
    styled = frame.style.apply(
        lambda row: ["background-color: #ffcdd2" if row.name in differing else "" for _ in row], axis=1
    )
    st.dataframe(styled, width="stretch")
    st.caption(f"{len(differing)} of {len(names)} decisions differ (highlighted)")


def _architectures(info: StudyInfo, found: list[Trial]) -> None:
    st.subheader("Architectures")
    status = queries.space_of(info)
    graphs = None
    if status.space is not None:
        try:
            graphs = [status.space.to_graph(t.arch) for t in found]
        except NASError:
            graphs = None
    st.caption(
        "Red: where each architecture differs from the first one (the first: where it differs from any other)."
    )
    for start in range(0, len(found), PER_ROW):
        columns = st.columns(PER_ROW)
        for offset, (column, trial) in enumerate(zip(columns, found[start : start + PER_ROW], strict=False)):
            index = start + offset
            highlight: set[graph.Element] = set()
            if graphs is not None:
                others = [graphs[0]] if index > 0 else graphs[1:]
                for other in others:
                    highlight |= graph.graph_differences(graphs[index], other)
            with column:
                architecture_panel(info, trial.arch, highlight=highlight, title=f"trial {trial.number}")
