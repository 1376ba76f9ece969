"""``nas export STUDY``: write a trial's model as a deployable bundle (see ``docs/export.md``)."""

from __future__ import annotations

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nas.cli.options import storage_option
from nas.cli.root import main

_FORMAT_CHOICES = ("all", "pytorch", "torchscript", "onnx")


def _input_shape(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[int, int, int] | None:
    if value is None:
        return None
    parts = [p.strip() for p in value.replace("x", ",").split(",")]
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        dims = ()
    if len(dims) != 3 or min(dims) < 1:
        raise click.BadParameter(f"{value!r} is not C,H,W with three positive integers (e.g. 3,32,32)")
    return dims  # type: ignore[return-value]


@main.command("export")
@click.argument("study")
@click.option("--trial", "trial", type=click.IntRange(min=0), default=None, help="Export trial number N.")
@click.option("--best", is_flag=True, help="Export the best COMPLETE trial.")
@click.option(
    "--objective",
    default=None,
    metavar="NAME",
    help="With --best on a multi-objective study: the objective to rank by (else the Pareto set is listed).",
)
@click.option(
    "--format",
    "formats",
    type=click.Choice(_FORMAT_CHOICES, case_sensitive=False),
    multiple=True,
    default=("all",),
    show_default=True,
    help="Formats to write (repeatable); model.pt is always written.",
)
@click.option(
    "--out", "out", required=True, type=click.Path(file_okay=False), help="Bundle directory to create."
)
@storage_option()
@click.option(
    "--retrain",
    "retrain_epochs",
    type=click.IntRange(min=1),
    default=None,
    metavar="EPOCHS",
    help="Retrain the architecture for EPOCHS epochs with the study's settings, even if weights are stored.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    metavar="N",
    help="Retrain data-parallel on N Ray Train workers (default: the study's resources.workers).",
)
@click.option(
    "--address",
    default=None,
    help="Ray cluster address for retraining on several workers ('auto' or host:port; "
    "default: $RAY_ADDRESS or a local Ray).",
)
@click.option(
    "--input-shape",
    callback=_input_shape,
    default=None,
    metavar="C,H,W",
    help="Model input shape (default: the study's dataset).",
)
@click.option(
    "--parity-tolerance",
    type=click.FloatRange(min=0, max=1, min_open=True, max_open=True),
    default=1e-4,
    show_default=True,
    help="Largest max abs logit difference a format may have against PyTorch.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace --out if it holds a previous export bundle and nothing else (once the new one is complete).",
)
@click.option("--quiet", is_flag=True, help="No progress bar while retraining.")
def export_command(
    study: str,
    trial: int | None,
    best: bool,
    objective: str | None,
    formats: tuple[str, ...],
    out: str,
    storage: str | None,
    retrain_epochs: int | None,
    workers: int | None,
    address: str | None,
    input_shape: tuple[int, int, int] | None,
    parity_tolerance: float,
    force: bool,
    quiet: bool,
) -> None:
    """Export a trial of STUDY as a bundle: genotype, PyTorch, TorchScript and ONNX models and a model card.

    Every format is checked against PyTorch on random inputs before the
    bundle appears; a failure leaves nothing behind.
    """
    from nas.export import export_model
    from nas.runner.retraining import RayRetraining

    result = export_model(
        study,
        trial=trial,
        best=best,
        objective=objective,
        formats=formats,
        out=out,
        storage=storage,
        retrain_epochs=retrain_epochs,
        input_shape=input_shape,
        force=force,
        progress=not quiet,
        parity_tolerance=parity_tolerance,
        workers=workers,
        on_workers=RayRetraining(address),
    )
    console = Console()
    card = result.card
    weights = card["weights"]
    ranks = weights.get("workers", 1)
    source = (
        f"retrained {weights['epochs']} epochs" + (f" on {ranks} workers" if ranks > 1 else "")
        if weights["kind"] == "retrained"
        else "stored, sha256 verified"
    )
    test = "n/a" if result.test_accuracy is None else f"{result.test_accuracy:.2f}%"
    console.print(
        f"[bold]{escape(result.study)}[/bold] trial {result.trial} "
        f"({escape(card['architecture']['string'])}) exported to [bold]{escape(str(result.directory))}[/bold]"
    )
    console.print(
        f"  weights: {source}; test accuracy: {test}; params {card['model']['params']:,}; "
        f"FLOPs {card['model']['flops']:,}"
    )
    parity = Table(title="parity with PyTorch", caption=f"allowed: {card['parity']['tolerance']:g}")
    parity.add_column("format")
    parity.add_column("file")
    parity.add_column("max abs diff", justify="right")
    for fmt, diff in result.parity.items():
        parity.add_row(fmt, card["formats"][fmt]["file"], f"{diff:.2e}")
    console.print(parity)
    latency = card["latency"]
    speed = Table(
        title="batch-1 latency", caption=f"{latency['threads']} thread, median of {latency['repeats']}"
    )
    speed.add_column("engine")
    speed.add_column("ms", justify="right")
    for engine, ms in result.latency_ms.items():
        speed.add_row(engine, f"{ms:.3f}")
    console.print(speed)
    target = card.get("specialization")
    if target:
        measured = target.get("measured_latency_ms")
        console.print(
            f"  device {escape(str(target['device']))}: predicted {target['predicted_latency_ms']:.4g} ms "
            f"(budget {target['max_latency_ms']:g} ms)"
            + ("" if measured is None else f", measured {measured:.4g} ms with ONNX Runtime")
        )
    if test == "n/a" and card["test"].get("note"):
        console.print(f"  no test accuracy: {escape(str(card['test']['note']))}")
