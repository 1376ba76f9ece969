"""Parquet shards: the same data as the image folder, one split, bad input refused.

The folders are generated PNGs (``write_folder`` of tests/test_streaming.py);
shards are written from them with the real writer and read with pyarrow,
ending with a real ``nas search`` on a local Ray whose trials stream them.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner
from test_streaming import epoch, search_config, write_folder

import nas
from nas.cli import main
from nas.core import ConfigError, TrialState
from nas.data import Dataset, load_dataset
from nas.data.shards import write_parquet_shards
from nas.data.streaming import StreamingDataset
from nas.runner import run_search

FOLDER = {"name": "image_folder", "image_size": 16}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("images")
    write_folder(root / "train", per_class=70)  # 210 images in 3 classes
    write_folder(root / "test", per_class=4)
    return root


@pytest.fixture(scope="module")
def shards(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shards") / "set"
    written = write_parquet_shards({**FOLDER, "path": str(folder)}, out, rows_per_shard=50, row_group_size=16)
    assert written["train"] == {"rows": 210, "shards": 5} and written["test"] == {"rows": 12, "shards": 1}
    return out


def same_batches(a: list, b: list) -> bool:
    return len(a) == len(b) > 0 and all(
        torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("workers", [0, 2])
def test_shards_give_the_folders_batches_in_memory_and_streamed(
    folder: Path, shards: Path, workers: int
) -> None:
    memory = load_dataset({**FOLDER, "path": str(folder), "streaming": False}, seed=3)
    from_shards = load_dataset({"name": "parquet", "path": str(shards), "streaming": False}, seed=3)
    streamed = load_dataset(
        {"name": "parquet", "path": str(shards), "streaming": True, "loader_workers": workers}, seed=3
    )
    assert isinstance(from_shards, Dataset) and isinstance(streamed, StreamingDataset)
    assert memory.info["split"] == from_shards.info["split"] == streamed.info["split"]
    assert memory.preprocessing == from_shards.preprocessing == streamed.preprocessing
    assert np.array_equal(memory.x_test, from_shards.x_test) and streamed.summary()["test"] == 12
    for split, seed, augment in [("train", 5, True), ("val", None, False)]:
        reference = epoch(memory, split, seed, augment)
        assert same_batches(reference, epoch(from_shards, split, seed, augment))
        assert same_batches(reference, epoch(streamed, split, seed, augment))
    assert len(pickle.dumps(streamed)) < 210 * 3 * 16 * 16 / 4  # shard names and row groups, no pixels


def test_the_validation_split_is_fixed_by_seed_for_every_reader(shards: Path) -> None:
    config = {"name": "parquet", "path": str(shards), "streaming": True}
    first, again = load_dataset(config, seed=1), load_dataset(config, seed=1)
    other = load_dataset(config, seed=2)
    assert np.array_equal(first.val, again.val) and first.info["split"] == again.info["split"]
    assert not np.array_equal(first.val, other.val) and first.info["split"] != other.info["split"]


def test_nas_shards_writes_and_refuses_to_mix(folder: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli"
    result = runner.invoke(
        main, ["shards", str(folder), str(out), "--image-size", "16", "--rows-per-shard", "100"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["train"] == {"rows": 210, "shards": 3}
    assert sorted(p.name for p in out.iterdir())[-1] == "train-00002.parquet"
    again = runner.invoke(main, ["shards", str(folder), str(out)])
    assert again.exit_code == 2 and "exists and is not empty" in again.output


# -- bad input -----------------------------------------------------------------------------------------


def test_bad_shard_directories_are_refused_before_trials(shards: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no train-\\*.parquet shard"):
        load_dataset({"name": "parquet", "path": str(tmp_path / "empty")})
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    pq.write_table(pa.table({"image": [b"x"], "label": [0]}), foreign / "train-00000.parquet")
    with pytest.raises(ConfigError, match=r"lacks \['index'\]"):
        load_dataset({"name": "parquet", "path": str(foreign)})
    # a shard of other classes (a different folder) in the same directory
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for path in sorted(shards.glob("*.parquet")):
        (mixed / path.name).write_bytes(path.read_bytes())
    other = write_folder(tmp_path / "other", per_class=3, classes=2)
    write_parquet_shards({**FOLDER, "path": str(other)}, tmp_path / "o")
    (mixed / "train-00009.parquet").write_bytes((tmp_path / "o" / "train-00000.parquet").read_bytes())
    with pytest.raises(
        ConfigError, match=r"train-00009.parquet differs from train-00000.parquet \(train-00009.parquet lacks"
    ):
        load_dataset({"name": "parquet", "path": str(mixed)})
    (mixed / "train-00000.parquet").write_bytes(b"PAR1 not parquet")
    with pytest.raises(ConfigError, match="cannot read parquet shard .*train-00000"):
        load_dataset({"name": "parquet", "path": str(mixed)})


def test_the_writer_checks_the_folder_like_a_search(tmp_path: Path) -> None:
    from PIL import Image

    root = write_folder(tmp_path / "images", per_class=4, classes=2)
    Image.new("RGB", (20, 12)).save(root / "class0" / "wide.png")
    with pytest.raises(ConfigError, match="mixes 2 image sizes"):
        write_parquet_shards({"name": "image_folder", "path": str(root)}, tmp_path / "a")
    (root / "class1" / "broken.png").write_bytes(b"not an image")
    with pytest.raises(ConfigError, match="cannot read image .*broken.png"):
        write_parquet_shards({**FOLDER, "path": str(root)}, tmp_path / "b")
    written = write_parquet_shards({**FOLDER, "path": str(root), "on_error": "skip"}, tmp_path / "c")
    assert written["skipped"]["count"] == 1 and written["train"]["rows"] == 9
    with pytest.raises(ConfigError, match="rows_per_shard=0"):
        write_parquet_shards({**FOLDER, "path": str(root)}, tmp_path / "d", rows_per_shard=0)


@pytest.mark.ray
@pytest.mark.slow
def test_a_search_streams_shards_to_every_trial_with_one_split(
    local_ray, shards: Path, tmp_path: Path
) -> None:
    config = search_config(shards, "ray-data")
    config["dataset"] = {"name": "parquet", "path": str(shards), "streaming": True, "loader_workers": 1}
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    outcome = run_search(config, storage=url, show_progress=False)
    study = nas.load_study("ray-data", storage=url)
    trials = study.trials()
    assert outcome.finished == 2 and {t.state for t in trials} == {TrialState.COMPLETE}
    expected = load_dataset({"name": "parquet", "path": str(shards), "streaming": True}, seed=0).info["split"]
    assert {str(t.user_attrs["dataset"]["split"]) for t in trials} == {str(expected)}
    assert "dataset.streaming" not in study.comparability  # how data is read is not what it is
