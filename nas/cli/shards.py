"""``nas shards``: write an image folder as shards of encoded images + labels.

``--format parquet`` (default) for ``dataset: parquet``, ``--format tar``
(WebDataset-style tar shards) for ``dataset: webdataset``.

The folder is checked file by file first, as a search would check it, so
shards never hold an unreadable image (``--skip-unreadable`` leaves such
files out and counts them). Heavy imports stay inside the command so
``nas --help`` stays fast.
"""

from __future__ import annotations

import json

import click

from nas.cli.root import main


@main.command("shards")
@click.argument("folder", type=click.Path(file_okay=False))
@click.argument("out", type=click.Path())
@click.option("--image-size", type=int, multiple=True, help="Side, or height and width (repeat): the resize.")
@click.option("--grayscale", is_flag=True, help="Prepare the images as one channel (L).")
@click.option(
    "--skip-unreadable", is_flag=True, help="Leave unreadable files out (counted) instead of failing."
)
@click.option(
    "--format",
    "shard_format",
    type=click.Choice(["parquet", "tar"]),
    default="parquet",
    show_default=True,
    help="Parquet files (dataset: parquet) or WebDataset tar files (dataset: webdataset).",
)
@click.option("--rows-per-shard", type=int, default=4096, show_default=True)
@click.option("--row-group-size", type=int, help="Rows per Parquet row group (parquet only)  [default: 64]")
def shards_command(
    folder: str,
    out: str,
    image_size: tuple[int, ...],
    grayscale: bool,
    skip_unreadable: bool,
    shard_format: str,
    rows_per_shard: int,
    row_group_size: int | None,
) -> None:
    """Write the image folder FOLDER (one sub-folder per class) as train-/test-NNNNN shards in OUT."""
    from nas.core.errors import ConfigError
    from nas.data.shards import DEFAULT_ROW_GROUP_SIZE, write_parquet_shards
    from nas.data.tar_shards import write_tar_shards

    config: dict[str, object] = {"name": "image_folder", "path": folder}
    if image_size:
        config["image_size"] = image_size[0] if len(image_size) == 1 else tuple(image_size)
    if grayscale:
        config["grayscale"] = True
    if skip_unreadable:
        config["on_error"] = "skip"
    if shard_format == "tar":
        if row_group_size is not None:
            raise ConfigError("--row-group-size applies to --format parquet; tar shards have no row groups")
        written = write_tar_shards(config, out, rows_per_shard=rows_per_shard)
    else:
        written = write_parquet_shards(
            config,
            out,
            rows_per_shard=rows_per_shard,
            row_group_size=DEFAULT_ROW_GROUP_SIZE if row_group_size is None else row_group_size,
        )
    click.echo(json.dumps(written, indent=2))
