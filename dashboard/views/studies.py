"""The Studies page: every study with its state, counts and best values; refreshes while one is live.

A study is live while its driver runs it (status ``running``: a fresh
driver heartbeat). A finished, interrupted or ``stale`` study (its driver
died: no heartbeat for longer than the timeout) changes no more by itself,
so the page stops refreshing once no study is live.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import streamlit as st

from dashboard import queries
from dashboard.navigation import Route
from dashboard.views.common import REFRESH_S, fmt_ago, fmt_value, go, nav_key, strategy_name
from nas.core.trial import TrialState
from nas.store.records import StudyStatus, StudySummary


def render(url: str) -> None:
    st.title("Studies")
    summaries = queries.summaries(url)
    if not summaries:
        st.info(
            "This store has no studies yet. Start a search (`nas search CONFIG`) and it appears here; "
            "this page refreshes by itself."
        )
        _refresh_while_empty(url)
        return
    _table(url, live=any(s.info.status.live for s in summaries))


def _refresh_while_empty(url: str) -> None:
    @st.fragment(run_every=REFRESH_S)
    def poll() -> None:
        if queries.summaries(url):
            st.rerun(scope="app")

    poll()


def _table(url: str, *, live: bool) -> None:
    @st.fragment(run_every=REFRESH_S if live else None)
    def table() -> None:
        summaries = queries.summaries(url)
        if live and not any(s.info.status.live for s in summaries):
            st.rerun(scope="app")  # the last live study ended: redraw once, without refreshing
        now = datetime.now(timezone.utc)
        frame = pd.DataFrame([_row(s, now) for s in summaries])
        if live:
            st.caption(f"⟳ refreshing every {REFRESH_S:g} s while a study is running")
        event = st.dataframe(
            frame,
            hide_index=True,
            width="stretch",
            on_select="rerun",
            selection_mode="single-row",
            key=nav_key("studies_table"),
            column_config={
                "trials": st.column_config.NumberColumn(format="%d"),
                "complete": st.column_config.NumberColumn(format="%d"),
                "running": st.column_config.NumberColumn(format="%d"),
                "failed": st.column_config.NumberColumn(format="%d"),
                "pruned": st.column_config.NumberColumn(format="%d"),
                "waiting": st.column_config.NumberColumn(format="%d"),
            },
        )
        rows = event.selection.rows if event is not None and hasattr(event, "selection") else []
        if rows:
            go(Route("trials", summaries[rows[0]].info.name))
        st.caption("Select a row to open its trials.")

    table()


def _row(summary: StudySummary, now: datetime) -> dict[str, object]:
    info = summary.info
    status = info.status.value
    if info.status is StudyStatus.STALE and info.heartbeat_at is not None:
        status = f"stale (driver silent for {fmt_ago(info.heartbeat_at, now)[:-4]}; rerun to resume)"
    best = "; ".join(
        f"{name} ({direction.value}) {fmt_value(summary.best.get(name))}"
        for name, direction in info.objectives.items()
    )
    counts = summary.counts
    return {
        "study": info.name,
        "space": info.space,
        "strategy": strategy_name(info),
        "status": status,
        "trials": summary.n_trials,
        "complete": counts.get(TrialState.COMPLETE, 0),
        "running": counts.get(TrialState.RUNNING, 0),
        "failed": counts.get(TrialState.FAIL, 0),
        "pruned": counts.get(TrialState.PRUNED, 0),
        "waiting": counts.get(TrialState.WAITING, 0),
        "best": best,
        "started": info.created_at.strftime("%Y-%m-%d %H:%M"),
        "last update": fmt_ago(summary.updated_at, now),
    }
