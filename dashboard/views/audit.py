"""The study page's "space audit" panel: what the search chose against how it worked out.

The same report as ``nas audit-space`` (:mod:`nas.audit`): per op of the
space, its share of the search's decisions (and, in a one-shot study, its
alpha at the first and last epoch) beside the mean objective of trials with
and without it, and the flags. The thresholds are editable here, as on the
command line. A study whose space cannot be built here (a plugin that is not
installed) gets a note instead of the table.
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from dashboard import queries
from dashboard.text import as_text
from nas.audit import FLAG_HELP, AuditThresholds
from nas.core.errors import NASError
from nas.store.records import StudyInfo

#: The table's columns, in order (the objective's columns are named after it).
COLUMNS = ("op", "parameter-free", "chosen", "lift", "alpha first", "alpha last", "alpha lift")


def _thresholds() -> AuditThresholds | None:
    default = AuditThresholds()
    with st.expander("Audit thresholds", expanded=False):
        columns = st.columns(4)
        attract = columns[0].number_input(
            "attract ratio", value=default.attract_ratio, min_value=1.01, step=0.1, key="audit_attract"
        )
        margin = columns[1].number_input(
            "hurt margin", value=default.hurt_margin, min_value=0.0, format="%.4g", key="audit_margin"
        )
        minimum = columns[2].number_input(
            "min trials each side", value=default.min_trials, min_value=1, step=1, key="audit_min"
        )
        shortcut = columns[3].number_input(
            "shortcut ratio", value=default.shortcut_ratio, min_value=1.01, step=0.1, key="audit_shortcut"
        )
    try:
        return AuditThresholds(float(attract), float(margin), int(minimum), float(shortcut))
    except NASError as exc:
        st.warning(as_text(exc))
        return None


def audit_panel(url: str, info: StudyInfo, token: object) -> None:
    """The audit table of ``info`` with its flags and the ``exclude_ops`` that would drop them."""
    st.subheader("Space audit")
    thresholds = _thresholds()
    if thresholds is None:
        return
    try:
        report = queries.space_audit(url, info.name, queries.token_key(token), thresholds)
    except NASError as exc:
        st.caption(f"No space audit: {as_text(exc)}")
        return
    scope = (
        "the derived cells and the alpha curves of the supernets"
        if report.oneshot
        else "every trial's architecture"
    )
    st.caption(
        f"Choices: {scope} ({report.searched}); results: {report.judged} COMPLETE trials on "
        f"{as_text(report.objective)} ({report.direction.value}). Lift = share of decisions that chose "
        "the op / the share a uniform draw gives; effect = mean with - mean without (positive: the op "
        "goes with better results)."
    )
    objective = report.objective
    rows = [
        {
            "op": row.op,
            "parameter-free": row.parameter_free,
            "chosen": f"{row.chosen}/{row.decisions}",
            "lift": row.lift,
            "alpha first": row.alpha_first,
            "alpha last": row.alpha_last,
            "alpha lift": row.alpha_lift,
            "with": row.trials_with,
            "without": row.trials_without,
            f"{objective} with": row.mean_with,
            f"{objective} without": row.mean_without,
            "effect": row.effect,
            "rank corr.": row.rank_correlation,
            "flags": ", ".join(row.flags),
        }
        for row in report.ops
    ]
    columns = [
        *COLUMNS,
        "with",
        "without",
        f"{objective} with",
        f"{objective} without",
        "effect",
        "rank corr.",
        "flags",
    ]
    numbers = ("lift", "alpha first", "alpha last", "alpha lift", "effect", "rank corr.")
    st.dataframe(
        pd.DataFrame(rows, columns=columns),
        hide_index=True,
        width="stretch",
        key=f"audit-{info.name}",
        column_config={
            **{name: st.column_config.NumberColumn(format="%.3f") for name in numbers},
            f"{objective} with": st.column_config.NumberColumn(format="%.5g"),
            f"{objective} without": st.column_config.NumberColumn(format="%.5g"),
        },
    )
    st.caption(" · ".join(f"**{flag}**: {text}" for flag, text in FLAG_HELP.items()))
    if report.flagged:
        st.warning(
            f"Flagged: {', '.join(as_text(op) for op in report.flagged)}. To search without them, set "
            "this space option:"
        )
        st.code(f"exclude_ops: {json.dumps(report.flagged)}", language="yaml")
    else:
        st.success("No op flagged at these thresholds.")
