"""WebDataset tar shards: the format, the writer's CLI, bad shards refused.

That tar shards give the folder's split and batches, in memory and streamed,
is tests/test_shards.py's test, run for both shard formats.

Folders are generated PNGs (``write_folder`` of tests/test_streaming.py),
written as tar shards by the real writer (``nas shards --format tar``) and
read back with :mod:`tarfile`; the bad shards are real tar files damaged in
the ways users damage them.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
import test_shards
import torch
from click.testing import CliRunner

from nas.cli import main
from nas.core import ConfigError
from nas.data import load_dataset
from nas.data.tar_shards import META_MEMBER

folder = test_shards.folder  # the generated image folder (210 train, 12 test images)


tars = test_shards.tars  # the folder written as tar shards (5 train shards, 1 test shard)


def test_a_tar_shard_is_a_plain_webdataset_tar(tars: Path, folder: Path) -> None:
    with tarfile.open(tars / "train-00001.tar") as tar:
        names = tar.getnames()
        assert names[0] == META_MEMBER and names[1:3] == ["000000050.png", "000000050.cls"]
        meta = json.loads(tar.extractfile(META_MEMBER).read())
        assert meta == {
            "classes": ["class0", "class1", "class2"],
            "image_size": [16, 16],
            "mode": "RGB",
            "split": "train",
        }
        label = int(tar.extractfile("000000050.cls").read())
        image = tar.extractfile("000000050.png").read()
    # the image member is the file's bytes as they were, under the class the label names
    assert image in {p.read_bytes() for p in (folder / "train" / meta["classes"][label]).iterdir()}


def test_nas_shards_format_tar(folder: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli"
    result = runner.invoke(
        main,
        ["shards", str(folder), str(out), "--format", "tar", "--image-size", "16", "--rows-per-shard", "50"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["train"] == {"rows": 210, "shards": 5}
    assert sorted(p.name for p in out.iterdir()) == ["test-00000.tar"] + [
        f"train-0000{k}.tar" for k in range(5)
    ]
    # the same folder gives byte-identical shards (no time stamps or owners in them)
    again = runner.invoke(
        main,
        [
            "shards",
            str(folder),
            str(tmp_path / "b"),
            "--format",
            "tar",
            "--image-size",
            "16",
            "--rows-per-shard",
            "50",
        ],
    )
    assert (
        again.exit_code == 0
        and (tmp_path / "b" / "train-00001.tar").read_bytes() == (out / "train-00001.tar").read_bytes()
    )
    wrong = runner.invoke(
        main, ["shards", str(folder), str(tmp_path / "c"), "--format", "tar", "--row-group-size", "8"]
    )
    assert wrong.exit_code == 2 and "--row-group-size applies to --format parquet" in wrong.output
    bad = runner.invoke(main, ["shards", str(folder), str(tmp_path / "d"), "--format", "zip"])
    assert bad.exit_code == 2 and "'zip' is not one of 'parquet', 'tar'" in bad.output


# -- bad input -----------------------------------------------------------------------------------------


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def copy_dir(source: Path, target: Path) -> Path:
    target.mkdir()
    for path in source.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    return target


def test_bad_tar_shards_are_refused_before_trials_with_counts(tars: Path, tmp_path: Path) -> None:
    def load(root: Path) -> object:
        return load_dataset({"name": "webdataset", "path": str(root)})

    (tmp_path / "none").mkdir()
    with pytest.raises(ConfigError, match=r"has no train-\*.tar shard; .*--format tar"):
        load(tmp_path / "none")
    with tarfile.open(tars / "train-00000.tar") as tar:
        meta = tar.extractfile(META_MEMBER).read()
        png = tar.extractfile("000000000.png").read()
    # an empty shard (its metadata only) among good ones
    empty = copy_dir(tars, tmp_path / "empty")
    write_tar(empty / "train-00005.tar", [(META_MEMBER, meta)])
    with pytest.raises(ConfigError, match=r"train-00005.tar is empty \(0 rows\)"):
        load(empty)
    # a shard of another mode (as --grayscale writes it) mixed in
    mixed = copy_dir(tars, tmp_path / "mixed")
    grey_meta = json.dumps({**json.loads(meta), "mode": "L"}).encode()
    write_tar(
        mixed / "train-00005.tar", [(META_MEMBER, grey_meta), ("000000090.png", png), ("000000090.cls", b"1")]
    )
    with pytest.raises(
        ConfigError, match=r"train-00005.tar differs from train-00000.tar \(mode 'L', not 'RGB'\)"
    ):
        load(mixed)
    # unreadable samples: counted by kind, the first named
    broken = copy_dir(tars, tmp_path / "broken")
    write_tar(
        broken / "train-00005.tar",
        [
            (META_MEMBER, meta),
            ("000000090.png", png),
            ("000000090.cls", b"one"),
            ("000000091.png", png),
            ("000000092.png", png),
            ("000000093.cls", b"2"),
            ("notes.txt", b"x"),
        ],
    )
    with pytest.raises(
        ConfigError,
        match=r"train-00005.tar has unreadable samples: 2 images without a .cls label, 1 labels without an "
        r"image, 1 labels that are not integers, 1 members that are neither \(of 3 images\); "
        r"first: \['000000091', '000000092', '000000093', '000000090', 'notes.txt'\]",
    ):
        load(broken)
    # no metadata member; a truncated file
    foreign = copy_dir(tars, tmp_path / "foreign")
    write_tar(foreign / "train-00000.tar", [("000000000.png", png), ("000000000.cls", b"0")])
    with pytest.raises(ConfigError, match=f"train-00000.tar lacks the {META_MEMBER} member"):
        load(foreign)
    truncated = copy_dir(tars, tmp_path / "truncated")
    (truncated / "train-00001.tar").write_bytes((tars / "train-00001.tar").read_bytes()[:700])
    with pytest.raises(ConfigError, match="cannot read webdataset shard .*train-00001.tar"):
        load(truncated)


def test_webdataset_config_errors() -> None:
    with pytest.raises(ConfigError, match="'webdataset' needs 'path'.*--format tar"):
        load_dataset({"name": "webdataset"})
    with pytest.raises(
        ConfigError, match="'reader' is not used by dataset 'webdataset'; it applies to: parquet"
    ):
        load_dataset({"name": "webdataset", "path": "x", "reader": "ray"})


def test_forked_workers_read_their_own_members_of_a_shard_the_parent_opened(tars: Path) -> None:
    """DataLoader workers forked after the parent opened a shard share its file offset; each worker
    must still get exactly its member's bytes (positional reads), on every one of many reads."""
    rows = load_dataset({"name": "webdataset", "path": str(tars), "streaming": True}, seed=0).source
    expected = [rows.encoded(p) for p in range(len(rows))]  # the parent's handles are open now

    class Members(torch.utils.data.Dataset):  # type: ignore[type-arg]
        def __len__(self) -> int:
            return 20 * len(rows)

        def __getitem__(self, k: int) -> tuple[int, bytes]:
            return k % len(rows), rows.encoded(k % len(rows))

    loader = torch.utils.data.DataLoader(Members(), batch_size=None, num_workers=2)
    wrong = [p for p, data in loader if data != expected[p]]
    assert wrong == []
