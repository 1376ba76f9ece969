"""``nas spaces``, ``nas show-arch`` and ``nas demo``: look at the search spaces."""

from __future__ import annotations

import time

import click
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nas.cli.root import main
from nas.core import Architecture, ConfigError, SearchSpace

console = Console()


def parse_input_shape(text: str) -> tuple[int, int, int]:
    """``"3,32,32"`` -> (3, 32, 32), with a clear error for anything else."""
    try:
        dims = tuple(int(part) for part in text.split(","))
    except ValueError:
        dims = ()
    if len(dims) != 3 or min(dims) < 1:
        raise ConfigError(
            f"--input-shape {text!r} is not allowed; expected C,H,W positive integers, e.g. 3,32,32"
        )
    return dims  # type: ignore[return-value]


def parse_options(pairs: tuple[str, ...]) -> dict[str, object]:
    """``("channels=8", "cells=2")`` -> {"channels": 8, "cells": 2} (values read as YAML scalars)."""
    options: dict[str, object] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ConfigError(f"space option {pair!r} is not allowed; expected NAME=VALUE, e.g. channels=8")
        options[name] = yaml.safe_load(value)
    return options


_option = click.option(
    "-o", "--option", "options", multiple=True, metavar="NAME=VALUE", help="Space option, e.g. -o channels=8."
)


def _space(name: str, options: tuple[str, ...]) -> SearchSpace:
    from search_spaces import get_space

    return get_space(name, **parse_options(options))


def _parse_arch(space: SearchSpace, text: str) -> Architecture:
    return space.from_json(text) if text.lstrip().startswith("{") else space.parse(text)


@main.command("spaces")
def spaces_command() -> None:
    """List the search spaces with their sizes."""
    from search_spaces import get_space, list_spaces

    table = Table(title="Search spaces")
    table.add_column("space")
    table.add_column("decisions", justify="right")
    table.add_column("architectures", justify="right")
    table.add_column("default options")
    table.add_column("about")
    for name in list_spaces():
        space = get_space(name)
        doc = (type(space).__doc__ or "").strip().splitlines()[0]
        table.add_row(name, str(len(space.choices())), _size_text(space.size()), str(space.options), doc)
    console.print(table)


@main.command("show-arch")
@click.argument("space_name", metavar="SPACE")
@click.argument("text", metavar="ARCH")
@click.option("--input-shape", default="3,32,32", show_default=True, help="C,H,W of the input.")
@click.option("--num-classes", default=10, show_default=True, type=int)
@_option
def show_arch_command(
    space_name: str, text: str, input_shape: str, num_classes: int, options: tuple[str, ...]
) -> None:
    """Show an architecture: decisions, params, FLOPs and its graph.

    ARCH is the space's string form (e.g. a NAS-Bench-201 string or a DARTS
    Genotype(...)) or the architecture's JSON.
    """
    space = _space(space_name, options)
    arch = _parse_arch(space, text)
    shape = parse_input_shape(input_shape)
    stats = space.stats(arch, input_shape=shape, num_classes=num_classes)  # type: ignore[attr-defined]
    console.print(f"[bold]{space.name}[/bold] {escape(space.format(arch))}")
    console.print(f"exact key {arch.key}   canonical key {space.canonical_key(arch)}")
    console.print(f"params {stats.params / 1e6:.6f} M   FLOPs {stats.flops / 1e6:.3f} M   input {shape}")
    table = Table(title="decisions")
    table.add_column("decision")
    table.add_column("value")
    for name, value in arch.decisions:
        table.add_row(name, str(value))
    console.print(table)
    graph = space.to_graph(arch)
    console.print("[bold]graph[/bold]")
    for source, target, data in graph.edges(data=True):
        label = data.get("op", "")
        console.print(escape(f"  {source} -> {target}" + (f"  {label}" if label else "")))


@main.command("demo")
@click.option("--samples", default=3, show_default=True, help="Random architectures per space.")
@click.option("--seed", default=0, show_default=True)
def demo_command(samples: int, seed: int) -> None:
    """A short tour: sample, mutate, build and run architectures of every space on digits-sized input."""
    import numpy as np
    import torch

    from search_spaces import get_space, list_spaces

    rng = np.random.default_rng(seed)
    table = Table(title=f"{samples} random architectures per space, 1x8x8 input, 10 classes")
    for column in ("space", "architecture", "params", "FLOPs", "forward ms"):
        table.add_column(column, overflow="fold")
    for name in list_spaces():
        space = get_space(name)
        for _ in range(samples):
            arch = space.mutate(space.sample(rng), rng)
            model = space.build(arch, num_classes=10, input_shape=(1, 8, 8)).eval()
            stats = space.stats(arch, input_shape=(1, 8, 8))  # type: ignore[attr-defined]
            batch = torch.zeros(4, 1, 8, 8)
            with torch.no_grad():
                model(batch)  # warm-up: the first call pays for allocation
                start = time.perf_counter()
                model(batch)
            elapsed = (time.perf_counter() - start) * 1e3
            text = space.format(arch)
            table.add_row(
                name,
                text if len(text) < 90 else text[:87] + "...",
                f"{stats.params:,}",
                f"{stats.flops:,}",
                f"{elapsed:.1f}",
            )
    console.print(table)


def _size_text(size: int) -> str:
    return f"{size:,}" if size < 10**9 else f"{size:.3e}"
