"""The Trials page of a study: filterable table with server-side paging, progress and Pareto plots.

Only one page of trials is ever loaded; filters, sorting, paging and the
match count are SQL (:meth:`nas.store.readonly.ReadOnlyStorage.query_trials`),
so 100,000 trials cost the same as 100. While the study runs, the part
below the filters refreshes itself every few seconds (a fragment), and each
refresh costs one cheap token query unless something changed.
"""

from __future__ import annotations

import functools
import hashlib
import json

import pandas as pd
import streamlit as st

from dashboard import charts, queries
from dashboard.navigation import MAX_COMPARE, Route
from dashboard.specialization import budget_rows, device_views, is_specialization, target_rows
from dashboard.text import as_text
from dashboard.views.audit import audit_panel
from dashboard.views.common import (
    REFRESH_S,
    duration_s,
    fmt_ago,
    fmt_value,
    go,
    nav_key,
    origin,
    strategy_name,
)
from dashboard.views.explanation import latest_explanation
from nas.core.architecture import Architecture
from nas.core.trial import TrialState
from nas.store.readonly import MAX_CONTAINS_TERMS, TrialQuery
from nas.store.records import StudyInfo, StudyStatus

PAGE_SIZES = (25, 50, 100, 200)


def render(url: str, study: str) -> None:
    info = queries.study(url, study)
    status = queries.space_of(info)
    st.title(f"Study {as_text(info.name)}")
    current = queries.token(url, info.study_id)
    live = current[0] == StudyStatus.RUNNING.value
    st.caption(
        f"space **{as_text(info.space)}** · strategy **{as_text(strategy_name(info))}** · objectives "
        + ", ".join(f"**{as_text(n)}** ({d.value})" for n, d in info.objectives.items())
        + f" · status **{current[0]}** · started {fmt_ago(info.created_at)}"
    )
    if status.problem:
        st.info(as_text(status.problem))
    query, page_size = _filters(url, info)

    @st.fragment(run_every=REFRESH_S if live else None)
    def body() -> None:
        token = queries.token(url, info.study_id)
        if live and token[0] != StudyStatus.RUNNING.value:
            st.rerun(scope="app")  # finished, interrupted or stale meanwhile: redraw once, stop refreshing
        key = queries.token_key(token)
        counts = queries.counts(url, info.study_id, key)
        _counts(counts, live=token[0] == StudyStatus.RUNNING.value)
        _table(url, info, query, page_size, key)
        latest_explanation(url, info, token[1])
        complete = counts[TrialState.COMPLETE]
        if complete == 0:
            st.info("No COMPLETE trial yet: the progress and Pareto plots appear with the first result.")
            return
        # One plot at a time (unlike tabs, which run every tab): a first view computes only one.
        plots = ["Progress", "Pareto front"] if len(info.objectives) > 1 else ["Progress"]
        if is_specialization(info.config):
            plots.append("Devices")
        shown = st.segmented_control(
            "plot", [*plots, "Space audit"], default="Progress", key="plot_view", label_visibility="collapsed"
        )
        if shown == "Pareto front":
            _pareto(url, info, token)
        elif shown == "Space audit":
            audit_panel(url, info, token)
        elif shown == "Devices":
            _devices(url, info, key)
        else:
            _progress(url, info, token)

    body()


def _filters(url: str, info: StudyInfo) -> tuple[TrialQuery, int]:
    """The filter and sort widgets (outside the refreshing part, so typing is never interrupted)."""
    names = list(info.objectives)
    with st.expander("Filter and sort", expanded=False):
        left, middle, right = st.columns([2, 2, 1])
        states = left.multiselect(
            "states", [s.value for s in TrialState], default=[], placeholder="all states", key="f_states"
        )
        contains = middle.text_input(
            "architecture contains",
            key="f_contains",
            placeholder="e.g. sep_conv_3x3 (several: separate by spaces)",
            help="Matches the stored genotype JSON, case-insensitively; all terms must occur.",
        )
        page_size = right.selectbox("rows per page", PAGE_SIZES, index=1, key="f_size")
        bounds = queries.bounds(url, info.study_id, queries.token_key(queries.token(url, info.study_id)))
        ranges: dict[str, tuple[float | None, float | None]] = {}
        columns = st.columns(max(1, len(names)))
        for column, name in zip(columns, names, strict=False):
            known = bounds.get(name)
            hint = "" if known is None else f" (stored: {fmt_value(known[0])} … {fmt_value(known[1])})"
            label = as_text(name)
            column.markdown(f"**{label}**{hint}")
            low = column.number_input(f"{label} ≥", value=None, key=f"f_low_{name}", format="%.6g")
            high = column.number_input(f"{label} ≤", value=None, key=f"f_high_{name}", format="%.6g")
            if low is not None or high is not None:
                ranges[name] = (low, high)
        sort_left, sort_right = st.columns(2)
        order_by = sort_left.selectbox(
            "sort by",
            ["number", *names],
            format_func=lambda n: "trial number" if n == "number" else n,
            key="f_order",
        )
        order = sort_right.radio("order", ["descending", "ascending"], horizontal=True, key="f_desc")
    for name, (low, high) in ranges.items():
        if low is not None and high is not None and low > high:
            st.warning(f"the range of {as_text(name)} is empty ({low:g} > {high:g}); it is ignored")
            ranges.pop(name)
            break
    query = TrialQuery(
        states=tuple(TrialState(s) for s in states) or None,
        ranges=ranges,
        contains=tuple(contains.split())[:MAX_CONTAINS_TERMS],
        order_by=order_by,
        descending=order == "descending",
    )
    return query, int(page_size)


def _counts(counts: dict[TrialState, int], *, live: bool) -> None:
    columns = st.columns(len(TrialState) + 1)
    columns[0].metric("trials", f"{sum(counts.values()):,}")
    for column, state in zip(columns[1:], TrialState, strict=True):
        column.metric(state.value.lower(), f"{counts[state]:,}")
    if live:
        st.caption(f"⟳ live: refreshing every {REFRESH_S:g} s while the study runs")


def _table(url: str, info: StudyInfo, query: TrialQuery, page_size: int, key: str) -> None:
    query_id = hashlib.blake2b(repr(query).encode(), digest_size=6).hexdigest()
    page_key = f"page-{query_id}-{page_size}"
    # The page widget comes after the query (its maximum depends on the total), so the page
    # wanted is read from the widget's state first and clamped if the total shrank.
    page = int(st.session_state.get(page_key, 1))
    result = queries.trial_page(url, info.study_id, query, (page - 1) * page_size, page_size, key)
    pages = max(1, -(-result.total // page_size))
    if page > pages:
        page = pages
        result = queries.trial_page(url, info.study_id, query, (page - 1) * page_size, page_size, key)
    st.session_state[page_key] = page
    offset = (page - 1) * page_size
    left, right = st.columns([1, 3])
    left.number_input(f"page (of {pages:,})", min_value=1, max_value=pages, step=1, key=page_key)
    if result.total == 0:
        st.info(
            "No trial matches these filters." if query != TrialQuery() else "This study has no trials yet."
        )
        return
    right.markdown(
        f"<div style='padding-top:2.1em'>trials {offset + 1:,}–{offset + len(result.trials):,} "
        f"of {result.total:,} matching</div>",
        unsafe_allow_html=True,
    )
    space = queries.space_of(info).space
    rows = []
    for trial in result.trials:
        row: dict[str, object] = {
            "#": trial.number,
            "state": trial.shown_state,
        }
        for name in info.objectives:
            row[name] = trial.values.get(name) if trial.values else None
        row["budget"] = trial.budget
        row["architecture"] = queries.arch_text(space, trial.arch)
        row["duration (s)"] = duration_s(trial)
        row["finished"] = fmt_ago(trial.finished_at) if trial.finished_at else "–"
        row["origin"] = origin(trial) or ""
        rows.append(row)
    if not any(row["origin"] for row in rows):  # ordinary trials only: no empty column
        for row in rows:
            del row["origin"]
    event = st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="multi-row",
        key=nav_key(f"trials_table-{query_id}-{offset}"),
        column_config={
            **{name: st.column_config.NumberColumn(format="%.5g") for name in info.objectives},
            "#": st.column_config.NumberColumn(format="%d", width="small"),
            "architecture": st.column_config.TextColumn(width="large"),
            "duration (s)": st.column_config.NumberColumn(format="%.1f"),
        },
    )
    picked = [result.trials[i].number for i in (event.selection.rows if event is not None else [])]
    open_left, open_right, _ = st.columns([1, 1, 2])
    if len(picked) == 1:
        if open_left.button(f"Open trial {picked[0]}", type="primary", key="open_picked"):
            go(Route("trial", info.name, trial=picked[0]))
    elif len(picked) > 1:
        chosen = tuple(picked[:MAX_COMPARE])
        if open_left.button(f"Compare {len(chosen)} trials", type="primary", key="compare_picked"):
            go(Route("compare", info.name, compare=chosen))
    else:
        open_left.caption("Select rows to open one trial or compare several.")
    number = open_right.number_input(
        "open trial #", min_value=0, value=None, step=1, key=nav_key("open_number")
    )
    if number is not None:
        go(Route("trial", info.name, trial=int(number)))


def _progress(url: str, info: StudyInfo, token: tuple) -> None:
    names = list(info.objectives)
    objective = names[0]
    if len(names) > 1:
        objective = st.selectbox("objective", names, key="progress_objective")
    data = queries.progress(url, info, objective, token)
    chart = charts.progress_chart(
        objective, info.objectives[objective], data.cloud, data.incumbent, max(0, token[1] - 1)
    )
    st.altair_chart(chart, width="stretch")
    thinned = f"; every {data.stride}th trial is drawn" if data.stride > 1 else ""
    best = (
        f"; best {fmt_value(data.incumbent[-1][1])} at trial {data.incumbent[-1][0]}"
        if data.incumbent
        else ""
    )
    st.caption(f"{data.count:,} COMPLETE trials{thinned}; red: best so far{best}")


def _pareto(url: str, info: StudyInfo, token: tuple) -> None:
    names = list(info.objectives)
    x, y = names[0], names[1]
    if len(names) > 2:
        left, right = st.columns(2)
        x = left.selectbox("x axis", names, index=0, key="pareto_x")
        y = right.selectbox("y axis", [n for n in names if n != x], index=0, key="pareto_y")
    data = queries.pareto(url, info, x, y, token)
    status = queries.space_of(info)
    space_key = json.dumps([info.space, dict(info.space_options)], sort_keys=True)
    rows = [
        {
            "trial": number,
            "x": xv,
            "y": yv,
            "pareto": front,
            "architecture": _arch_label(space_key, genotype) if status.space is not None else genotype,
        }
        for number, genotype, xv, yv, front in data.points
    ]
    _chart_opening_trials(charts.pareto_chart(x, y, rows, info.objectives), "pareto_chart", info)
    front_note = "all objectives" if len(names) > 2 else f"{as_text(x)} and {as_text(y)}"
    thinned = f"; dominated trials thinned to every {data.stride}th" if data.stride > 1 else ""
    st.caption(
        f"{data.front} non-dominated trials (on {front_note}) of {data.total:,}{thinned}. "
        "Hover for the architecture, click a point to open its trial."
    )


def _devices(url: str, info: StudyInfo, key: str) -> None:
    """A specialisation study per device: candidates, its Pareto front, the budgets and each one's pick."""
    views = device_views(queries.complete_trials(url, info.study_id, key))
    if not views:
        st.info("No scored sub-network yet.")
        return
    names = [v.device for v in views]
    device = st.selectbox("device", names, index=0, key="specialize_device") if len(names) > 1 else names[0]
    view = views[names.index(device)]
    _chart_opening_trials(charts.device_chart(view.points, budget_rows(view)), "device_chart", info)
    chosen = ", ".join(
        f"<= {b:g} ms: trial {view.selected[b]}" if b in view.selected else f"<= {b:g} ms: not yet"
        for b in view.budgets
    )
    st.caption(
        f"{len(view.points)} sub-networks scored with inherited weights for {as_text(device)}; "
        f"the dashed rules are the budgets, the ringed points the selected sub-networks (stored with "
        f"their weights, what nas export ships: {as_text(chosen)})."
    )
    exported = queries.exports(url, info.study_id, tuple(sorted(set(view.selected.values()))))
    st.dataframe(
        pd.DataFrame(target_rows(view, exported)),
        hide_index=True,
        column_config={"exported": st.column_config.CheckboxColumn("exported", help="shipped by nas export")},
    )


def _chart_opening_trials(chart: object, key: str, info: StudyInfo) -> None:
    """Draw a chart whose points carry a ``trial`` field; clicking one opens that trial's page.

    Both the Pareto plot and the per-device plot are ways into a trial, so they
    share one way of turning a click into navigation.
    """
    event = st.altair_chart(
        chart, width="stretch", on_select="rerun", selection_mode="pick", key=nav_key(key)
    )
    picked = _picked_trial(event)
    if picked is not None:
        go(Route("trial", info.name, trial=picked))


def _picked_trial(event: object) -> int | None:
    selection = getattr(event, "selection", None)
    if not selection:
        return None
    points = selection.get("pick") if hasattr(selection, "get") else None
    if isinstance(points, list) and points and isinstance(points[0], dict) and "trial" in points[0]:
        return int(points[0]["trial"])
    return None


@functools.lru_cache(maxsize=50_000)
def _arch_label(space_key: str, genotype: str) -> str:
    """Hover text of one architecture; trials never change, so labels are cached across refreshes."""
    name, options = json.loads(space_key)
    space = queries.space_for(name, json.dumps(options, sort_keys=True)).space
    return queries.arch_text(space, Architecture.from_json(genotype))
