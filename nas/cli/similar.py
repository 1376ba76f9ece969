"""``nas similar``: the stored architectures closest to a trial's, with their results.

The query runs on the read-only store (:func:`nas.store.open_readonly`), so it
can watch a running search; the WL index it builds is cached outside the
store (see :mod:`nas.retrieval.similar`). Heavy imports stay inside the
command so ``nas --help`` stays fast.
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


@main.command("similar")
@click.argument("study")
@click.argument("trial", type=int)
@click.option("--k", "k", type=int, default=10, show_default=True, help="Trials to list, the query included.")
@click.option("--all-studies", is_flag=True, help="Search every study of the same space, not only STUDY.")
@storage_option()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def similar_command(
    study: str, trial: int, k: int, all_studies: bool, storage: str | None, as_json: bool
) -> None:
    """List the trials whose architectures are closest to trial TRIAL of STUDY.

    Closeness is the normalised Weisfeiler-Lehman kernel on the architecture
    graphs (1: the same labelled sub-trees, 0: none shared); the query is listed first.
    """
    from nas.retrieval import find_similar, match_to_dict
    from nas.store import open_readonly

    with open_readonly(storage) as store:
        matches = find_similar(store, study, trial, k=k, all_studies=all_studies)
        objectives = list(store.get_study(study).objectives)
    if as_json:
        click.echo(json.dumps([match_to_dict(m) for m in matches], indent=2))
        return
    scope = "all studies of its space" if all_studies else f"study {study}"
    table = Table(
        title=f"{len(matches)} trials similar to trial {trial} of {escape(study)} ({escape(scope)})"
    )
    for column in ("similarity", "study", "#", "state", *objectives, "architecture"):
        table.add_column(escape(column))
    for match in matches:
        values = match.trial.values or {}
        table.add_row(
            f"{match.similarity:.4f}",
            escape(match.study),
            str(match.trial.number),
            match.trial.state.value,
            *("-" if values.get(n) is None else f"{values[n]:.6g}" for n in objectives),
            escape(" ".join(str(v) for _, v in match.trial.arch.decisions)),
        )
    console.print(table)
