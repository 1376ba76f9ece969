"""Pieces shared by the pages: navigation, formatting, the architecture panel."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from datetime import datetime, timezone
from typing import Any

import streamlit as st

from dashboard import graph, queries
from dashboard.navigation import Route, route_params
from dashboard.text import as_text
from nas.core.architecture import Architecture
from nas.core.errors import NASError
from nas.core.trial import Trial
from nas.store.records import StudyInfo

#: Seconds between automatic refreshes while a study is running.
REFRESH_S = 3.0

#: Names under which evaluators report a model's cost (values or ``user_attrs["metrics"]``).
COST_METRICS = {"params": "parameters", "flops": "FLOPs", "latency_ms": "latency (ms)"}


def go(route: Route) -> None:
    """Navigate: put ``route`` in the URL and rerun the whole app.

    Widgets that navigate when selected (table rows) take :func:`nav_key`
    keys, which change here, so a selection does not fire again on return.
    """
    st.session_state["_nav"] = st.session_state.get("_nav", 0) + 1
    st.query_params.from_dict(route_params(route))
    st.rerun(scope="app")


def nav_key(name: str) -> str:
    """A widget key that is fresh after every navigation (see :func:`go`)."""
    return f"{name}-{st.session_state.get('_nav', 0)}"


def nav_button(label: str, route: Route, key: str, **kwargs: Any) -> None:
    if st.button(label, key=key, **kwargs):
        go(route)


def fmt_time(moment: datetime | None) -> str:
    return "–" if moment is None else moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_ago(moment: datetime | None, now: datetime | None = None) -> str:
    """``"3 min ago"``: how long since ``moment``."""
    if moment is None:
        return "–"
    seconds = max(0.0, ((now or datetime.now(timezone.utc)) - moment).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"


def fmt_value(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float) and abs(value) >= 1e5 and value.is_integer():
        return f"{value:,.0f}"
    return f"{value:.6g}"


def duration_s(trial: Trial) -> float | None:
    if trial.started_at is None or trial.finished_at is None:
        return None
    return (trial.finished_at - trial.started_at).total_seconds()


def cost_figures(trial: Trial) -> dict[str, float]:
    """Parameters, FLOPs and latency the evaluator recorded (objective values first, then user attributes)."""
    recorded = trial.user_attrs.get("metrics") if isinstance(trial.user_attrs, Mapping) else None
    sources = [trial.values or {}, recorded if isinstance(recorded, Mapping) else {}]
    found: dict[str, float] = {}
    for key in COST_METRICS:
        for source in sources:
            value = source.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                found[key] = float(value)
                break
    return found


def origin(trial: Trial) -> str | None:
    """Where a trial came from, from the platform's system attributes (``None`` for an ordinary trial)."""
    system = trial.system_attrs
    parts = []
    if system.get("kind") == "supernet":
        parts.append(f"supernet ({system['method']})" if system.get("method") else "supernet")
    if system.get("derived_from") is not None:
        parts.append(f"derived from supernet #{system['derived_from']}")
    reused = system.get("reused_from")
    if isinstance(reused, Mapping):
        parts.append(f"reused from {reused.get('study')} #{reused.get('trial')}")
    if system.get("retry_of") is not None:
        parts.append(f"retry of #{system['retry_of']}")
    return " · ".join(parts) or None


def strategy_name(info: StudyInfo) -> str:
    """The search method stored in the study's config (``strategy.name``, or a one-shot ``method``)."""
    config = info.config or {}
    strategy = config.get("strategy")
    if isinstance(strategy, Mapping) and strategy.get("name"):
        return str(strategy["name"])
    for key in ("method", "oneshot", "strategy"):
        value = config.get(key)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, Mapping) and value.get("name"):
            return str(value["name"])
    return "–"


def architecture_panel(
    info: StudyInfo,
    arch: Architecture,
    *,
    highlight: Collection[graph.Element] = (),
    title: str | None = None,
    show_text: bool = True,
) -> None:
    """The architecture drawn as a graph (or the raw genotype when the space plugin is missing)."""
    status = queries.space_of(info)
    if status.space is None:
        st.info(as_text(status.problem or "this architecture cannot be drawn here"))
        st.json(arch.to_dict(), expanded=True)
        return
    try:
        drawn = status.space.to_graph(arch)
    except NASError as exc:
        st.warning(f"this architecture cannot be drawn: {as_text(exc)}")
        st.json(arch.to_dict(), expanded=True)
        return
    st.graphviz_chart(graph.to_dot(drawn, highlight, title=title), width="stretch")
    legend = " · ".join(f":{f.streamlit_colour}[**{f.name}**]" for f in graph.families_used(drawn))
    if legend:
        st.caption(f"colour by op type: {legend}" + (" · :red[**differs**]" if highlight else ""))
    if show_text:
        st.code(queries.arch_text(status.space, arch), language=None, wrap_lines=True)


def show_notes(notes: Collection[str]) -> None:
    for note in notes:
        st.warning(as_text(note))
