"""``nas search CONFIG``: run or resume a search on Ray, every result in the store."""

from __future__ import annotations

import os
import shlex
import sys

import click
from rich.console import Console
from rich.markup import escape

from nas.cli.options import storage_option
from nas.cli.root import main


@main.command("search")
@click.argument("config_path", metavar="CONFIG", type=click.Path(dir_okay=False))
@storage_option("then the config's storage:")
@click.option("--name", default=None, help="Study name (default: the config's name).")
@click.option(
    "--address",
    default=None,
    help="Ray cluster address ('auto' or host:port; default: $RAY_ADDRESS or a local Ray).",
)
@click.option("--resume", is_flag=True, help="Require an existing study and continue it.")
@click.option("--quiet", is_flag=True, help="No live progress display.")
def search_command(
    config_path: str, storage: str | None, name: str | None, address: str | None, resume: bool, quiet: bool
) -> None:
    """Search architectures as CONFIG describes (a YAML file; see examples/).

    Running the same command again after a crash resumes the study: finished
    trials are kept, interrupted ones are re-queued. Ctrl+C (or SIGTERM) stops
    the running trials, marks the study interrupted and exits with 130 (143).
    """
    from nas.runner import run_search
    from nas.runner.lifecycle import SearchInterrupted

    console = Console()
    try:
        outcome = run_search(
            config_path, storage=storage, name=name, address=address, resume=resume, show_progress=not quiet
        )
    except SearchInterrupted as stopped:
        click.secho(str(stopped), fg="yellow", err=True)
        sys.exit(stopped.exit_code)
    counts = ", ".join(f"{n} {state.lower()}" for state, n in outcome.counts.items() if n)
    console.print(
        f"[bold]{escape(outcome.study)}[/bold]: {outcome.finished} finished trials ({counts}) "
        f"in {outcome.seconds:.0f} s"
    )
    for trial in outcome.best[:5]:
        values = ", ".join(f"{k} {v:.4g}" for k, v in (trial.values or {}).items())
        console.print(f"  best: trial {trial.number}  {values}")
    if outcome.improvement is not None and outcome.improvement.trials > 1:
        console.print(f"  found: {escape(outcome.improvement.describe())}")
    console.print("next:")
    for line in next_steps(outcome.study, outcome.storage):
        console.print(f"  {escape(line)}", soft_wrap=True)  # never wrapped: pasted as one line


def next_steps(study: str, storage: str) -> list[str]:
    """The commands suggested after a search, ready to paste: they never show a password.

    A masked ``u:***@`` URL would not connect when pasted, so the password is
    left out instead and the line after the commands says where it comes from:
    ``$NAS_STORAGE`` (then no ``--storage`` is needed) or libpq's ``~/.pgpass``.
    """
    from nas.store.url import ENV_VAR, has_password, without_password

    note = None
    if not has_password(storage):
        flag = f" --storage {shlex.quote(storage)}"
    elif os.environ.get(ENV_VAR) == storage:
        flag, note = "", f"(the store and its password come from ${ENV_VAR})"
    else:
        flag = f" --storage {shlex.quote(without_password(storage))}"
        note = (
            "(the password is left out: PostgreSQL reads it from ~/.pgpass or $PGPASSWORD; "
            f"or export {ENV_VAR} with the full URL and drop --storage)"
        )
    name = shlex.quote(study)
    lines = [
        f"nas trials {name}{flag}",
        f"nas dashboard{flag}",
        f"nas export {name} --best --format all --out {shlex.quote(f'exports/{study}')}{flag}",
    ]
    return lines if note is None else [*lines, note]
