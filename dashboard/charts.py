"""Altair charts of the dashboard: progress, Pareto front, learning curves, α heatmaps.

Pure functions from plain data to ``alt.Chart`` (no Streamlit, no store), so
they are tested directly. Altair ships with Streamlit, so the dashboard
needs no extra plotting dependency; charts render client-side as Vega-Lite
with tooltips (the Pareto plot's tooltip shows the architecture).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import altair as alt
import numpy as np
import pandas as pd

from nas.core.trial import Direction

#: Metric names of one-shot architecture weights: ``alpha/<edge>/<op>`` per epoch.
ALPHA_PREFIX = "alpha/"

Curve = Sequence[tuple[int, float]]


def improvements(scores: np.ndarray) -> np.ndarray:
    """Positions where a score (smaller is better) beats every earlier one strictly: the incumbent's steps."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return np.zeros(0, dtype=np.int64)
    before = np.minimum.accumulate(np.concatenate([[np.inf], scores[:-1]]))
    return np.flatnonzero(scores < before)


def progress_chart(
    objective: str,
    direction: Direction,
    cloud: Sequence[tuple[int, float]],
    incumbent: Sequence[tuple[int, float]],
    last_number: int,
) -> alt.LayerChart:
    """Every (thinned) COMPLETE trial as a dot, and the best-so-far as a step line up to ``last_number``."""
    steps = list(incumbent)
    if steps and last_number > steps[-1][0]:
        steps.append((last_number, steps[-1][1]))  # the incumbent holds until the latest trial
    # Internal column names are fixed ("value"): objective names may hold dots or colons,
    # which Vega-Lite would read as nested fields.
    dots = pd.DataFrame(cloud, columns=["trial", "value"])
    best = pd.DataFrame(steps, columns=["trial", "value"])
    x = alt.X("trial:Q", title="trial number")
    y = alt.Y("value:Q", title=f"{objective} ({direction.value})", scale=alt.Scale(zero=False))
    tooltip = [alt.Tooltip("trial:Q"), alt.Tooltip("value:Q", title=objective)]
    cloud_layer = (
        alt.Chart(dots).mark_circle(size=14, opacity=0.45, color="#90a4ae").encode(x=x, y=y, tooltip=tooltip)
    )
    best_layer = (
        alt.Chart(best)
        .mark_line(interpolate="step-after", color="#d32f2f", strokeWidth=2.5, point=True)
        .encode(x=x, y=y, tooltip=tooltip)
    )
    return alt.layer(cloud_layer, best_layer).properties(height=300)


def pareto_chart(
    x: str,
    y: str,
    rows: Sequence[Mapping[str, object]],
    directions: Mapping[str, Direction],
) -> alt.LayerChart:
    """Trials in the plane of two objectives, the non-dominated ones highlighted and joined.

    ``rows``: dicts with ``trial``, ``x`` and ``y`` (the two objective
    values), ``pareto`` (bool) and ``architecture`` (shown on hover). Clicking
    a point selects it (selection parameter ``pick``, field ``trial``).
    """
    frame = pd.DataFrame(list(rows), columns=["trial", "x", "y", "pareto", "architecture"])
    frame["set"] = frame["pareto"].map({True: "Pareto front", False: "dominated"})
    tooltip = [
        alt.Tooltip("trial:Q"),
        alt.Tooltip("x:Q", title=x),
        alt.Tooltip("y:Q", title=y),
        alt.Tooltip("architecture:N"),
    ]
    x_axis = alt.X("x:Q", title=f"{x} ({directions[x].value})", scale=alt.Scale(zero=False))
    y_axis = alt.Y("y:Q", title=f"{y} ({directions[y].value})", scale=alt.Scale(zero=False))
    pick = alt.selection_point(name="pick", fields=["trial"], on="click")
    points = (
        alt.Chart(frame)
        .mark_circle()
        .encode(
            x=x_axis,
            y=y_axis,
            color=alt.Color(
                "set:N",
                scale=alt.Scale(domain=["Pareto front", "dominated"], range=["#d32f2f", "#78909c"]),
                legend=alt.Legend(title=None, orient="bottom"),
            ),
            size=alt.condition(alt.datum.pareto, alt.value(80), alt.value(28)),
            opacity=alt.condition(alt.datum.pareto, alt.value(1.0), alt.value(0.55)),
            tooltip=tooltip,
        )
        .add_params(pick)
    )
    front = frame[frame["pareto"]].sort_values(["x", "y"])
    line = alt.Chart(front).mark_line(color="#d32f2f", strokeDash=[4, 3]).encode(x=x_axis, y=y_axis)
    return alt.layer(line, points).properties(height=380)


def split_alpha(curves: Mapping[str, Curve]) -> tuple[dict[str, Curve], dict[str, dict[str, Curve]]]:
    """Separate learning curves from one-shot α curves (``alpha/<edge>/<op>`` → edge → op → curve)."""
    plain: dict[str, Curve] = {}
    alpha: dict[str, dict[str, Curve]] = {}
    for name, points in curves.items():
        if name.startswith(ALPHA_PREFIX) and name.count("/") >= 2:
            edge, _, op = name[len(ALPHA_PREFIX) :].rpartition("/")
            alpha.setdefault(edge, {})[op] = points
        else:
            plain[name] = points
    return plain, alpha


def _long_frame(
    nested: Mapping[str, Mapping[str, Curve]], columns: tuple[str, str, str, str]
) -> pd.DataFrame:
    """Curves keyed by two names as one long table (a row per point), the form Altair facets.

    ``columns`` names the outer key, the inner key, the step and the value.
    """
    records = [
        (outer, inner, step, value)
        for outer, curves in nested.items()
        for inner, points in curves.items()
        for step, value in points
    ]
    return pd.DataFrame(records, columns=list(columns))


def curves_chart(curves_by_trial: Mapping[str, Mapping[str, Curve]], columns: int = 3) -> alt.FacetChart:
    """One panel per metric (own y scale), one line per trial: learning curves, overlaid when comparing."""
    frame = _long_frame(curves_by_trial, ("trial", "metric", "step", "value"))
    several = len(curves_by_trial) > 1
    base = (
        alt.Chart(frame)
        .mark_line(point=len(frame) <= 400)
        .encode(
            x=alt.X("step:Q", title="step (epoch)"),
            y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
            color=alt.Color("trial:N", legend=alt.Legend(orient="bottom") if several else None),
            tooltip=["trial:N", "metric:N", "step:Q", "value:Q"],
        )
        .properties(width=230, height=170)
    )
    return base.facet(facet=alt.Facet("metric:N", title=None), columns=columns).resolve_scale(y="independent")


def alpha_chart(alpha: Mapping[str, Mapping[str, Curve]], columns: int = 3) -> alt.FacetChart:
    """One heatmap per edge: op (rows) by epoch (columns), coloured by the architecture weight."""
    frame = _long_frame(alpha, ("edge", "op", "epoch", "alpha"))
    base = (
        alt.Chart(frame)
        .mark_rect()
        .encode(
            x=alt.X("epoch:O", title="epoch"),
            y=alt.Y("op:N", title=None),
            color=alt.Color("alpha:Q", scale=alt.Scale(scheme="viridis"), title="α"),
            tooltip=["edge:N", "op:N", "epoch:O", alt.Tooltip("alpha:Q", format=".4f")],
        )
        .properties(width=220, height=alt.Step(14))
    )
    return base.facet(facet=alt.Facet("edge:N", title=None), columns=columns).resolve_scale(x="independent")


#: Colours of the scheduler's marks on a curve, by decision.
MARK_COLOURS = {"stopped": "#d32f2f", "paused": "#ef6c00", "resumed": "#78909c"}


def extrapolation_chart(
    metric: str,
    observed: Curve,
    band: Sequence[tuple[int, float, float, float]],
    marks: Sequence[tuple[int, str, str]] = (),
) -> alt.LayerChart:
    """One curve as stored, its predicted median (dashed) and 90% band, and the scheduler's decisions.

    ``band``: ``(step, low, median, high)`` per predicted epoch; ``marks``:
    ``(step, kind, reason)``, drawn as vertical rules with the reason on hover.
    """
    x = alt.X("step:Q", title="step (epoch)")
    y_title = alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False))
    seen = pd.DataFrame(list(observed), columns=["step", "value"])
    layers: list[alt.Chart] = []
    if band:
        # The band starts at the last stored point, so it joins the curve instead of floating.
        last = [(int(seen["step"].iloc[-1]), *[float(seen["value"].iloc[-1])] * 3)] if len(seen) else []
        frame = pd.DataFrame([*last, *band], columns=["step", "low", "median", "high"])
        layers.append(
            alt.Chart(frame)
            .mark_area(opacity=0.25, color="#1e88e5")
            .encode(
                x=x,
                y=alt.Y("low:Q", title=metric, scale=alt.Scale(zero=False)),
                y2="high:Q",
                tooltip=["step:Q", alt.Tooltip("low:Q", title="5%"), alt.Tooltip("high:Q", title="95%")],
            )
        )
        layers.append(
            alt.Chart(frame)
            .mark_line(strokeDash=[5, 4], color="#1e88e5")
            .encode(x=x, y=alt.Y("median:Q", title=metric), tooltip=["step:Q", "median:Q"])
        )
    layers.append(
        alt.Chart(seen)
        .mark_line(point=len(seen) <= 200, color="#0d47a1")
        .encode(x=x, y=y_title, tooltip=["step:Q", "value:Q"])
    )
    if marks:
        rules = pd.DataFrame(list(marks), columns=["step", "decision", "reason"])
        layers.append(
            alt.Chart(rules)
            .mark_rule(strokeWidth=2)
            .encode(
                x=x,
                color=alt.Color(
                    "decision:N",
                    scale=alt.Scale(domain=list(MARK_COLOURS), range=list(MARK_COLOURS.values())),
                    legend=alt.Legend(title=None, orient="bottom"),
                ),
                tooltip=["step:Q", "decision:N", "reason:N"],
            )
        )
    return alt.layer(*layers).properties(width=520, height=260)


def device_chart(
    points: Sequence[Mapping[str, object]], budgets: Sequence[Mapping[str, object]]
) -> alt.LayerChart:
    """A device's candidates: inherited accuracy against predicted latency, budgets as vertical rules.

    ``points``: dicts with ``trial``, ``latency_ms``, ``accuracy``, ``budget``,
    ``pareto`` and ``picked`` (the candidate selected for its budget, drawn
    as a large ring); ``budgets``: dicts with ``budget`` and ``selected``.
    The device's Pareto front is joined by a dashed line.
    """
    frame = pd.DataFrame(
        list(points), columns=["trial", "latency_ms", "accuracy", "budget", "pareto", "picked"]
    )
    frame["budget label"] = frame["budget"].map(lambda b: f"<= {b:g} ms")
    x_axis = alt.X("latency_ms:Q", title="predicted latency (ms, min)", scale=alt.Scale(zero=False))
    y_axis = alt.Y("accuracy:Q", title="inherited accuracy (%, max)", scale=alt.Scale(zero=False))
    pick = alt.selection_point(name="pick", fields=["trial"], on="click")
    tooltip = [
        alt.Tooltip("trial:Q"),
        alt.Tooltip("latency_ms:Q", title="predicted ms", format=".4g"),
        alt.Tooltip("accuracy:Q", title="accuracy %", format=".2f"),
        alt.Tooltip("budget label:N", title="budget"),
    ]
    dots = (
        alt.Chart(frame)
        .mark_circle()
        .encode(
            x=x_axis,
            y=y_axis,
            color=alt.Color("budget label:N", legend=alt.Legend(title="budget", orient="bottom")),
            size=alt.condition(alt.datum.pareto, alt.value(70), alt.value(28)),
            tooltip=tooltip,
        )
        .add_params(pick)
    )
    picked = (
        alt.Chart(frame[frame["picked"]])
        .mark_point(shape="circle", size=260, strokeWidth=2.5, color="#d32f2f")
        .encode(x=x_axis, y=y_axis, tooltip=tooltip)
    )
    front = frame[frame["pareto"]].sort_values(["latency_ms", "accuracy"])
    line = alt.Chart(front).mark_line(color="#d32f2f", strokeDash=[4, 3]).encode(x=x_axis, y=y_axis)
    rules = pd.DataFrame(list(budgets), columns=["budget", "selected"])
    budget_rules = (
        alt.Chart(rules)
        .mark_rule(color="#37474f", strokeDash=[2, 2])
        .encode(
            x="budget:Q",
            tooltip=[
                alt.Tooltip("budget:Q", title="budget ms"),
                alt.Tooltip("selected:Q", title="selected trial"),
            ],
        )
    )
    return alt.layer(budget_rules, line, dots, picked).properties(height=340)
