"""``nas export``: bundles of every space in every format, parity, checksums, bad input, the archive.

Each space gets a real study in a temporary SQLite store with one trial
trained for an epoch on a small synthetic problem (1x8x8 images, 4
classes), its weights stored as the runner stores them (a ``weights``
artifact with sha256). Models are tiny, so a whole export (TorchScript,
ONNX, parity, latency) takes about a second.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import nas
from nas.cli import main
from nas.core import Architecture, ArchitectureError, ConfigError, TrialState, UnknownNameError
from nas.data import load_dataset
from nas.evaluators.train import TrainEvaluator
from nas.export import (
    AmbiguousBestError,
    ChecksumError,
    ConversionError,
    ExportError,
    ParityError,
    export_archive,
    export_model,
    load_exported,
    parse_formats,
    verify_bundle,
)
from nas.export.files import path_from_uri
from nas.settings import load_config
from nas.store.records import EXPORT_ARTIFACT
from nas.store.study import Study
from nas.training import Precision, evaluate
from search_spaces.base import TorchSpace

SYNTHETIC = {"name": "synthetic", "num_samples": 240, "num_test": 40, "num_classes": 4, "noise": 0.8}
EVALUATOR = {"name": "train", "epochs": 1, "batch_size": 32, "lr": 0.05, "latency_repeats": 1}
#: Tiny options per space, and an architecture that exercises what is hard to export in it.
SPACES: dict[str, tuple[dict[str, Any], str | None]] = {
    "nb201": (
        {"channels": 4, "cells": 1},
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|",
    ),
    "darts": ({"cells": 2, "channels": 4}, None),  # a sampled genotype
    "fbnet": (  # grouped 1x1 convolutions (the *_g2 blocks) and skips
        {"width_mult": 0.25},
        "k3_e1_g2-skip-k3_e3-k5_e1_g2-k3_e1-k5_e6-skip-k5_e1_g2-k3_e1-k3_e1-k3_e3-k3_e6-"
        "k5_e1_g2-k5_e1-k3_e3-k3_e1_g2-k5_e3-k5_e3-k3_e1-k3_e1_g2-k5_e1-k3_e6",
    ),
    "hybrid": ({"base_width": 8, "blocks": 3}, "C1-vA2-A2"),  # two attention blocks
}
BUNDLE = {"genotype.json", "model.pt", "model.ts", "model.onnx", "card.json", "README.md"}
LATENCY_REPEATS = 3


# -- helpers ------------------------------------------------------------------------------------------------


def make_study(
    url: str,
    name: str,
    space: str,
    options: Mapping[str, Any],
    objectives: Mapping[str, str] | None = None,
) -> Study:
    """A study with a stored, validated search config, as ``nas search`` creates it."""
    config = load_config(
        {
            "name": name,
            "space": {"name": space, **options},
            "dataset": SYNTHETIC,
            "evaluator": EVALUATOR,
            "strategy": {"name": "random"},
            "objectives": dict(objectives or {"val_accuracy": "max"}),
        }
    )
    return nas.create_study(
        name,
        url,
        space=space,
        space_options=dict(options),
        objectives=dict(config.objectives),
        config=config.model_dump(mode="json"),
    )


def add_trained_trial(
    study: Study, arch: Architecture, workdir: Path, *, store_weights: bool = True, seed: int = 0
) -> int:
    """Train ``arch`` for one epoch and finish its trial as the runner does (weights artifact + sha256)."""
    dataset = load_dataset(SYNTHETIC, seed=0)
    evaluator = TrainEvaluator(
        study.space, dataset, settings={k: v for k, v in EVALUATOR.items() if k != "name"}, workdir=workdir
    )
    trial = study.ask(arch, seed=seed)
    result = evaluator.evaluate(arch, seed=seed)
    if store_weights:
        path = Path(result.artifacts["weights"])
        study.add_artifact(trial, "weights", path.as_uri(), hashlib.sha256(path.read_bytes()).hexdigest())
    values = {name: result.values[name] for name in study.objectives}
    study.tell(trial, values, user_attrs=dict(result.user_attrs))
    return trial.number


def leftovers(out: Path) -> list[Path]:
    """Temporary or old siblings an export may have left next to ``out``."""
    return [p for p in out.parent.iterdir() if p.name.startswith((f"{out.name}.tmp-", f"{out.name}.old-"))]


def logits(run: Callable[[np.ndarray], Any], x: np.ndarray) -> np.ndarray:
    return np.asarray(run(x))


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'nas.db'}"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("weights")


@pytest.fixture(scope="module")
def trained(url: str, workdir: Path) -> Callable[[str], tuple[Study, int]]:
    """``trained(space)``: a study of that space with one trained trial (built once per module)."""
    cache: dict[str, tuple[Study, int]] = {}

    def get(space: str) -> tuple[Study, int]:
        if space not in cache:
            options, text = SPACES[space]
            study = make_study(url, f"export-{space}", space, options)
            arch = study.space.parse(text) if text else study.space.sample(0)
            cache[space] = (study, add_trained_trial(study, arch, workdir))
        return cache[space]

    return get


@pytest.fixture(scope="module")
def nb201_bundle(
    trained: Callable[[str], tuple[Study, int]], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    study, number = trained("nb201")
    out = tmp_path_factory.mktemp("bundles") / "nb201"
    export_model(study, trial=number, out=out, latency_repeats=LATENCY_REPEATS, progress=False)
    return out


# -- every space, every format ------------------------------------------------------------------------------


@pytest.mark.parametrize("space_name", list(SPACES))
def test_every_space_exports_every_format_with_parity_and_a_card(
    space_name: str, trained: Callable[[str], tuple[Study, int]], tmp_path: Path
) -> None:
    study, number = trained(space_name)
    trial = study.trial(number)
    out = tmp_path / "bundle"
    result = export_model(
        study.name,
        storage=study.storage.url,
        trial=number,
        formats="all",
        out=out,
        latency_repeats=LATENCY_REPEATS,
        progress=False,
    )
    assert {p.name for p in out.iterdir()} == BUNDLE and not leftovers(out)
    assert result.directory == out.absolute() and result.trial == number
    assert set(result.parity) == {"pytorch", "torchscript", "onnx"}
    assert all(0.0 <= diff <= 1e-4 for diff in result.parity.values())

    card = json.loads((out / "card.json").read_text())
    space, arch = study.space, trial.arch
    dataset = load_dataset(SYNTHETIC, seed=0)
    assert card["study"]["name"] == study.name and card["study"]["space_options"] == study.space_options
    assert card["trial"]["number"] == number and card["trial"]["state"] == "COMPLETE"
    assert card["trial"]["values"] == pytest.approx(dict(trial.values))
    assert card["architecture"]["string"] == space.format(arch)
    assert card["architecture"]["canonical_key"] == space.canonical_key(arch)
    assert card["weights"]["kind"] == "stored"
    stats = space.stats(arch, input_shape=dataset.input_shape, num_classes=dataset.num_classes)
    assert (card["model"]["params"], card["model"]["flops"]) == (stats.params, stats.flops)
    assert card["model"]["input_shape"] == list(dataset.input_shape)
    assert card["preprocessing"] == dataset.preprocessing
    assert set(card["latency"]["ms"]) == {"pytorch", "torchscript", "onnxruntime"}
    assert all(ms > 0 for ms in card["latency"]["ms"].values())
    assert card["formats"]["onnx"]["opset"] >= 17
    assert card["formats"]["torchscript"]["method"] in ("script", "trace")
    assert {"nas", "torch", "onnx", "onnxruntime"} <= set(card["platform"])
    assert set(card["files"]) == BUNDLE - {"card.json"}
    for name, digest in card["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    genotype = json.loads((out / "genotype.json").read_text())
    assert Architecture.from_dict({"space": genotype["space"], "decisions": genotype["decisions"]}) == arch
    assert space.parse(genotype["string"]) == arch

    exported = load_exported(out)
    assert exported.arch == arch and exported.input_shape == dataset.input_shape
    # Test accuracy, recomputed independently from the reloaded model and the test split.
    _, accuracy = evaluate(
        exported.model, dataset.x_test, dataset.y_test, torch.device("cpu"), Precision(False)
    )
    assert card["test"]["accuracy"] == pytest.approx(accuracy) and card["test"]["samples"] == 40
    assert result.test_accuracy == pytest.approx(accuracy)
    # model.pt is a plain state dict, and every format computes the same logits at another batch size.
    state = torch.load(out / "model.pt", weights_only=True)
    assert state.keys() == exported.model.state_dict().keys()
    x = torch.randn(5, *dataset.input_shape, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        reference = exported.model(x).numpy()
        scripted = exported.torchscript()(x).numpy()
    onnx_out = exported.onnx_session().run(["logits"], {"input": x.numpy()})[0]
    assert reference.shape == (5, 4)
    np.testing.assert_allclose(scripted, reference, atol=1e-4, rtol=0)
    np.testing.assert_allclose(onnx_out, reference, atol=1e-4, rtol=0)
    readme = (out / "README.md").read_text()
    assert study.name in readme and space.format(arch) in readme and card["files"]["model.onnx"] in readme


def test_formats_select_files_and_pytorch_is_always_written(
    trained: Callable[[str], tuple[Study, int]], tmp_path: Path
) -> None:
    study, number = trained("hybrid")
    result = export_model(
        study, trial=number, formats="onnx", out=tmp_path / "b", latency_repeats=1, progress=False
    )
    assert result.formats == ("pytorch", "onnx")
    assert {p.name for p in (tmp_path / "b").iterdir()} == BUNDLE - {"model.ts"}
    assert set(result.latency_ms) == {"pytorch", "onnxruntime"}
    exported = load_exported(tmp_path / "b")
    with pytest.raises(ExportError, match="no torchscript model"):
        exported.torchscript()


def test_parse_formats() -> None:
    assert parse_formats("all") == ("pytorch", "torchscript", "onnx")
    assert parse_formats("onnx") == ("pytorch", "onnx")
    assert parse_formats(["ONNX", "torchscript"]) == ("pytorch", "torchscript", "onnx")
    assert parse_formats("torchscript,pytorch") == ("pytorch", "torchscript")
    with pytest.raises(UnknownNameError, match="'onx'.*Did you mean 'onnx'"):
        parse_formats("onx")
    with pytest.raises(ConfigError, match="no export format"):
        parse_formats([])


def test_input_shape_override_changes_the_model_and_skips_test_accuracy(
    trained: Callable[[str], tuple[Study, int]], tmp_path: Path
) -> None:
    study, number = trained("nb201")  # global pooling: the same weights run at 16x16
    result = export_model(
        study, trial=number, out=tmp_path / "b", input_shape=(1, 16, 16), latency_repeats=1, progress=False
    )
    card = result.card
    assert card["model"]["input_shape"] == [1, 16, 16] and card["preprocessing"]["input_shape"] == [1, 16, 16]
    assert result.test_accuracy is None and "differs from the dataset" in card["test"]["note"]
    assert all(diff <= 1e-4 for diff in result.parity.values())
    assert load_exported(tmp_path / "b").input_shape == (1, 16, 16)


# -- weights: stored, tampered, missing ---------------------------------------------------------------------


def test_tampered_bundle_file_is_named_by_load_exported(nb201_bundle: Path, tmp_path: Path) -> None:
    for name in ("model.pt", "model.onnx", "genotype.json"):
        copy = tmp_path / name
        shutil.copytree(nb201_bundle, copy)
        data = bytearray((copy / name).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (copy / name).write_bytes(bytes(data))
        with pytest.raises(ChecksumError, match=rf"{name}.*does not match its sha256") as info:
            load_exported(copy)
        assert info.value.path == str(copy / name)
    missing = tmp_path / "missing"
    shutil.copytree(nb201_bundle, missing)
    (missing / "model.ts").unlink()
    with pytest.raises(ChecksumError, match=r"model.ts is missing"):
        load_exported(missing)
    load_exported(nb201_bundle)  # the original is intact


def test_card_listing_foreign_paths_is_refused(nb201_bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "b"
    shutil.copytree(nb201_bundle, copy)
    card = json.loads((copy / "card.json").read_text())
    card["files"]["../outside.txt"] = "0" * 64
    (copy / "card.json").write_text(json.dumps(card))
    with pytest.raises(ExportError, match="unexpected file '../outside.txt'"):
        load_exported(copy)
    with pytest.raises(ConfigError, match="does not exist"):
        load_exported(tmp_path / "nowhere")


def test_tampered_stored_weights_are_refused(url: str, workdir: Path, tmp_path: Path) -> None:
    options, text = SPACES["nb201"]
    study = make_study(url, "export-tampered", "nb201", options)
    number = add_trained_trial(study, study.space.parse(text), workdir / "tampered")
    weights = path_from_uri(study.artifacts(number)[0].uri)
    weights.write_bytes(weights.read_bytes() + b"\0")
    out = tmp_path / "b"
    with pytest.raises(ChecksumError, match=rf"{weights.name}.*recorded sha256.*--retrain"):
        export_model(study, trial=number, out=out, progress=False)
    assert not out.exists() and not leftovers(out)
    weights.unlink()
    with pytest.raises(ExportError, match=r"no longer exists.*--retrain EPOCHS"):
        export_model(study, trial=number, out=out, progress=False)


def test_missing_weights_are_retrained_reproducibly(
    url: str, workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options, text = SPACES["nb201"]
    study = make_study(url, "export-retrain", "nb201", options)
    number = add_trained_trial(
        study, study.space.parse(text), workdir / "retrain", store_weights=False, seed=3
    )
    assert not study.artifacts(number)
    first = export_model(study, trial=number, out=tmp_path / "a", latency_repeats=1, progress=False)
    weights = first.card["weights"]
    assert (
        weights["kind"] == "retrained" and weights["epochs"] == EVALUATOR["epochs"] and weights["seed"] == 3
    )
    # The study's settings, data split and trial seed reproduce the search's own training run.
    assert weights["values"]["val_accuracy"] == pytest.approx(study.trial(number).values["val_accuracy"])
    assert all(diff <= 1e-4 for diff in first.parity.values())
    # And again: the same weights, byte for byte.
    second = export_model(study, trial=number, out=tmp_path / "b", latency_repeats=1, progress=False)
    assert second.files["model.pt"] == first.files["model.pt"]
    capsys.readouterr()
    longer = export_model(study, trial=number, out=tmp_path / "c", retrain_epochs=2, latency_repeats=1)
    assert longer.card["weights"]["epochs"] == 2 and longer.files["model.pt"] != first.files["model.pt"]
    progress = capsys.readouterr().err
    assert f"retraining trial {number}" in progress and "2/2" in progress


# -- output directory and atomicity -----------------------------------------------------------------------------


def test_existing_output_is_refused_unless_forced(
    trained: Callable[[str], tuple[Study, int]], tmp_path: Path
) -> None:
    study, number = trained("nb201")
    out = tmp_path / "b"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="already exists.*--force"):
        export_model(study, trial=number, out=out, progress=False)
    with pytest.raises(ConfigError, match=r"--force refuses to replace .*'keep.txt'"):
        export_model(study, trial=number, out=out, force=True, progress=False)  # not a bundle
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and not leftovers(out)
    out = tmp_path / "bundle"
    export_model(study, trial=number, out=out, formats="pytorch", latency_repeats=1, progress=False)
    export_model(study, trial=number, out=out, force=True, latency_repeats=1, progress=False)
    assert {p.name for p in out.iterdir()} == BUNDLE and not leftovers(out)  # a bundle is replaced
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        export_model(study, trial=number, out=afile, force=True, progress=False)


class ToyNet(nn.Module):
    """A small CNN whose head does something an exporter may get wrong."""

    def __init__(self, width: int, kind: str, num_classes: int, channels: int) -> None:
        super().__init__()
        self.kind = kind
        self.conv = nn.Conv2d(channels, width, 3, padding=1)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x))
        if self.kind == "cummax":
            y = torch.cummax(y, dim=2)[0]  # no ONNX opset 17 equivalent
        y = self.head(y.mean(dim=(2, 3)))
        if self.kind == "batch_branch" and x.shape[0] > 1:
            y = -y  # a trace at batch 1 bakes in the other branch
        return y


class ToySpace(TorchSpace):
    """An unregistered one-decision space for export failure cases."""

    name = "export_toy"

    def __init__(self, kind: str) -> None:
        self.kind = kind

    @property
    def options(self) -> dict[str, Any]:
        return {"kind": self.kind}

    def choices(self) -> dict[str, Sequence[Any]]:
        return {"width": (4, 8)}

    def to_graph(self, arch: Architecture) -> nx.DiGraph:
        graph = nx.DiGraph()
        graph.add_node(0, op=f"conv{arch['width']}")
        return graph

    def parse(self, text: str) -> Architecture:
        if not text.startswith("w") or not text[1:].isdigit():
            raise ArchitectureError(f"bad toy string {text!r}")
        return self.make({"width": int(text[1:])})

    def format(self, arch: Architecture) -> str:
        return f"w{arch['width']}"

    def build(
        self, arch: Architecture, num_classes: int = 10, input_shape: tuple[int, int, int] = (3, 32, 32)
    ) -> nn.Module:
        return ToyNet(int(arch["width"]), self.kind, num_classes, input_shape[0])


def toy_study(url: str, kind: str, workdir: Path) -> tuple[Study, int]:
    """A study without a stored config (so without a dataset) whose one trial has trained weights."""
    study = nas.create_study(f"export-toy-{kind}", url, space=ToySpace(kind))
    number = add_trained_trial(study, study.space.parse("w4"), workdir / kind)
    return study, number


def test_an_op_onnx_cannot_express_fails_cleanly(
    url: str, workdir: Path, nb201_bundle: Path, tmp_path: Path
) -> None:
    study, number = toy_study(url, "cummax", workdir)
    out = tmp_path / "b"
    with pytest.raises(ConversionError, match=r"aten::cummax.*--format pytorch --format torchscript") as info:
        export_model(study, trial=number, out=out, progress=False)
    assert info.value.format == "onnx"
    assert not out.exists() and not leftovers(out)
    # With --force, an old bundle survives a failed re-export untouched.
    old = tmp_path / "old"
    shutil.copytree(nb201_bundle, old)
    with pytest.raises(ConversionError):
        export_model(study, trial=number, out=old, force=True, progress=False)
    assert load_exported(old).arch.space == "nb201" and not leftovers(old)
    # The formats the message suggests do work; without a dataset there is no test accuracy.
    result = export_model(
        study, trial=number, formats="pytorch,torchscript", out=out, latency_repeats=1, progress=False
    )
    assert result.test_accuracy is None and "no dataset" in result.card["test"]["note"]
    assert result.card["model"]["input_shape"] == [1, 8, 8]  # recorded by the trial
    assert verify_bundle(out)["formats"].keys() == {"pytorch", "torchscript"}
    # Loading rebuilds through the space registry, where this test space is not.
    with pytest.raises(ExportError, match="unknown search space 'export_toy'"):
        load_exported(out)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # the warning this test is about
def test_parity_failure_fails_loudly_and_writes_nothing(url: str, workdir: Path, tmp_path: Path) -> None:
    study, number = toy_study(url, "batch_branch", workdir)
    out = tmp_path / "b"
    with pytest.raises(ParityError, match=r"onnx parity check failed.*allowed: 0.0001") as info:
        export_model(study, trial=number, out=out, progress=False)
    assert info.value.format == "onnx" and info.value.max_abs_diff > 1e-4
    assert not out.exists() and not leftovers(out)
    # TorchScript scripts the branch correctly, so it passes on its own.
    result = export_model(
        study, trial=number, formats="torchscript", out=out, latency_repeats=1, progress=False
    )
    assert result.card["formats"]["torchscript"]["method"] == "script"


# -- choosing the trial --------------------------------------------------------------------------------------------


def test_failed_and_unknown_trials_and_studies_are_refused(
    trained: Callable[[str], tuple[Study, int]], tmp_path: Path
) -> None:
    study, number = trained("nb201")
    failed = study.ask(study.trial(number).arch)
    study.tell(failed, state=TrialState.FAIL, error="Traceback ...\nRuntimeError: out of memory")
    out = tmp_path / "b"
    with pytest.raises(
        ConfigError, match=rf"trial {failed.number} .* is FAIL \(error: RuntimeError: out of memory\)"
    ):
        export_model(study, trial=failed.number, out=out, progress=False)
    with pytest.raises(ConfigError, match="no trial number 999"):
        export_model(study, trial=999, out=out, progress=False)
    with pytest.raises(ConfigError, match="no study named 'no-such-study'"):
        export_model("no-such-study", storage=study.storage.url, best=True, out=out, progress=False)
    with pytest.raises(ConfigError, match="--trial N, or --best"):
        export_model(study, out=out, progress=False)
    with pytest.raises(ConfigError, match="not both"):
        export_model(study, trial=number, best=True, out=out, progress=False)
    with pytest.raises(ConfigError, match="parity tolerance 2"):
        export_model(study, trial=number, out=out, parity_tolerance=2, progress=False)
    assert not out.exists() and not leftovers(out)


def test_best_with_several_objectives_lists_the_pareto_set(url: str, workdir: Path, tmp_path: Path) -> None:
    objectives = {"val_accuracy": "max", "latency_ms": "min"}
    study = make_study(url, "export-multi", "nb201", SPACES["nb201"][0], objectives)
    for seed in range(3):
        add_trained_trial(study, study.space.sample(seed), workdir / "multi", seed=seed)
    trials = study.trials()

    def dominated(t: Any) -> bool:
        accuracy, latency = t.value("val_accuracy"), t.value("latency_ms")
        return any(
            o.value("val_accuracy") >= accuracy
            and o.value("latency_ms") <= latency
            and (o.value("val_accuracy"), o.value("latency_ms")) != (accuracy, latency)
            for o in trials
        )

    pareto = {t.number for t in trials if not dominated(t)}
    with pytest.raises(AmbiguousBestError, match="Pareto set.*--objective NAME") as info:
        export_model(study, best=True, out=tmp_path / "b", progress=False)
    assert {t.number for t in info.value.pareto} == pareto
    for number in pareto:
        assert f"trial {number} (val_accuracy" in str(info.value)
    with pytest.raises(UnknownNameError, match="'accuracy'"):
        export_model(study, best=True, objective="accuracy", out=tmp_path / "b", progress=False)
    fastest = min(trials, key=lambda t: (t.value("latency_ms"), t.number)).number
    result = export_model(
        study, best=True, objective="latency_ms", out=tmp_path / "b", latency_repeats=1, progress=False
    )
    assert result.trial == fastest


# -- the dashboard's archive and the CLI --------------------------------------------------------------------------


def test_export_archive_is_a_zip_of_a_loadable_bundle(
    trained: Callable[[str], tuple[Study, int]], tmp_path: Path
) -> None:
    study, number = trained("hybrid")
    data = export_archive(study.name, number, storage=study.storage.url)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = set(archive.namelist())
        assert names == {f"{study.name}-trial{number}/{name}" for name in BUNDLE}
        archive.extractall(tmp_path)
    exported = load_exported(tmp_path / f"{study.name}-trial{number}")
    assert exported.arch == study.trial(number).arch
    failed = study.ask(exported.arch)
    study.tell(failed, state=TrialState.FAIL, error="boom")
    with pytest.raises(ConfigError, match="is FAIL"):
        export_archive(study.name, failed.number, storage=study.storage.url)


def test_an_export_is_recorded_on_its_trial_and_a_download_is_not(
    url: str, workdir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    options, text = SPACES["nb201"]
    study = make_study(url, "export-recorded", "nb201", options)
    number = add_trained_trial(study, study.space.parse(text), workdir)

    def exports() -> list[Any]:
        return [a for a in study.artifacts(number) if a.kind == EXPORT_ARTIFACT]

    export_archive(study.name, number, storage=study.storage.url, formats="pytorch")
    assert exports() == []  # the dashboard's download: a temporary folder from a read-only store
    out = tmp_path / "shipped"
    export_model(study, trial=number, out=out, formats="pytorch", latency_repeats=1, progress=False)
    (record,) = exports()
    assert path_from_uri(record.uri) == out
    assert record.sha256 == hashlib.sha256((out / "card.json").read_bytes()).hexdigest()
    # A store that cannot take the record costs a warning, not the bundle.
    with nas.store.open_readonly(study.storage.url) as store:
        readonly = nas.load_study(study.name, storage=store)
        export_model(
            readonly,
            trial=number,
            out=tmp_path / "again",
            formats="pytorch",
            latency_repeats=1,
            progress=False,
        )
    assert (tmp_path / "again" / "card.json").is_file() and len(exports()) == 1
    assert f"the export of trial {number} is not recorded in the store" in caplog.text


def test_cli_export(trained: Callable[[str], tuple[Study, int]], tmp_path: Path) -> None:
    study, number = trained("nb201")
    out = tmp_path / "cli"
    args = ["export", study.name, "--trial", str(number), "--out", str(out), "--storage", study.storage.url]
    result = CliRunner().invoke(main, [*args, "--format", "onnx", "--format", "torchscript"])
    assert result.exit_code == 0, result.output
    assert "exported to" in result.output and "onnxruntime" in result.output and "model.onnx" in result.output
    assert {p.name for p in out.iterdir()} == BUNDLE
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2 and again.output.count("\n") == 1 and "already exists" in again.output
    shape = CliRunner().invoke(main, [*args, "--force", "--input-shape", "1,8"])
    assert shape.exit_code == 2 and "C,H,W" in shape.output


@pytest.mark.slow
@pytest.mark.ray
def test_search_then_export_the_best_on_digits(tmp_path: Path) -> None:
    """End to end: ``nas search`` stores weights through Ray, ``nas export --best`` ships them."""
    ray = pytest.importorskip("ray")
    from nas.runner import run_search
    from nas.runner.cluster import connect

    url = f"sqlite:///{tmp_path / 'nas.db'}"
    config = {
        "name": "digits-export",
        "space": {"name": "nb201", "channels": 4, "cells": 1},
        "dataset": {"name": "digits"},
        "strategy": {"name": "random"},
        "evaluator": {"name": "train", "epochs": 2, "batch_size": 64, "lr": 0.05, "latency_repeats": 2},
        "budget": {"trials": 2, "concurrent": 2},
    }
    connect(None, num_cpus=2)
    try:
        run_search(config, storage=url, show_progress=False)
    finally:
        ray.shutdown()
    study = nas.load_study("digits-export", storage=url)
    out = tmp_path / "bundle"
    result = CliRunner().invoke(main, ["export", study.name, "--best", "--out", str(out), "--storage", url])
    assert result.exit_code == 0, result.output
    card = load_exported(out).card
    assert card["trial"]["number"] == study.best_trial.number and card["weights"]["kind"] == "stored"
    assert card["model"]["input_shape"] == [1, 8, 8] and card["test"]["samples"] == 359
    assert card["test"]["accuracy"] > 50.0  # ten classes: chance is 10%
