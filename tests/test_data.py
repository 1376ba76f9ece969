"""Datasets: every source, the seeded stratified validation split, preprocessing and errors."""

from __future__ import annotations

import pickle
import struct
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nas.core import ConfigError
from nas.data import Dataset, load_dataset
from nas.settings.dataset import DatasetConfig


def rows(x: np.ndarray) -> set[bytes]:
    return {image.tobytes() for image in x}


def raw(data: Dataset, x: np.ndarray) -> np.ndarray:
    """Undo the preprocessing: the source's pixel values."""
    mean, std = np.array(data.mean)[None, :, None, None], np.array(data.std)[None, :, None, None]
    return np.round((x * std + mean) / data.scale, 3) + 0.0  # + 0.0 turns -0.0 into 0.0


def uint8_images(n: int, seed: int, shape: tuple[int, ...] = (32, 32, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


# -- digits -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits", seed=0)


def test_digits_shapes_and_preprocessing(digits: Dataset) -> None:
    assert digits.input_shape == (1, 8, 8) and digits.num_classes == 10
    assert len(digits.x_train) + len(digits.x_val) + len(digits.x_test) == 1797
    assert digits.x_train.dtype == np.float32 and digits.y_train.dtype == np.int64
    assert abs(float(digits.x_train.mean())) < 1e-4 and abs(float(digits.x_train.std()) - 1.0) < 1e-4
    assert digits.scale == pytest.approx(1 / 16)
    prep = digits.preprocessing
    assert prep["layout"] == "NCHW" and prep["input_shape"] == [1, 8, 8] and len(prep["mean"]) == 1


def test_digits_preprocessing_reproduces_the_arrays(digits: Dataset) -> None:
    from sklearn.datasets import load_digits

    raw = load_digits().images.astype(np.float32)
    prep = digits.preprocessing
    prepared = (raw * prep["scale"] - prep["mean"][0]) / prep["std"][0]
    assert rows(digits.x_test.round(4)) <= rows(prepared[:, None].astype(np.float32).round(4))


def test_splits_are_disjoint_and_stratified(digits: Dataset) -> None:
    train, val, test = rows(digits.x_train), rows(digits.x_val), rows(digits.x_test)
    # digits holds a few duplicate images, so compare against the number of distinct ones
    assert len(train & test) <= 5 and len(val & test) <= 5 and len(train & val) <= 5
    assert set(np.unique(digits.y_val)) == set(range(10))
    val_share = np.bincount(digits.y_val) / len(digits.y_val)
    train_share = np.bincount(digits.y_train) / len(digits.y_train)
    assert np.abs(val_share - train_share).max() < 0.03


def test_validation_split_follows_the_seed_and_test_does_not(digits: Dataset) -> None:
    again = load_dataset("digits", seed=0)
    other = load_dataset("digits", seed=1)
    assert np.array_equal(again.x_val, digits.x_val)
    assert rows(other.x_val) != rows(digits.x_val)
    assert np.array_equal(other.y_test, digits.y_test)
    assert rows(raw(other, other.x_test)) == rows(raw(digits, digits.x_test))


def test_config_seed_overrides_the_argument() -> None:
    a = load_dataset(DatasetConfig(name="digits", seed=5), seed=0)
    b = load_dataset("digits", seed=5)
    assert np.array_equal(a.x_val, b.x_val)


def test_limit_and_val_fraction(digits: Dataset) -> None:
    small = load_dataset({"name": "digits", "limit": 200, "val_fraction": 0.25}, seed=0)
    assert len(small.x_train) == 150 and len(small.x_val) == 50
    assert set(np.unique(small.y_train)) == set(range(10))
    assert len(small.x_test) == len(digits.x_test)


def test_arrays_are_read_only(digits: Dataset) -> None:
    with pytest.raises(ValueError):
        digits.x_train[0, 0, 0, 0] = 1.0


# -- synthetic ----------------------------------------------------------------------------------------


def test_synthetic_options_and_determinism() -> None:
    config = {"name": "synthetic", "num_samples": 100, "num_test": 20, "num_classes": 3, "shape": [2, 5, 6]}
    a, b = load_dataset(config, seed=4), load_dataset(config, seed=4)
    assert a.input_shape == (2, 5, 6) and a.num_classes == 3
    assert len(a.x_train) + len(a.x_val) == 100 and len(a.x_test) == 20
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_val, b.y_val)
    assert not np.array_equal(a.x_train, load_dataset(config, seed=5).x_train)


def test_synthetic_has_a_learnable_signal() -> None:
    data = load_dataset({"name": "synthetic", "noise": 0.5}, seed=0)
    centroids = np.stack([data.x_train[data.y_train == k].mean(0) for k in range(data.num_classes)])
    distances = ((data.x_val[:, None] - centroids[None]) ** 2).sum(axis=(2, 3, 4))
    assert (distances.argmin(1) == data.y_val).mean() > 0.9


# -- cifar10 ------------------------------------------------------------------------------------------------


def test_cifar10_npz_converts_nhwc_to_standardised_nchw(tmp_path: Path) -> None:
    x_train, x_test = uint8_images(60, 0), uint8_images(10, 1)
    y_train, y_test = np.arange(60) % 10, np.arange(10)
    path = tmp_path / "c.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    data = load_dataset({"name": "cifar10", "path": str(path)}, seed=0)
    assert data.input_shape == (3, 32, 32) and len(data.x_test) == 10
    mean, std = np.array(data.mean), np.array(data.std)
    expected = (x_test.transpose(0, 3, 1, 2) / 255.0 - mean[None, :, None, None]) / std[None, :, None, None]
    assert np.allclose(data.x_test, expected, atol=1e-5)
    assert np.array_equal(data.y_test, y_test)


def test_cifar10_python_batches_directory(tmp_path: Path) -> None:
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    for name, seed in [*((f"data_batch_{i}", i) for i in range(1, 6)), ("test_batch", 9)]:
        images = uint8_images(10, seed, (3, 32, 32))
        entry = {b"data": images.reshape(10, -1), b"labels": list(range(10))}
        (root / name).write_bytes(pickle.dumps(entry))
    data = load_dataset({"name": "cifar10", "path": str(tmp_path)}, seed=0)  # the parent also works
    assert len(data.x_train) + len(data.x_val) == 50 and len(data.x_test) == 10
    raw_test = uint8_images(10, 9, (3, 32, 32))
    restored = (
        np.array(data.x_test) * np.array(data.std)[None, :, None, None]
        + np.array(data.mean)[None, :, None, None]
    )
    assert np.allclose(restored * 255.0, raw_test, atol=1e-3)


def py2_batch(images: np.ndarray, labels: list[int]) -> bytes:
    """A batch pickled as the authors' files are: Python 2 protocol 2, ``numpy.core.multiarray`` names.

    Written opcode by opcode (Python 3 cannot produce Python 2 ``str`` or the
    old numpy module path): ``{b'data': uint8 N x 3072 array, b'labels': [...]}``.
    """

    def string(value: bytes) -> bytes:  # Python 2 str: SHORT_BINSTRING / BINSTRING
        if len(value) < 256:
            return b"U" + bytes([len(value)]) + value
        return b"T" + struct.pack("<i", len(value)) + value

    def integer(value: int) -> bytes:
        return b"J" + struct.pack("<i", value)

    flat = np.ascontiguousarray(images.reshape(len(images), -1), dtype=np.uint8)
    array = (
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
        + integer(0)
        + b"\x85"
        + string(b"b")
        + b"\x87R"  # _reconstruct(ndarray, (0,), b'b')
        + b"("
        + integer(1)
        + integer(flat.shape[0])
        + integer(flat.shape[1])
        + b"\x86"
        + b"cnumpy\ndtype\n"
        + string(b"u1")
        + integer(0)
        + integer(1)
        + b"\x87R"
        + b"("
        + integer(3)
        + string(b"|")
        + b"NNN"
        + integer(-1)
        + integer(-1)
        + integer(0)
        + b"tb"
        + b"\x89"
        + string(flat.tobytes())
        + b"tb"  # state: (1, shape, dtype, False, raw bytes)
    )
    label_list = b"](" + b"".join(integer(v) for v in labels) + b"e"
    return b"\x80\x02}(" + string(b"data") + array + string(b"labels") + label_list + b"u."


def write_batches(root: Path, make: Any) -> None:
    root.mkdir(exist_ok=True)
    for name, seed in [*((f"data_batch_{i}", i) for i in range(1, 6)), ("test_batch", 9)]:
        (root / name).write_bytes(make(name, uint8_images(10, seed, (3, 32, 32))))


def test_cifar10_batches_in_the_authors_python2_format_load(tmp_path: Path) -> None:
    write_batches(tmp_path, lambda name, images: py2_batch(images, list(range(10))))
    data = load_dataset({"name": "cifar10", "path": str(tmp_path)}, seed=0)
    assert len(data.x_train) + len(data.x_val) == 50 and np.array_equal(data.y_test, np.arange(10))
    assert np.array_equal(raw(data, data.x_test), uint8_images(10, 9, (3, 32, 32)))


class FileCreatingPayload:
    """Unpickling this calls ``open(path, "w")``: a pickle's way to run code (here, creating a file)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


@pytest.mark.parametrize("protocol", [3, pickle.HIGHEST_PROTOCOL])
def test_cifar10_batch_pickle_cannot_run_code(tmp_path: Path, protocol: int) -> None:
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(FileCreatingPayload(proof), protocol=protocol)).close()
    assert proof.exists()  # the payload is live: a plain pickle.load runs it
    marker = tmp_path / "pwned"

    def make(name: str, images: np.ndarray) -> bytes:
        data: Any = FileCreatingPayload(marker) if name == "data_batch_2" else images.reshape(10, -1)
        return pickle.dumps({b"data": data, b"labels": list(range(10))}, protocol=protocol)

    write_batches(tmp_path / "batches", make)
    with pytest.raises(
        ConfigError, match=r"data_batch_2 is not a CIFAR-10 python batch: it names io\.open.*refused"
    ):
        load_dataset({"name": "cifar10", "path": str(tmp_path / "batches")})
    assert not marker.exists()


def test_cifar10_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_dataset({"name": "cifar10", "path": str(tmp_path / "missing.npz")})
    wrong = tmp_path / "wrong.npz"
    np.savez(
        wrong,
        x_train=uint8_images(4, 0, (28, 28, 1)),
        y_train=np.zeros(4),
        x_test=uint8_images(2, 0),
        y_test=np.zeros(2),
    )
    with pytest.raises(ConfigError, match=r"x_train has dtype uint8 and shape \(4, 28, 28, 1\)"):
        load_dataset({"name": "cifar10", "path": str(wrong)})
    partial = tmp_path / "partial.npz"
    np.savez(partial, x_train=uint8_images(4, 0))
    with pytest.raises(ConfigError, match="lacks array"):
        load_dataset({"name": "cifar10", "path": str(partial)})
    with pytest.raises(ConfigError, match="lacks"):
        load_dataset({"name": "cifar10", "path": str(tmp_path)})


@pytest.mark.slow
def test_cifar10_shared_subset(data_dir: Path) -> None:
    data = load_dataset({"name": "cifar10", "path": str(data_dir / "cifar10" / "cifar10_10k_2k.npz")}, seed=0)
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (9000, 1000, 2000)
    assert np.bincount(data.y_val).tolist() == [100] * 10


# -- image_folder --------------------------------------------------------------------------------------------


def write_images(root: Path, classes: dict[str, int], size: tuple[int, int] = (12, 10)) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, count in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")


def test_image_folder_with_train_and_test(tmp_path: Path) -> None:
    write_images(tmp_path / "train", {"cat": 6, "dog": 6})
    write_images(tmp_path / "test", {"dog": 2})
    (tmp_path / "test" / "cat").mkdir()  # the same class folders in both splits; a test folder may be empty
    data = load_dataset({"name": "image_folder", "path": str(tmp_path), "image_size": [8, 6]}, seed=0)
    assert data.class_names == ("cat", "dog") and data.num_classes == 2
    assert data.input_shape == (3, 8, 6)
    assert len(data.x_train) + len(data.x_val) == 12
    assert data.y_test.tolist() == [1, 1]  # labels follow the training classes


def test_image_folder_flat_and_grayscale(tmp_path: Path) -> None:
    write_images(tmp_path, {"a": 3, "b": 3, "c": 3})
    data = load_dataset(
        {"name": "image_folder", "path": str(tmp_path), "grayscale": True, "image_size": 4}, seed=0
    )
    assert data.input_shape == (1, 4, 4) and data.x_test is None


def test_image_folder_errors(tmp_path: Path) -> None:
    write_images(tmp_path / "one", {"only": 2})
    with pytest.raises(ConfigError, match="need at least 2"):
        load_dataset({"name": "image_folder", "path": str(tmp_path / "one")})
    (tmp_path / "two").mkdir()
    write_images(tmp_path / "two", {"a": 2})
    (tmp_path / "two" / "b").mkdir()
    with pytest.raises(ConfigError, match="has no images"):
        load_dataset({"name": "image_folder", "path": str(tmp_path / "two")})
    with pytest.raises(ConfigError, match="not a directory"):
        load_dataset({"name": "image_folder", "path": str(tmp_path / "missing")})


# -- package.module:function -------------------------------------------------------------------------------


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = "nas_test_user_data"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            import numpy as np

            def arrays(n=40, seed=0):
                rng = np.random.default_rng(seed)
                return {"x_train": rng.random((n, 1, 4, 4)), "y_train": np.arange(n) % 2,
                        "x_test": rng.random((6, 1, 4, 4)), "y_test": np.arange(6) % 2}

            def pair(n=20):
                return np.zeros((n, 4, 4)), np.arange(n) % 2

            def pairs():
                train = [(np.full((1, 3, 3), i, dtype=np.float32), i % 2) for i in range(10)]
                return train, train[:4]

            def prepared(seed):
                from nas.data import Dataset
                return Dataset.from_arrays("mine", np.ones((10, 1, 2, 2)), np.arange(10) % 2, seed=seed)

            def bad():
                return "not data"
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_function_dataset_forms(user_module: str) -> None:
    data = load_dataset({"name": f"{user_module}:arrays", "options": {"n": 50}}, seed=3)
    assert len(data.x_train) + len(data.x_val) == 50 and len(data.x_test) == 6
    assert data.input_shape == (1, 4, 4)
    assert np.array_equal(
        load_dataset(f"{user_module}:arrays", seed=3).x_val,
        load_dataset(f"{user_module}:arrays", seed=3).x_val,
    )
    assert load_dataset(f"{user_module}:pair").input_shape == (1, 4, 4)
    from_pairs = load_dataset(f"{user_module}:pairs")
    assert from_pairs.input_shape == (1, 3, 3) and len(from_pairs.x_test) == 4
    assert load_dataset(f"{user_module}:prepared").name == "mine"


def test_function_dataset_errors(user_module: str) -> None:
    with pytest.raises(ConfigError, match="returned str"):
        load_dataset(f"{user_module}:bad")
    with pytest.raises(ConfigError, match="no callable 'nothing'"):
        load_dataset(f"{user_module}:nothing")
    with pytest.raises(ConfigError, match="cannot import module"):
        load_dataset("no_such_module_xyz:make")
    with pytest.raises(ConfigError, match="cannot be called with options"):
        load_dataset({"name": f"{user_module}:pair", "options": {"wrong": 1}})


# -- Dataset checks -----------------------------------------------------------------------------------------


def test_from_arrays_errors() -> None:
    x, y = np.zeros((10, 1, 2, 2)), np.arange(10) % 2
    with pytest.raises(ConfigError, match="too few to split"):
        Dataset.from_arrays("d", x[:1], y[:1])
    with pytest.raises(ConfigError, match="has 10 images but y_train has 9"):
        Dataset.from_arrays("d", x, y[:9])
    with pytest.raises(ConfigError, match="integer class labels"):
        Dataset.from_arrays("d", x, y.astype(float))
    with pytest.raises(ConfigError, match="shape"):
        Dataset.from_arrays("d", np.zeros((10, 4)), y)
    with pytest.raises(ConfigError, match="NaN"):
        Dataset.from_arrays("d", np.full((10, 1, 2, 2), np.nan), y)
    with pytest.raises(ConfigError, match="num_classes=1"):
        Dataset.from_arrays("d", x, y, num_classes=1)
    with pytest.raises(ConfigError, match=r"labels in \[0, 2\]; allowed: 0..1"):
        Dataset(
            "d",
            np.zeros((2, 1, 1, 1), np.float32),
            np.array([0, 2]),
            np.zeros((1, 1, 1, 1), np.float32),
            np.array([0]),
            2,
        )


def test_dataset_refuses_wrong_dtypes() -> None:
    good = Dataset.from_arrays("d", np.zeros((10, 1, 2, 2)), np.arange(10) % 2)
    with pytest.raises(ConfigError, match="float32"):
        Dataset("d", good.x_train.astype(np.float64), good.y_train, good.x_val, good.y_val, num_classes=2)
    with pytest.raises(ConfigError, match="int64"):
        Dataset("d", good.x_train, good.y_train.astype(np.int32), good.x_val, good.y_val, num_classes=2)
