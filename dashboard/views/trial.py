"""The Trial detail page: values, cost, error, the architecture drawn, curves, α heatmaps, similar cells, export."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pandas as pd
import streamlit as st

from dashboard import charts, decisions, downloads, extrapolation, queries
from dashboard.navigation import Route
from dashboard.text import as_text
from dashboard.views.common import (
    COST_METRICS,
    REFRESH_S,
    architecture_panel,
    cost_figures,
    duration_s,
    fmt_time,
    fmt_value,
    go,
    origin,
)
from dashboard.views.explanation import explanation_panel
from dashboard.views.similar import similar_panel
from nas.core.errors import NASError
from nas.core.trial import Trial, TrialState
from nas.store.records import StudyInfo
from nas.store.url import mask_secrets


def render(url: str, study: str, number: int) -> None:
    info = queries.study(url, study)
    trial = queries.trial(url, info.study_id, number)
    st.title(f"Trial {trial.number} · {as_text(info.name)}")
    back, compare, _ = st.columns([1, 1, 4])
    if back.button("← trials", key="back_to_trials"):
        go(Route("trials", info.name))
    if compare.button("compare with…", key="to_compare"):
        go(Route("compare", info.name, compare=(trial.number,)))
    _summary(info, trial)
    if trial.state is TrialState.FAIL:
        st.error("This trial failed.")
        st.code(trial.error or "(no error text was stored)", language=None, wrap_lines=True)
    elif trial.paused_at is not None:
        st.info(
            f"This trial is paused at epoch {trial.paused_at}: the scheduler holds it at a rung and resumes "
            "it from its checkpoint if it is promoted (stored as RUNNING: its driver still owns it)."
        )
    elif trial.state is TrialState.PRUNED:
        stopped = trial.user_attrs.get("stopped_at_step")
        st.warning(
            "This trial was pruned (stopped early)"
            + (f" at step {as_text(stopped)}." if stopped is not None else ".")
        )

    left, right = st.columns([3, 2])
    with left:
        st.subheader("Architecture")
        architecture_panel(info, trial.arch)
    with right:
        _cost(info, trial)
        with st.expander("decisions", expanded=False):
            st.dataframe(
                pd.DataFrame([{"decision": k, "value": str(v)} for k, v in trial.arch.decisions]),
                hide_index=True,
                width="stretch",
            )
        _export(url, info, trial)

    live = trial.state in (TrialState.RUNNING, TrialState.WAITING)

    @st.fragment(run_every=REFRESH_S if live else None)
    def curves() -> None:
        current = queries.trial(url, info.study_id, number) if live else trial
        if live and current.state is not trial.state:
            st.rerun(scope="app")  # finished meanwhile: redraw the whole page
        _curves(url, info, current)

    curves()
    similar_panel(url, info, trial.number)
    explanation_panel(trial.system_attrs.get("explanation"), "Why the strategy proposed this trial")
    with st.expander("trial record and study config", expanded=False):
        record = {"user_attrs": dict(trial.user_attrs), "system_attrs": dict(trial.system_attrs)}
        st.json({**record, "seed": trial.seed, "node": trial.node}, expanded=1)
        # Rows written before passwords were masked on write may still hold one: mask on display too.
        stored = {"space_options": dict(info.space_options), "config": dict(info.config)}
        st.json(mask_secrets(stored), expanded=1)


STATE_COLOURS = {
    TrialState.COMPLETE: "green",
    TrialState.RUNNING: "blue",
    TrialState.WAITING: "gray",
    TrialState.PRUNED: "orange",
    TrialState.FAIL: "red",
}


def _summary(info: StudyInfo, trial: Trial) -> None:
    paused = trial.paused_at is not None
    colour = "orange" if paused else STATE_COLOURS[trial.state]
    st.badge(trial.shown_state, color=colour)  # type: ignore[arg-type]
    columns = st.columns(len(info.objectives) + 3)
    for column, name in zip(columns, info.objectives, strict=False):
        value = trial.values.get(name) if trial.values else None
        column.metric(f"{as_text(name)} ({info.objectives[name].value})", fmt_value(value))
    rest = columns[len(info.objectives) :]
    seconds = duration_s(trial)
    rest[0].metric("duration", "–" if seconds is None else f"{seconds:,.1f} s")
    rest[1].metric("budget", fmt_value(trial.budget))
    rest[2].metric("seed", str(trial.seed))
    came_from = origin(trial)
    st.caption(
        f"started {fmt_time(trial.started_at)} · finished {fmt_time(trial.finished_at)} · "
        f"worker {as_text(trial.node or '–')}" + (f" · {as_text(came_from)}" if came_from else "")
    )


def _cost(info: StudyInfo, trial: Trial) -> None:
    st.subheader("Cost")
    figures = cost_figures(trial)
    if figures:
        columns = st.columns(len(figures))
        for column, (key, value) in zip(columns, figures.items(), strict=True):
            column.metric(COST_METRICS[key], fmt_value(value))
        return
    space = queries.space_of(info).space
    if space is None or not hasattr(space, "stats"):
        st.caption("The evaluator recorded no parameter count, FLOPs or latency for this trial.")
        return
    st.caption("The evaluator recorded no parameter count, FLOPs or latency for this trial.")
    if st.button("compute parameters and FLOPs", key="compute_stats"):
        with st.spinner("building the model…"):
            try:
                stats = _stats(
                    info.space, json.dumps(dict(info.space_options), sort_keys=True), trial.arch.to_json()
                )
            except (NASError, RuntimeError, ValueError) as exc:
                st.warning(f"cannot build this model here: {as_text(exc)}")
                return
        left, right = st.columns(2)
        left.metric("parameters", f"{stats[0]:,}")
        right.metric("FLOPs (batch 1, 32×32)", f"{stats[1]:,}")


@st.cache_data(show_spinner=False, max_entries=256)
def _stats(space_name: str, options_json: str, genotype: str) -> tuple[int, int]:
    """Parameters and FLOPs of the built model at the default input shape (torch, on demand only)."""
    from nas.core.architecture import Architecture

    space = queries.space_for(space_name, options_json).space
    if space is None:
        raise ValueError(f"space {space_name!r} is not available")
    stats = space.stats(Architecture.from_json(genotype))  # type: ignore[attr-defined]
    return int(stats.params), int(stats.flops)


def _curves(url: str, info: StudyInfo, trial: Trial) -> None:
    curves = queries.metrics(url, info.study_id, trial.number)
    plain, alpha = charts.split_alpha(curves)
    _outlook(info, trial, plain)
    if plain:
        st.subheader("Learning curves")
        st.altair_chart(charts.curves_chart({str(trial.number): plain}), width="content")
    elif not alpha:
        st.caption("No curves were reported for this trial.")
    if alpha:
        st.subheader("Architecture weights (α) over epochs")
        st.caption(f"{len(alpha)} edges; one heatmap per edge, ops by epoch")
        st.altair_chart(charts.alpha_chart(alpha), width="content")


def _outlook(info: StudyInfo, trial: Trial, plain: dict[str, charts.Curve]) -> None:
    """The primary objective's curve with LC-PFN's extrapolation and the scheduler's decisions."""
    metric = next(iter(info.objectives))
    curve = plain.get(metric)
    scheduler = (info.config or {}).get("scheduler")
    name = scheduler.get("name") if isinstance(scheduler, Mapping) else None
    marks = decisions.scheduler_marks(trial, str(name) if name else None)
    outlook = extrapolation.extrapolate(info, trial, curve) if curve else None
    band = outlook.band if outlook is not None else None
    if curve and (band is not None or marks):
        st.subheader(f"{as_text(metric)}: where the curve is heading")
        drawn = [(m.step, m.kind, m.reason) for m in marks]
        st.altair_chart(
            charts.extrapolation_chart(metric, curve, band.rows if band else [], drawn), width="content"
        )
    if band is not None:
        st.caption(
            f"Dashed line and band: LC-PFN's extrapolation (our learning-curve model, nas.curves) of "
            f"{as_text(metric)} from the {len(curve or [])} epochs stored to epoch {band.horizon}: the median "
            "and the 90% band (5%–95%). A prediction, not a measurement."
        )
    elif outlook is not None and outlook.note:
        st.caption(as_text(outlook.note))
    for mark in marks:
        st.caption(f"Scheduler: {as_text(mark.reason)}")


def _export(url: str, info: StudyInfo, trial: Trial) -> None:
    st.subheader("Export")
    genotype = downloads.genotype_download(trial, dict(info.space_options))
    available = downloads.export_available()
    if not available or trial.state is not TrialState.COMPLETE:
        reason = (
            "model export is not installed here"
            if not available
            else f"only COMPLETE trials can be exported as models (this one is {trial.state.value})"
        )
        st.caption(f"{reason}; download the genotype JSON instead.")
        st.download_button(
            "Download genotype JSON", genotype.data, genotype.file_name, genotype.mime, key="dl_genotype"
        )
        return
    key = f"export-{info.name}-{trial.number}"
    ready = st.session_state.get(key)
    if ready is None:
        if st.button(
            "Export model",
            type="primary",
            key="export_model",
            help="Build, convert and check the model bundle",
        ):
            with st.spinner("exporting (building, converting and checking every format)…"):
                try:
                    st.session_state[key] = downloads.model_download(info.name, trial.number, url)
                except (NASError, ImportError) as exc:
                    st.error(f"export failed: {as_text(exc)}")
                    return
            ready = st.session_state[key]
    if ready is not None:
        st.download_button(
            f"Download {ready.description}",
            ready.data,
            ready.file_name,
            ready.mime,
            type="primary",
            key="dl_model",
        )
    st.download_button(
        "Download genotype JSON", genotype.data, genotype.file_name, genotype.mime, key="dl_genotype"
    )
