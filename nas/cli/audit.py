"""``nas audit-space``: which ops a study's search chose, against how trials with them performed.

The report (:mod:`nas.audit`) runs on the read-only store, so it can watch a
running search. Heavy imports stay inside the command so ``nas --help``
stays fast.
"""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nas.cli.options import storage_option
from nas.cli.root import main

console = Console()


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


@main.command("audit-space")
@click.argument("study")
@click.option(
    "--attract-ratio",
    type=float,
    default=1.5,
    show_default=True,
    help="An op attracts the search when chosen this many times as often as a uniform draw (or its alpha is).",
)
@click.option(
    "--hurt-margin",
    type=float,
    default=0.0,
    show_default=True,
    help="It hurts when trials with it are worse than those without by more than this (objective units).",
)
@click.option(
    "--min-trials",
    type=int,
    default=3,
    show_default=True,
    help="COMPLETE trials needed with and without the op to judge whether it hurts.",
)
@click.option(
    "--shortcut-ratio",
    type=float,
    default=1.3,
    show_default=True,
    help="A parameter-free op is a favoured shortcut when its mean final alpha is this many times uniform.",
)
@click.option(
    "--plugin",
    "plugins",
    multiple=True,
    metavar="MODULE",
    help="Import this module first (it registers the study's plugin ops or space); repeatable. "
    "The plugins a stored config names are never imported.",
)
@storage_option()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def audit_space_command(
    study: str,
    attract_ratio: float,
    hurt_margin: float,
    min_trials: int,
    shortcut_ratio: float,
    plugins: tuple[str, ...],
    storage: str | None,
    as_json: bool,
) -> None:
    """Audit the search space of STUDY: per op, how often the search chose it against how trials with it did.

    Flags ops that attract the search but hurt results (a poisoned space) and
    parameter-free ops a supernet over-weights (the skip-connection failure);
    search again with them excluded (nb201: space option exclude_ops).
    """
    from nas.audit import FLAG_HELP, AuditThresholds, audit_study
    from nas.core.registry import import_plugins
    from nas.store import open_readonly

    import_plugins(list(plugins))
    thresholds = AuditThresholds(
        attract_ratio=attract_ratio,
        hurt_margin=hurt_margin,
        min_trials=min_trials,
        shortcut_ratio=shortcut_ratio,
    )
    with open_readonly(storage) as store:
        report = audit_study(store, study, thresholds)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    kind = "one-shot: derived cells and alpha" if report.oneshot else "black-box: every trial"
    table = Table(
        title=(
            f"space audit of {escape(study)} ({escape(report.space)}, {escape(kind)}; "
            f"{report.searched} searched, {report.judged} judged on {escape(report.objective)} "
            f"{report.direction.value})"
        ),
        caption=(
            "chosen: decisions that took the op; lift: its share over a uniform draw's; "
            "with/without: mean objective where a decision took it / another op; rho: Spearman"
        ),
    )
    alpha = report.oneshot  # black-box studies have no alpha: their columns would be empty
    table.add_column("op", no_wrap=True)
    for column in ("free", "chosen", "lift", *(("alpha", "α lift") if alpha else ())):
        table.add_column(column)
    for column in ("with", "without", "effect", "rho"):
        table.add_column(column, justify="right")
    table.add_column("flags", no_wrap=True)
    for row in report.ops:
        alphas = (f"{_number(row.alpha_first, 2)}→{_number(row.alpha_last, 2)}", _number(row.alpha_lift))
        table.add_row(
            escape(row.op),
            "yes" if row.parameter_free else "",
            f"{row.chosen}/{row.decisions}",
            _number(row.lift),
            *(alphas if alpha else ()),
            _number(row.mean_with, 4),
            _number(row.mean_without, 4),
            _number(row.effect),
            _number(row.rank_correlation, 2),
            escape(", ".join(row.flags)) or "-",
        )
    console.print(table)
    for flag, text in FLAG_HELP.items():
        console.print(f"[bold]{flag}[/bold]: {escape(text)}")
    if report.flagged:
        console.print(
            f"flagged: {escape(', '.join(report.flagged))}; to search without them set the space option "
            f"exclude_ops: {escape(json.dumps(report.flagged))}"
        )
    else:
        console.print("no op flagged")
