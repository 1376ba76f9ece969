"""Streaming datasets: the same batches as in memory, one recorded split, bad input refused early.

The folders are generated in ``tmp_path`` (PNG files written by Pillow); the
search at the end runs a real ``nas search`` on a local Ray with the images
streamed by data-loader workers inside the trials.
"""

from __future__ import annotations

import dataclasses
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import nas
from nas.core import ConfigError, TrialState
from nas.data import Dataset, load_dataset
from nas.data.batching import split_batches
from nas.data.streaming import StreamingDataset
from nas.evaluators.train import TrainEvaluator
from nas.runner import run_search
from search_spaces import get_space


def write_folder(root: Path, per_class: int = 20, classes: int = 3, size: tuple[int, int] = (16, 16)) -> Path:
    """``classes`` class folders of ``per_class`` random RGB PNGs (width x height ``size``) with a class signal."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = root / f"class{c}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 128, size=(size[1], size[0], 3), dtype=np.uint8)
            pixels[:, :, c % 3] += 120  # learnable: the class brightens one channel
            Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    return root


def both(root: Path, seed: int = 3, **options) -> tuple[Dataset, StreamingDataset]:
    config = {"name": "image_folder", "path": str(root), "image_size": 16, **options}
    memory = load_dataset({**config, "streaming": False}, seed=seed)
    streamed = load_dataset({**config, "streaming": True}, seed=seed)
    assert isinstance(memory, Dataset) and isinstance(streamed, StreamingDataset)
    return memory, streamed


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_folder(tmp_path_factory.mktemp("images"))


def epoch(dataset, split: str, seed: int | None, augment: bool) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    return list(split_batches(dataset, split).epoch(8, generator, augment))


@pytest.mark.parametrize("workers", [0, 2])
def test_streaming_and_in_memory_give_the_same_batches(folder: Path, workers: int) -> None:
    memory, streamed = both(folder, loader_workers=workers)
    assert streamed.loader_workers == workers
    assert (memory.mean, memory.std) == (streamed.mean, streamed.std)
    assert memory.preprocessing == streamed.preprocessing
    for split, seed, augment in [("train", 5, True), ("train", 6, False), ("val", None, False)]:
        a, b = epoch(memory, split, seed, augment), epoch(streamed, split, seed, augment)
        assert len(a) == len(b) > 0
        for (xa, ya), (xb, yb) in zip(a, b, strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
    # a different seed shuffles differently (the comparison above could not pass by accident)
    assert not torch.equal(epoch(streamed, "train", 5, True)[0][0], epoch(streamed, "train", 7, True)[0][0])


def test_training_streamed_gives_the_in_memory_curve(folder: Path) -> None:
    memory, streamed = both(folder, loader_workers=1)
    space = get_space("nb201", channels=4, cells=1)
    arch = space.sample(np.random.default_rng(0))
    settings = {"epochs": 2, "batch_size": 16, "lr": 0.05, "augment": True, "latency_repeats": 1}
    results = [
        TrainEvaluator(space, data, settings=settings, num_threads=1).evaluate(arch, seed=1)
        for data in (memory, streamed)
    ]
    curves = [
        [{k: v for k, v in row.items() if k != "epoch_time_s"} for row in r.user_attrs["learning_curve"]]
        for r in results
    ]
    assert len(curves[0]) == 2 and curves[0] == curves[1]
    assert results[1].user_attrs["dataset"]["streaming"] is True


class Untouchable:
    """A test split that fails the moment anything reads it."""

    shape = (3, 16, 16)

    def __len__(self) -> int:
        return 4

    def read(self, position: int) -> np.ndarray:
        raise AssertionError(f"the test split was read (position {position})")


def test_a_streamed_search_trial_never_reads_the_test_split(folder: Path) -> None:
    _, streamed = both(folder, loader_workers=0)
    guarded = dataclasses.replace(
        streamed, test_source=Untouchable(), test_labels=np.zeros(4, dtype=np.int64)
    )
    space = get_space("nb201", channels=4, cells=1)
    settings = {"epochs": 1, "batch_size": 16, "latency_repeats": 1}
    result = TrainEvaluator(space, guarded, settings=settings, num_threads=1).evaluate(
        space.sample(0), seed=0
    )
    assert result.user_attrs["dataset"]["test"] == 4 and math.isfinite(result.values["val_loss"])
    with pytest.raises(ValueError, match="never reads 'test'"):
        split_batches(guarded, "test")


def test_the_streamed_dataset_pickles_references_not_pixels(folder: Path) -> None:
    _, streamed = both(folder)
    pixels = len(streamed.source) * 3 * 16 * 16
    assert len(pickle.dumps(streamed)) < pixels / 4  # file names, positions and labels


def test_validation_split_is_fixed_by_seed_and_recorded(folder: Path) -> None:
    memory, streamed = both(folder, seed=3)
    again = load_dataset(
        {"name": "image_folder", "path": str(folder), "image_size": 16, "streaming": True}, seed=3
    )
    other = load_dataset(
        {"name": "image_folder", "path": str(folder), "image_size": 16, "streaming": True}, seed=4
    )
    record = memory.info["split"]
    assert record == streamed.info["split"] == again.info["split"] == memory.summary()["split"]
    assert record["validation"] == 6 and other.info["split"]["sha256"] != record["sha256"]
    assert np.array_equal(streamed.val, again.val) and not np.array_equal(streamed.val, other.val)
    assert set(streamed.train.tolist()).isdisjoint(streamed.val.tolist())


def test_npy_memory_maps_stream_like_the_arrays(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    np.save(tmp_path / "x_train.npy", rng.integers(0, 256, (40, 12, 12, 3), dtype=np.uint8))
    np.save(tmp_path / "y_train.npy", np.arange(40) % 4)
    memory = load_dataset({"name": "npy", "path": str(tmp_path), "streaming": False}, seed=0)
    streamed = load_dataset({"name": "npy", "path": str(tmp_path), "streaming": True}, seed=0)
    assert isinstance(streamed, StreamingDataset) and streamed.input_shape == memory.input_shape == (
        3,
        12,
        12,
    )
    for (xa, ya), (xb, yb) in zip(
        epoch(memory, "train", 2, True), epoch(streamed, "train", 2, True), strict=True
    ):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert len(pickle.dumps(streamed)) < 40 * 12 * 12 * 3 / 4  # the memory map is reopened, not pickled
    with pytest.raises(ConfigError, match="y_train.npy must be an integer vector"):
        np.save(tmp_path / "y_train.npy", np.zeros(39, dtype=np.int64))
        load_dataset({"name": "npy", "path": str(tmp_path)})


# -- bad input ----------------------------------------------------------------------------------------


def test_streaming_path_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="has 0 class folder"):
        load_dataset({"name": "image_folder", "path": str(tmp_path / "empty"), "streaming": True})
    write_folder(tmp_path / "nofiles", per_class=2)
    (tmp_path / "nofiles" / "class9").mkdir()
    with pytest.raises(ConfigError, match="class9 has no images"):
        load_dataset({"name": "image_folder", "path": str(tmp_path / "nofiles"), "streaming": True})


def test_class_folders_must_match_between_splits(tmp_path: Path) -> None:
    write_folder(tmp_path / "train", per_class=4)
    write_folder(tmp_path / "test", per_class=1, classes=2)
    with pytest.raises(ConfigError, match=r"test lacks \['class2'\]"):
        load_dataset({"name": "image_folder", "path": str(tmp_path), "streaming": True})
    write_folder(tmp_path / "test", per_class=1, classes=4)
    with pytest.raises(ConfigError, match=r"has extra \['class3'\]"):
        load_dataset({"name": "image_folder", "path": str(tmp_path), "streaming": True})


def test_mixed_sizes_need_image_size_and_modes_are_converted(tmp_path: Path) -> None:
    from PIL import Image

    root = write_folder(tmp_path, per_class=4, classes=2, size=(16, 16))
    Image.new("RGBA", (20, 12), (10, 20, 30, 40)).save(root / "class0" / "rgba.png")
    Image.new("L", (16, 16), 99).save(root / "class1" / "grey.png")
    Image.new("P", (16, 16)).save(root / "class1" / "palette.png")
    with pytest.raises(ConfigError, match=r"mixes 2 image sizes .*set image_size"):
        load_dataset({"name": "image_folder", "path": str(root), "streaming": True})
    data = load_dataset({"name": "image_folder", "path": str(root), "image_size": 8, "streaming": True})
    assert data.input_shape == (3, 8, 8)
    assert data.info["file_modes"] == {"L": 1, "P": 1, "RGB": 8, "RGBA": 1}
    x, _ = next(split_batches(data, "train").epoch(32))
    assert x.shape == (len(data.train), 3, 8, 8) and torch.isfinite(x).all()


def test_unreadable_files_fail_or_are_skipped_and_counted(tmp_path: Path, caplog) -> None:
    root = write_folder(tmp_path, per_class=5, classes=2)
    (root / "class0" / "notes.png").write_bytes(b"not an image")
    good = (root / "class1" / "000.png").read_bytes()
    (root / "class1" / "cut.png").write_bytes(good[: len(good) // 2])  # truncated: caught by verify
    config = {"name": "image_folder", "path": str(root), "streaming": True}
    with pytest.raises(ConfigError, match=r"cannot read image .*notes.png.*on_error: skip"):
        load_dataset(config)
    with caplog.at_level("WARNING"):
        data = load_dataset({**config, "on_error": "skip"})
    assert data.info["skipped"]["count"] == 2 and len(data.train) + len(data.val) == 10
    assert {Path(f).name for f in data.info["skipped"]["files"]} == {"notes.png", "cut.png"}
    assert "skipped 2 unreadable file(s)" in caplog.text
    with pytest.raises(ConfigError, match="on_error"):
        load_dataset({**config, "on_error": "ignore"})
    with pytest.raises(ConfigError, match="not used by dataset 'digits'"):
        load_dataset({"name": "digits", "streaming": True})


# -- a search ---------------------------------------------------------------------------------------


def search_config(root: Path, name: str) -> dict:
    return {
        "name": name,
        "space": {"name": "nb201", "channels": 4, "cells": 1},
        "dataset": {
            "name": "image_folder",
            "path": str(root),
            "image_size": 16,
            "streaming": True,
            "loader_workers": 1,
        },
        "strategy": {"name": "random"},
        "evaluator": {"name": "train", "epochs": 2, "batch_size": 16, "lr": 0.05, "latency_repeats": 1},
        "budget": {"trials": 2, "concurrent": 2},
    }


@pytest.mark.ray
@pytest.mark.slow
def test_a_search_streams_an_image_folder_and_records_one_split(
    local_ray, folder: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    outcome = run_search(search_config(folder, "stream"), storage=url, show_progress=False)
    study = nas.load_study("stream", storage=url)
    trials = study.trials()
    assert outcome.finished == 2 and {t.state for t in trials} == {TrialState.COMPLETE}
    splits = {str(t.user_attrs["dataset"]["split"]) for t in trials}
    expected = load_dataset(search_config(folder, "x")["dataset"], seed=0).info["split"]
    assert splits == {str(expected)}  # every trial validated on the same recorded split
    assert study.comparability["dataset.split"] == expected
    assert "dataset.streaming" not in study.comparability  # how data is read is not what it is
    for trial in trials:
        assert trial.user_attrs["dataset"]["streaming"] is True
        assert [step for step, _ in study.metrics(trial)["val_accuracy"]] == [1, 2]


@pytest.mark.ray
def test_bad_images_stop_a_search_before_the_store_is_written(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "images", per_class=3, classes=2)
    (root / "class1" / "broken.jpg").write_bytes(b"\xff\xd8 garbage")
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    with pytest.raises(ConfigError, match="broken.jpg"):
        run_search(search_config(root, "bad"), storage=url, show_progress=False)
    assert not (tmp_path / "nas.db").exists()


def test_one_shot_methods_refuse_a_streamed_dataset(folder: Path) -> None:
    from nas.settings import load_config

    config = search_config(folder, "oneshot")
    config["strategy"] = {"name": "darts"}
    del config["evaluator"]
    with pytest.raises(ConfigError, match="in-memory arrays.*streaming: false"):
        load_config(config)


def test_streaming_is_chosen_by_decoded_size_when_unset(folder: Path, monkeypatch) -> None:
    import nas.settings.dataset as dataset_settings

    config = {"name": "image_folder", "path": str(folder), "image_size": 16}
    assert isinstance(load_dataset(config), Dataset)  # 54 x 3 x 16 x 16 float32: far below 1 GiB
    monkeypatch.setattr(dataset_settings, "STREAMING_THRESHOLD_BYTES", 54 * 3 * 16 * 16 * 4 - 1)
    assert isinstance(load_dataset(config), StreamingDataset)
    assert isinstance(load_dataset({**config, "streaming": False}), Dataset)
