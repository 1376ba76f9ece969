"""Parquet (and tar) shards and the Ray Data reader: the same data as the image folder, one split, bad input refused.

The folders are generated PNGs (``write_folder`` of tests/test_streaming.py);
shards are written from them with the real writer and read with pyarrow; the
Ray Data tests run ``ray.data.read_parquet`` on a local Ray, ending with a
real ``nas search`` on digits shards whose trials read through Ray Data.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
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
from nas.data.shards import COLUMNS, ParquetRows, write_parquet_shards
from nas.data.streaming import StreamingDataset
from nas.data.tar_shards import TarRows, write_tar_shards
from nas.runner import run_search
from nas.settings import load_config

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


@pytest.fixture(scope="module")
def tars(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tars") / "set"
    written = write_tar_shards({**FOLDER, "path": str(folder)}, out, rows_per_shard=50)
    assert written["train"] == {"rows": 210, "shards": 5} and written["test"] == {"rows": 12, "shards": 1}
    return out


def same_batches(a: list, b: list) -> bool:
    return len(a) == len(b) > 0 and all(
        torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("name", ["parquet", "webdataset"])
def test_shards_give_the_folders_batches_in_memory_and_streamed(
    folder: Path, shards: Path, tars: Path, name: str, workers: int
) -> None:
    path = str(shards if name == "parquet" else tars)
    memory = load_dataset({**FOLDER, "path": str(folder), "streaming": False}, seed=3)
    from_shards = load_dataset({"name": name, "path": path, "streaming": False}, seed=3)
    streamed = load_dataset(
        {"name": name, "path": path, "streaming": True, "loader_workers": workers}, seed=3
    )
    assert isinstance(from_shards, Dataset) and isinstance(streamed, StreamingDataset)
    assert isinstance(streamed.source, ParquetRows if name == "parquet" else TarRows)
    assert memory.info["split"] == from_shards.info["split"] == streamed.info["split"]
    assert memory.preprocessing == from_shards.preprocessing == streamed.preprocessing
    assert np.array_equal(memory.x_test, from_shards.x_test) and streamed.summary()["test"] == 12
    for split, seed, augment in [("train", 5, True), ("val", None, False)]:
        reference = epoch(memory, split, seed, augment)
        assert same_batches(reference, epoch(from_shards, split, seed, augment))
        assert same_batches(reference, epoch(streamed, split, seed, augment))
    assert len(pickle.dumps(streamed)) < 210 * 3 * 16 * 16 / 4  # shard names and row offsets, no pixels


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


# -- the Ray Data reader ---------------------------------------------------------------------------


def test_reader_is_checked_in_the_config() -> None:
    with pytest.raises(ConfigError, match="(?s)'reader': 'spark'.*'torch' or 'ray'"):
        load_dataset({"name": "parquet", "path": "x", "reader": "spark"})
    with pytest.raises(ConfigError, match="contradicts streaming: false"):
        load_dataset({"name": "parquet", "path": "x", "reader": "ray", "streaming": False})
    with pytest.raises(ConfigError, match="'reader' is not used by dataset 'npy'; it applies to: parquet"):
        load_dataset({"name": "npy", "path": "x", "reader": "ray"})
    config = search_config(Path("x"), "r")
    config["dataset"] = {"name": "parquet", "path": "x", "reader": "ray", "loader_workers": 2}
    plan = load_config(config)
    assert plan.trial_bundles == [{"CPU": 1.0, "GPU": 0.0}, {"CPU": 2.0}]
    assert plan.per_trial == {"CPU": 3.0, "GPU": 0.0}
    with pytest.raises(ConfigError, match="reader: ray with resources.workers=2"):
        load_config({**config, "resources": {"workers": 2}})


def test_reader_ray_falls_back_to_dataloader_workers_without_ray(shards: Path) -> None:
    """Where Ray is not running, reader: ray reads the torch reader's batches (checked in a fresh
    process: this one may hold the local Ray of other tests)."""
    from nas.runner.ray_data import with_ray_reader

    script = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
import ray
from test_shards import same_batches
from test_streaming import epoch
from nas.data import load_dataset
from nas.runner.ray_data import with_ray_reader
assert not ray.is_initialized()
config = {{"name": "parquet", "path": {str(shards)!r}, "loader_workers": 0}}
plain = load_dataset({{**config, "streaming": True}}, seed=0)
wrapped = with_ray_reader(load_dataset({{**config, "reader": "ray"}}, seed=0))
print("same" if same_batches(epoch(plain, "train", 1, True), epoch(wrapped, "train", 1, True)) else "differ")
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "same"
    config = {"name": "parquet", "path": str(shards), "loader_workers": 0}
    with pytest.raises(ConfigError, match="held in memory"):
        with_ray_reader(load_dataset({**config, "streaming": False}, seed=0))


def test_a_block_without_rows_of_the_split_prepares_to_an_empty_batch_of_its_layout(shards: Path) -> None:
    """Ray Data hands the task whole row groups; one holding none of the split's rows gives 0 rows, same layout."""
    from nas.runner.ray_data import _prepare

    data = load_dataset({"name": "parquet", "path": str(shards), "streaming": True}, seed=3)
    table = pq.read_table(data.source.files[0], columns=list(COLUMNS))
    block = {name: table.column(name).to_numpy(zero_copy_only=False) for name in COLUMNS}
    options = {
        "size": data.source.size,
        "mode": data.source.mode,
        "scale": data.scale,
        "mean": data.mean,
        "std": data.std,
        "augment_seed": None,
    }
    some = _prepare(block, data.val, **options)
    none = _prepare(block, np.setdiff1d(data.val, block["index"]), **options)
    assert len(some["y"]) == np.isin(block["index"], data.val).sum() > 0
    assert none["x"].shape == (0, *some["x"].shape[1:]) and none["y"].shape == (0,)
    assert (none["x"].dtype, none["y"].dtype) == (some["x"].dtype, some["y"].dtype) == (np.float32, np.int64)


@pytest.mark.ray
def test_ray_data_reads_the_same_split_and_images(local_ray, folder: Path, shards: Path) -> None:
    from nas.runner.ray_data import with_ray_reader

    memory = load_dataset({**FOLDER, "path": str(folder), "streaming": False}, seed=3)
    data = with_ray_reader(load_dataset({"name": "parquet", "path": str(shards), "reader": "ray"}, seed=3))
    assert data.info["split"] == memory.info["split"]
    # validation: batch for batch the in-memory split
    assert same_batches(epoch(memory, "val", None, False), epoch(data, "val", None, False))
    # training: the same images and labels, in a seeded order
    batches = epoch(data, "train", 5, False)
    x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    assert len(y) == len(memory.y_train) and not torch.equal(y, torch.from_numpy(memory.y_train))
    rows = sorted((tuple(v.tolist()), int(label)) for v, label in zip(x.flatten(1), y, strict=True))
    expected = sorted(
        (tuple(v.tolist()), int(label))
        for v, label in zip(torch.from_numpy(memory.x_train).flatten(1), memory.y_train, strict=True)
    )
    assert rows == expected
    # an epoch (order and augmentation) is a function of the trial's seed
    assert same_batches(epoch(data, "train", 7, True), epoch(data, "train", 7, True))
    assert not same_batches(epoch(data, "train", 7, True), epoch(data, "train", 8, True))


def write_digits_folder(root: Path) -> Path:
    """scikit-learn's digits as 8x8 greyscale PNGs: ``train/<digit>/`` and a fixed 20 % ``test/<digit>/``."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images * (255 / 16)).round().astype(np.uint8)
    for n, (image, label) in enumerate(zip(images, digits.target, strict=True)):
        split = "test" if n % 5 == 0 else "train"
        (root / split / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, mode="L").save(root / split / str(label) / f"{n:04d}.png")
    return root


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(900)  # the hang this guards against: Ray Data tasks waiting for CPUs trials hold
def test_a_search_on_digits_shards_reads_through_ray_data(local_ray, tmp_path: Path) -> None:
    folder = write_digits_folder(tmp_path / "digits")
    out = tmp_path / "shards"
    result = CliRunner().invoke(main, ["shards", str(folder), str(out), "--rows-per-shard", "400"])
    assert result.exit_code == 0, result.output
    dataset = {"name": "parquet", "path": str(out), "reader": "ray", "loader_workers": 1, "limit": 200}
    config = search_config(out, "ray-data")
    config["dataset"] = dataset
    config["budget"] = {"trials": 2, "concurrent": 2}
    config["evaluator"]["epochs"] = 1  # each Ray Data epoch starts its task workers: minutes on 2 cores
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    outcome = run_search(config, storage=url, show_progress=False)
    study = nas.load_study("ray-data", storage=url)
    trials = study.trials()
    assert outcome.finished == 2 and {t.state for t in trials} == {TrialState.COMPLETE}
    assert all(t.values for t in trials)
    expected = load_dataset(dataset, seed=0).info["split"]
    assert {str(t.user_attrs["dataset"]["split"]) for t in trials} == {str(expected)}
    assert "dataset.reader" not in study.comparability  # how data is read is not what it is
