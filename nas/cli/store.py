"""``nas db``, ``nas studies`` and ``nas trials``: manage and inspect the trial store.

The store is opened from ``--storage``, else ``$NAS_STORAGE``, else
``sqlite:///nas.db`` (one rule, :func:`nas.store.resolve_storage_url`).
SQLAlchemy is imported inside the commands so ``nas --help`` stays fast.
"""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nas.cli.options import storage_option
from nas.cli.root import main
from nas.core.trial import TrialState

console = Console()

_storage_option = storage_option()


def _fmt_time(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment is not None else "-"


def _fmt_value(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


@main.group("db")
def db_group() -> None:
    """Create and migrate the trial store's schema."""


@db_group.command("upgrade")
@_storage_option
@click.option("--revision", default="head", show_default=True, help="Target schema revision.")
def db_upgrade(storage: str | None, revision: str) -> None:
    """Create the schema in a new database or migrate an existing one."""
    from nas.store import RDBStorage

    with RDBStorage(storage, check_schema=False) as store:
        before, after = store.upgrade(revision)
        if before == after:
            click.echo(f"{store.url}: schema already at {after}")
        else:
            click.echo(f"{store.url}: schema upgraded from {before or '(empty)'} to {after}")


@db_group.command("current")
@_storage_option
def db_current(storage: str | None) -> None:
    """Show the database's schema revision and the one this version needs."""
    from nas.store import RDBStorage, head_revision

    with RDBStorage(storage, create=False, check_schema=False) as store:
        current = store.schema_revision()
        status = "up to date" if current == head_revision() else "run `nas db upgrade`"
        click.echo(f"{store.url}: {current or '(empty)'} (head {head_revision()}; {status})")


@main.command("studies")
@_storage_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def studies_command(storage: str | None, as_json: bool) -> None:
    """List the stored studies with trial counts and best values."""
    from nas.store import study_to_dict
    from nas.store.study import list_studies

    summaries = list_studies(storage)
    if as_json:
        click.echo(json.dumps([study_to_dict(s) for s in summaries], indent=2))
        return
    table = Table(title=f"{len(summaries)} studies")
    for column in ("name", "space", "status", "trials", "best", "created", "updated"):
        table.add_column(column)
    for summary in summaries:
        info = summary.info
        states = ", ".join(f"{n} {s.value.lower()}" for s, n in summary.counts.items() if n)
        best = "\n".join(
            f"{name} ({d.value}): {_fmt_value(summary.best.get(name))}" for name, d in info.objectives.items()
        )
        table.add_row(
            escape(info.name),
            escape(info.space),
            info.status.value,
            f"{summary.n_trials}" + (f" ({states})" if states else ""),
            escape(best),
            _fmt_time(info.created_at),
            _fmt_time(summary.updated_at),
        )
    console.print(table)


@main.command("trials")
@click.argument("study")
@_storage_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice([s.value for s in TrialState], case_sensitive=False),
    help="Only trials in this state (repeatable).",
)
@click.option(
    "--limit", type=click.IntRange(1, 10_000), default=100, show_default=True, help="Trials to show."
)
@click.option(
    "--sort", "order_by", default=None, metavar="OBJECTIVE", help="Order by an objective, best first."
)
def trials_command(
    study: str, storage: str | None, as_json: bool, states: tuple[str, ...], limit: int, order_by: str | None
) -> None:
    """List the trials of STUDY (the latest first, or the best first with --sort)."""
    from nas.store import trial_to_dict
    from nas.store.study import load_study

    loaded = load_study(study, storage)
    wanted = [s.upper() for s in states] or None
    if order_by is None:
        trials = list(reversed(loaded.trials_page(limit=limit, descending=True, states=wanted)))
    else:
        trials = loaded.trials_page(limit=limit, order_by=order_by, states=wanted)
    if as_json:
        click.echo(json.dumps([trial_to_dict(t) for t in trials], indent=2))
        return
    table = Table(title=f"study {escape(loaded.name)} ({loaded.status.value}): {len(trials)} trials shown")
    for column in ("#", "state", *loaded.objectives, "budget", "seed", "node", "finished", "architecture"):
        table.add_column(escape(column))
    for trial in trials:
        values = [_fmt_value(trial.values.get(n) if trial.values else None) for n in loaded.objectives]
        arch = " ".join(str(v) for _, v in trial.arch.decisions)
        table.add_row(
            str(trial.number),
            trial.shown_state,
            *values,
            _fmt_value(trial.budget),
            str(trial.seed),
            escape(trial.node or "-"),
            _fmt_time(trial.finished_at),
            escape(arch),
        )
    console.print(table)
