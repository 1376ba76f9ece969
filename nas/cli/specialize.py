"""``nas specialize STUDY`` and ``nas latency profile STUDY``: per-device sub-networks of an elastic supernet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nas.cli.options import storage_option
from nas.cli.root import main


def _settings_file(path: str | None) -> dict[str, Any] | None:
    """A YAML file holding a ``specialize:`` section (or just its fields, ``targets:`` first)."""
    if path is None:
        return None
    import yaml

    from nas.core.errors import ConfigError

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"specialize config {path} cannot be read: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("specialize"), dict):
        data = data["specialize"]
    if not isinstance(data, dict) or "targets" not in data:
        raise ConfigError(
            f"specialize config {path} holds no targets; expected a specialize: section or a mapping with "
            "targets: [{device: pixel3, max_latency_ms: 20}, ...]"
        )
    return data


@main.command("specialize")
@click.argument("study")
@click.option(
    "--device", default=None, metavar="NAME", help="Target device (a latency-table device, or 'local')."
)
@click.option(
    "--max-latency-ms",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="MS",
    help="Latency budget on --device (predicted, batch 1).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="YAML with a specialize: section (several targets); default the study's own section.",
)
@click.option(
    "--objective",
    type=click.Choice(["accuracy", "pareto"]),
    default=None,
    help="accuracy: most accurate within the budget (evolution); pareto: accuracy and latency (nsga2).",
)
@click.option(
    "--strategy", type=click.Choice(["evolution", "nsga2"]), default=None, help="Override the strategy."
)
@click.option(
    "--candidates", type=click.IntRange(min=2), default=None, help="Sub-networks scored per target."
)
@click.option(
    "--population", "population_size", type=click.IntRange(min=2), default=None, help="Strategy's population."
)
@click.option(
    "--finetune-epochs", type=click.IntRange(min=0), default=None, help="Fine-tune the selected sub-network."
)
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed of the strategies (default 0).")
@click.option("--name", default=None, help="Specialisation study (default: STUDY-specialized).")
@click.option(
    "--supernet-trial", type=click.IntRange(min=0), default=None, help="Supernet trial (default first)."
)
@click.option(
    "--threads", type=click.IntRange(min=1), default=None, help="Torch threads (default resources.cpu)."
)
@storage_option()
@click.option("--quiet", is_flag=True, help="No progress lines.")
def specialize_command(
    study: str,
    device: str | None,
    max_latency_ms: float | None,
    config_path: str | None,
    objective: str | None,
    strategy: str | None,
    candidates: int | None,
    population_size: int | None,
    finetune_epochs: int | None,
    seed: int | None,
    name: str | None,
    supernet_trial: int | None,
    threads: int | None,
    storage: str | None,
    quiet: bool,
) -> None:
    """Pick a sub-network of STUDY's trained elastic supernet for a device and latency budget.

    No retraining: candidates keep the supernet's weights (BatchNorm
    recalibrated); latency is predicted for the device. Each target's
    sub-network is stored with its weights in STUDY-specialized, ready for
    nas export. Running the command again resumes where it stopped.
    """
    from nas.specialize import specialize

    if (device is None) != (max_latency_ms is None):
        raise click.UsageError("--device and --max-latency-ms go together")
    settings = _settings_file(config_path)
    if device is not None:
        settings = {**(settings or {}), "targets": [{"device": device, "max_latency_ms": max_latency_ms}]}
    overrides = {
        key: value
        for key, value in {
            "objective": objective,
            "strategy": strategy,
            "candidates": candidates,
            "population_size": population_size,
            "finetune_epochs": finetune_epochs,
            "seed": seed,
        }.items()
        if value is not None
    }
    console = Console(stderr=True)

    def progress(target: Any, done: int, total: int) -> None:
        if not quiet:
            console.print(f"{escape(target.key)}: {done}/{total} candidates", highlight=False)

    outcome = specialize(
        study,
        storage=storage,
        settings=settings,
        overrides=overrides,
        name=name,
        supernet_trial=supernet_trial,
        progress=progress,
        threads=threads,
    )
    table = Table(title=f"{outcome.study}: from supernet trial {outcome.supernet_trial} of {outcome.source}")
    for column in ("target", "trial", "candidates", "predicted ms", "measured ms", "inherited %", "val %"):
        table.add_column(column, justify="left" if column == "target" else "right")
    for r in outcome.results:
        measured = "-" if r.measured_latency_ms is None else f"{r.measured_latency_ms:.4g}"
        table.add_row(
            escape(r.target.key),
            str(r.trial.number),
            f"{r.candidates}" + (f" ({r.reused} stored)" if r.reused else ""),
            f"{r.predicted_latency_ms:.4g}",
            measured,
            f"{r.inherited_accuracy:.2f}",
            f"{r.val_accuracy:.2f}",
        )
    Console().print(table)
    for r in outcome.results:
        Console().print(
            f"  nas export {outcome.study} --trial {r.trial.number} --out exports/{r.target.device}-{r.target.max_latency_ms:g}ms",
            soft_wrap=True,
        )


@main.group("latency")
def latency_group() -> None:
    """Latency lookup tables of this machine (for nas specialize --device local)."""


@latency_group.command("profile")
@click.argument("study")
@click.option(
    "--repeats", type=click.IntRange(min=1), default=30, show_default=True, help="Timed runs per part."
)
@click.option(
    "--validation",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="Whole networks to calibrate on (and as many to check against).",
)
@click.option("--force", is_flag=True, help="Measure again even if a table is cached.")
@storage_option()
@click.option("--quiet", is_flag=True, help="No progress bar.")
def profile_command(
    study: str, repeats: int, validation: int, force: bool, storage: str | None, quiet: bool
) -> None:
    """Measure STUDY's space block by block with ONNX Runtime on this machine (batch 1, one thread).

    Blocks whose cost depends on the blocks before them (hybrid) are measured
    per context (input width, resolution, own choices). The table is cached
    under $NAS_CACHE_DIR/latency (else ~/.cache/nas/latency), keyed by space
    and its options, input size, classes and machine.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from nas.specialize.profile import profile_study

    bar = Progress(
        TextColumn("measuring"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=Console(stderr=True),
        disable=quiet,
        transient=True,
    )
    task = bar.add_task("", total=None)

    def progress(done: int, total: int, what: str) -> None:
        bar.update(task, completed=done, total=total, description=escape(what))

    with bar:
        model, content = profile_study(
            study, storage=storage, repeats=repeats, validation=validation, force=force, progress=progress
        )
    console = Console()
    console.print(
        f"local latency table of {escape(content['space'])} {content['options']} at input "
        f"{'x'.join(map(str, content['input_shape']))}: {escape(model.source)}",
        soft_wrap=True,
    )
    console.print(
        f"  {content.get('parts_measured', '?')} parts measured"
        + (" (per block context)" if content.get("keyed_by") == "context" else "")
        + f" on {escape(content['machine']['cpu'])}; "
        f"constant {content['constant_ms']:.4g} ms"
    )
    checks = [c for c in content.get("validation", []) if not c.get("calibration")]
    if checks:
        table = Table(title="whole networks: table sum vs measured")
        table.add_column("predicted ms", justify="right")
        table.add_column("measured ms", justify="right")
        table.add_column("error", justify="right")
        for c in checks:
            error = (c["predicted_ms"] - c["measured_ms"]) / c["measured_ms"]
            table.add_row(f"{c['predicted_ms']:.4g}", f"{c['measured_ms']:.4g}", f"{error:+.1%}")
        console.print(table)
