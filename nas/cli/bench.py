"""``nas bench``: measure search strategies on tabular benchmarks.

``nas bench nb201`` runs a strategy over several seeds on the NAS-Bench-201
table and prints, per checkpoint of the query count, the mean and spread of
the incumbent's search metric and of its test metric (looked up after the
search). Other modules add subcommands to the :func:`bench` group.
"""

from __future__ import annotations

import json
import math
from typing import Any

import click
import yaml

from nas.cli.root import main
from nas.core.errors import ConfigError


@main.group("bench")
def bench() -> None:
    """Measure strategies and predictors on tabular benchmarks (no training)."""


def _objectives(values: tuple[str, ...]) -> dict[str, str] | None:
    """``val_accuracy:max,latency_ms:min`` (or repeated options); direction defaults by name."""
    if not values:
        return None
    result: dict[str, str] = {}
    for item in ",".join(values).split(","):
        item = item.strip()
        if not item:
            continue
        name, _, direction = item.partition(":")
        result[name.strip()] = direction.strip() or ("min" if name.strip() == "latency_ms" else "max")
    return result


def _options(values: tuple[str, ...], what: str) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; values are parsed as YAML scalars (numbers, booleans, strings)."""
    result: dict[str, Any] = {}
    for item in values:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{what} {item!r} is not KEY=VALUE, e.g. population_size=20")
        try:
            result[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{what} {item!r}: value {text!r} is not a valid scalar") from exc
    return result


def _fmt(mean: float, std: float, digits: int = 2) -> str:
    if math.isnan(mean):
        return "-"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


@bench.command("nb201")
@click.option("--strategy", default="random", show_default=True, help="Registered strategy name.")
@click.option("--queries", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--seeds", type=click.IntRange(min=1), default=5, show_default=True, help="Seeds 0..S-1.")
@click.option("--metric", default="cifar10-val", show_default=True, help="Search column (never a -test one).")
@click.option("--table", type=click.Path(dir_okay=False), default=None, help="CSV with an 'arch' column.")
@click.option(
    "--objectives",
    multiple=True,
    help="e.g. 'val_accuracy:max,latency_ms:min' (default: val_accuracy:max).",
)
@click.option("--device", default=None, help="Latency column, e.g. pixel3 (default when latency is used).")
@click.option("--latency-table", type=click.Path(dir_okay=False), default=None)
@click.option("--constraint", "constraints", multiple=True, help="e.g. 'latency_ms <= 20' (repeatable).")
@click.option("--predictor", default=None, help="Registered predictor for --strategy predictor.")
@click.option("--option", "options", multiple=True, help="Strategy option KEY=VALUE (repeatable).")
@click.option("--concurrency", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--checkpoints", default=None, help="Comma-separated query counts (default 10,20,50,...).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output incl. incumbent archs.")
def nb201(
    strategy: str,
    queries: int,
    seeds: int,
    metric: str,
    table: str | None,
    objectives: tuple[str, ...],
    device: str | None,
    latency_table: str | None,
    constraints: tuple[str, ...],
    predictor: str | None,
    options: tuple[str, ...],
    concurrency: int,
    checkpoints: str | None,
    as_json: bool,
) -> None:
    """Run STRATEGY on the NAS-Bench-201 table over seeds; report incumbents per checkpoint."""
    from nas.bench import run_nb201

    points = None
    if checkpoints:
        try:
            points = [int(x) for x in checkpoints.split(",") if x.strip()]
        except ValueError:
            raise ConfigError(f"--checkpoints {checkpoints!r} must be comma-separated integers") from None
    result = run_nb201(
        strategy,
        queries,
        range(seeds),
        metric=metric,
        table=table,
        objectives=_objectives(objectives),
        constraints=list(constraints) or None,
        device=device,
        latency_table=latency_table,
        predictor=predictor,
        strategy_options=_options(options, "--option"),
        concurrency=concurrency,
        checkpoints=points,
    )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, allow_nan=True))
        return
    _print_table(result)


def _print_table(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    multi = len(result.objectives) > 1
    title = (
        f"nb201 · {result.strategy} · {len(result.runs)} seed(s) · search {result.metric} "
        f"(table best {result.best_value:.3f})"
    )
    table = Table(title=title)
    table.add_column("queries", justify="right")
    table.add_column(f"incumbent {result.metric}", justify="right")
    table.add_column(f"its {result.test_metric or 'test'}", justify="right")
    table.add_column("found best", justify="right")
    if multi:
        table.add_column("hypervolume / true", justify="right")
    for row in result.summary():
        cells = [
            str(row["queries"]),
            _fmt(row["search_mean"], row["search_std"]),
            _fmt(row["test_mean"], row["test_std"]),
            f"{100 * row['found_best']:.0f}%",
        ]
        if multi:
            cells.append(
                _fmt(100 * row["hypervolume_ratio_mean"], 100 * row["hypervolume_ratio_std"], 1) + " %"
            )
        table.add_row(*cells)
    console = Console()
    console.print(table)
    if result.constraints:
        console.print("constraints: " + ", ".join(str(c) for c in result.constraints))
