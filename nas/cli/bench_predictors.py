"""``nas bench predictors`` and ``nas bench proxies``: how well do we rank without training?

``predictors`` fits each predictor on 50/100/500 NAS-Bench-201 cells (several
seeds) and prints Kendall tau, Spearman rho and top-1% precision on the rest.
``proxies`` scores the ~725 NAS-Bench-Suite-Zero cells with our zero-cost
proxies (or prints NASLib's stored scores) and prints each proxy's Spearman
rho against a chosen metric, their agreement with NASLib's, and rank votes.
Both call the same functions as ``benchmarks/predictor_ranking.py`` and
``benchmarks/proxies.py``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import click

from nas.cli.bench import _fmt, _options, bench
from nas.core.errors import ConfigError
from nas.core.leakage import refuse_test_column


def _names(text: str, what: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise ConfigError(f"{what} {text!r} names nothing; give a comma-separated list")
    return names


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(t) for t in _names(text, what)]
    except ValueError:
        raise ConfigError(f"{what} {text!r} must be comma-separated integers") from None


def _predictor_options(values: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``NAME.KEY=VALUE`` pairs -> ``{NAME: {KEY: VALUE}}``."""
    result: dict[str, dict[str, Any]] = {}
    for key, value in _options(values, "--option").items():
        name, dot, option = key.partition(".")
        if not dot or not name or not option:
            raise ConfigError(f"--option {key!r} must be PREDICTOR.KEY=VALUE, e.g. gbt.n_estimators=100")
        result.setdefault(name, {})[option] = value
    return result


@bench.command("predictors")
@click.option("--predictors", "names", default="gbt,rf,mlp_ensemble,gp", show_default=True)
@click.option(
    "--metric",
    default="cifar10-val",
    show_default=True,
    help="Column of the NAS-Bench-201 table (never -test).",
)
@click.option(
    "--table", type=click.Path(dir_okay=False), default=None, help="Default: the NB201 12-epoch table."
)
@click.option("--train-sizes", default="50,100,500", show_default=True)
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True, help="Seeds 0..S-1.")
@click.option(
    "--test-limit", type=click.IntRange(min=2), default=None, help="Score a random subset of the rest."
)
@click.option("--encoding", default="auto", show_default=True, help="auto, path, onehot, both.")
@click.option(
    "--proxy-features",
    default=None,
    help="Zero-cost proxies added as features, e.g. jacob_cov,synflow (scores every cell on a "
    "reduced network: slow).",
)
@click.option(
    "--proxy-cache", type=click.Path(dir_okay=False), default=None, help=".npz cache of proxy scores."
)
@click.option("--proxy-channels", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--proxy-cells", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--proxy-seeds", type=click.IntRange(min=1), default=3, show_default=True, help="Inits averaged."
)
@click.option("--option", "options", multiple=True, help="PREDICTOR.KEY=VALUE (repeatable).")
@click.option("--json", "as_json", is_flag=True)
def predictors_command(
    names: str,
    metric: str,
    table: str | None,
    train_sizes: str,
    seeds: int,
    test_limit: int | None,
    encoding: str,
    proxy_features: str | None,
    proxy_channels: int,
    proxy_cells: int,
    proxy_seeds: int,
    proxy_cache: str | None,
    options: tuple[str, ...],
    as_json: bool,
) -> None:
    """Rank correlation of each predictor trained on 50/100/500 NAS-Bench-201 cells."""
    refuse_test_column(metric, "--metric")  # the predictors' training target
    from nas.data.paths import NB201_TABLE, data_path
    from nas.data.tables import Table
    from predictors.evaluation import predictor_study, summarise
    from search_spaces import get_space

    space = get_space("nb201")
    loaded = Table.load(table or data_path(NB201_TABLE), space)
    targets = loaded.column(metric)
    chosen = _names(names, "--predictors")
    per_predictor = _predictor_options(options)
    if proxy_features:
        extra = _proxy_features(
            loaded.archs,
            _names(proxy_features, "--proxy-features"),
            proxy_channels,
            proxy_cells,
            proxy_seeds,
            proxy_cache,
        )
        for name in chosen:
            per_predictor.setdefault(name, {})["extra_features"] = extra
    if encoding != "auto":
        for name in chosen:
            per_predictor.setdefault(name, {})["encoding"] = encoding
    rows = predictor_study(
        space,
        loaded.archs,
        targets,
        chosen,
        train_sizes=_ints(train_sizes, "--train-sizes"),
        seeds=range(seeds),
        options=per_predictor,
        test_limit=test_limit,
    )
    summary = summarise(rows)
    if as_json:
        click.echo(json.dumps({"rows": [asdict(r) for r in rows], "summary": summary}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table as RichTable

    out = RichTable(title=f"predictors on nb201 · {metric} · {seeds} seed(s)")
    for column in ("predictor", "train", "Kendall τ", "Spearman ρ", "top-1%", "seconds"):
        out.add_column(column, justify="left" if column == "predictor" else "right")
    for entry in summary:
        out.add_row(
            entry["predictor"],
            str(entry["train_size"]),
            _fmt(entry["kendall_tau"], entry["kendall_tau_std"], 3),
            _fmt(entry["spearman"], entry["spearman_std"], 3),
            _fmt(entry["top_k"], entry["top_k_std"], 2),
            f"{entry['seconds']:.1f}",
        )
    Console().print(out)


def _proxy_features(
    archs: Any, proxies: list[str], channels: int, cells: int, seeds: int, cache: str | None
) -> Any:
    """Proxy features of every cell, scored on a reduced nb201 network with a CIFAR-10 batch of 32."""
    from predictors.proxy_table import dataset_proxy_features
    from search_spaces import get_space

    reduced = get_space("nb201", channels=channels, cells=cells)
    return dataset_proxy_features(reduced, archs, proxies, seeds=range(seeds), cache=cache)


@bench.command("proxies")
@click.option(
    "--proxies",
    "names",
    default="synflow,snip,grad_norm,jacob_cov,nwot,fisher,params,flops",
    show_default=True,
)
@click.option(
    "--metric",
    default="val_accuracy",
    show_default=True,
    help="val_accuracy (200 epochs, from the sample) or a NAS-Bench-201 table column such as cifar10-val "
    "(never a -test one).",
)
@click.option(
    "--source",
    type=click.Choice(["ours", "naslib"]),
    default="ours",
    show_default=True,
    help="Compute the proxies here, or use NASLib's stored scores.",
)
@click.option("--dataset", default="cifar10", show_default=True, help="Mini-batch source (nas.data name).")
@click.option("--batch-size", type=click.IntRange(min=2), default=64, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Network init and batch seed.")
@click.option(
    "--limit", type=click.IntRange(min=3), default=None, help="Only the first N cells (quick look)."
)
@click.option("--vote", default="synflow,jacob_cov,nwot", show_default=True, help="Proxies of the rank vote.")
@click.option(
    "--proxy-cache", type=click.Path(dir_okay=False), default=None, help=".npz cache of our scores."
)
@click.option("--json", "as_json", is_flag=True)
def proxies_command(
    names: str,
    metric: str,
    source: str,
    dataset: str,
    batch_size: int,
    seed: int,
    limit: int | None,
    vote: str,
    proxy_cache: str | None,
    as_json: bool,
) -> None:
    """Spearman rho of each zero-cost proxy against METRIC on the NAS-Bench-Suite-Zero cells."""
    refuse_test_column(metric, "--metric")  # proxies are chosen by this ranking
    import numpy as np

    from nas.data.paths import NB201_TABLE, ZERO_COST_NB201, data_path
    from predictors.evaluation import proxy_study
    from predictors.suite_zero import NASLIB_NAMES, read_zero_cost_nb201
    from search_spaces import get_space

    space = get_space("nb201")
    sample = read_zero_cost_nb201(data_path(ZERO_COST_NB201), space)
    count = len(sample.archs) if limit is None else min(limit, len(sample.archs))
    archs = list(sample.archs[:count])
    if metric == "val_accuracy":
        target = sample.val_accuracy[:count]
    else:
        from nas.data.tables import Table

        table = Table.load(data_path(NB201_TABLE), space)
        target = np.asarray([table.value(a, metric) for a in archs])
    chosen = _names(names, "--proxies")
    naslib = {
        ours: sample.scores[NASLIB_NAMES.get(ours, ours)][:count]
        for ours in chosen
        if NASLIB_NAMES.get(ours, ours) in sample.scores
    }
    if source == "naslib":
        missing = [n for n in chosen if NASLIB_NAMES.get(n, n) not in sample.scores]
        if missing:
            raise ConfigError(f"NASLib's sample has no scores for {missing}; it has {sorted(sample.scores)}")
        scores, reference = naslib, None
    else:
        from predictors.proxy_table import proxy_table
        from predictors.zero_cost import dataset_batch

        x, y, classes = dataset_batch(dataset, batch_size, seed)
        table_scores = proxy_table(
            space, archs, chosen, x, y, seed=seed, num_classes=classes, fallback=-np.inf, cache=proxy_cache
        )
        scores = {name: table_scores[:, at] for at, name in enumerate(chosen)}
        reference = naslib
    votes = {"vote(" + vote + ")": _names(vote, "--vote")}
    rows = proxy_study(scores, target, reference=reference, votes=votes)
    if as_json:
        click.echo(
            json.dumps({"cells": count, "metric": metric, "rows": [asdict(r) for r in rows]}, indent=2)
        )
        return
    from rich.console import Console
    from rich.table import Table as RichTable

    out = RichTable(title=f"zero-cost proxies ({source}) on {count} nb201 cells vs {metric}")
    for column in ("proxy", "Spearman ρ", "Kendall τ", "ρ with NASLib's"):
        out.add_column(column, justify="left" if column == "proxy" else "right")
    for row in rows:
        agreement = "-" if row.agreement is None else f"{row.agreement:.3f}"
        out.add_row(row.proxy, f"{row.spearman:.3f}", f"{row.kendall_tau:.3f}", agreement)
    Console().print(out)
