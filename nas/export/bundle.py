"""``export_model``: a trial of a study becomes a deployable, self-describing bundle.

The steps, in order, each failing loudly:

1. pick the trial (``--trial N`` or ``--best``) and check it is COMPLETE;
2. get its weights (stored and checksum-verified, or retrained: on the
   study's ``resources.workers`` Ray Train workers, or ``workers``);
3. rebuild the model, measure test accuracy, parameters and FLOPs;
4. in a temporary sibling of the output directory, write ``genotype.json``
   and each format, read every format back and check parity with the
   PyTorch model, measure latency, write ``README.md`` and ``card.json``;
5. rename the temporary directory into place;
6. record the export on the trial (an ``export`` artifact: the bundle's
   folder and its card's sha256), so the store answers "which trial was
   exported for which target" (the dashboard's devices view shows it).

Nothing is written to the output path before step 5, and a failure at any
step removes the temporary directory, so there is never a half bundle.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError, StorageError
from nas.core.space import SearchSpace
from nas.core.trial import Trial
from nas.export.card import (
    BUNDLE_VERSION,
    CARD_FILE,
    GENOTYPE_FILE,
    README_FILE,
    platform_versions,
    render_readme,
    to_json,
)
from nas.export.context import ExportData, resolve_data
from nas.export.files import check_not_store, check_target, sha256_file, staged_directory
from nas.export.formats import (
    FILES,
    load_torchscript,
    onnx_runner,
    onnx_session,
    parse_formats,
    torch_runner,
    write_onnx,
    write_pytorch,
    write_torchscript,
)
from nas.export.latency import DEFAULT_REPEATS, DEFAULT_WARMUP, LATENCY_THREADS, measure_latency
from nas.export.parity import BATCH_SIZES, TOLERANCE, check_parity, parity_inputs
from nas.export.selection import select_trial
from nas.export.stored import read_stored_config
from nas.export.weights import (
    Weights,
    Workers,
    WorkerTraining,
    build_model,
    read_state_dict,
    retrain,
    stored_weights,
)
from nas.store.records import EXPORT_ARTIFACT
from nas.store.study import Study, load_study

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportResult:
    """Where the bundle went and what the export measured (the card holds everything else)."""

    directory: Path
    study: str
    trial: int
    formats: tuple[str, ...]
    #: Max abs logit difference to PyTorch eager per format (``pytorch`` = the reloaded ``model.pt``).
    parity: Mapping[str, float]
    #: Median batch-1 latency in ms per engine.
    latency_ms: Mapping[str, float]
    test_accuracy: float | None
    card: Mapping[str, Any] = field(repr=False)

    @property
    def files(self) -> dict[str, str]:
        """File name -> sha256 of every file in the bundle except ``card.json``."""
        return dict(self.card["files"])


def export_model(
    study: str | Study,
    *,
    trial: int | None = None,
    best: bool = False,
    objective: str | None = None,
    formats: str | Iterable[str] = "all",
    out: str | Path,
    storage: str | None = None,
    retrain_epochs: int | None = None,
    input_shape: tuple[int, int, int] | None = None,
    force: bool = False,
    progress: bool = True,
    latency_repeats: int = DEFAULT_REPEATS,
    parity_tolerance: float = TOLERANCE,
    record: bool = True,
    workers: int | None = None,
    on_workers: WorkerTraining | None = None,
) -> ExportResult:
    """Export one trial of ``study`` (a name or a :class:`~nas.store.study.Study`) as a bundle in ``out``.

    ``trial=N`` or ``best=True`` (with ``objective`` when the study has
    several) chooses the trial. ``formats``: ``"all"`` or any of
    ``"pytorch"``, ``"torchscript"``, ``"onnx"`` (``model.pt`` is always
    written: the bundle is rebuilt from it). ``retrain_epochs`` retrains even
    when weights are stored; ``input_shape`` (C, H, W) overrides the dataset's.
    ``out`` must not exist unless ``force`` and it holds a previous bundle
    (nothing else); it may never be or contain the store's SQLite file or
    artifacts folder. ``progress`` shows a progress bar while retraining.
    ``parity_tolerance`` is the largest max abs logit
    difference a format may show against PyTorch (raise it only for models
    with very large logits, where float32 rounding alone can exceed 1e-4).
    ``record`` adds an ``export`` artifact to the trial once the bundle is in
    place (:func:`record_export`); the dashboard's download passes False (its
    bundle is a temporary folder, and it only reads the store).
    ``workers`` is how many data-parallel workers retrain (default: the
    study's ``resources.workers``, each with its ``cpu`` and
    ``gpu_per_worker``); more than one runs through ``on_workers``
    (:class:`nas.runner.retraining.RayRetraining`, which ``nas export`` passes).
    """
    chosen_formats = parse_formats(formats)
    target = Path(out).expanduser().absolute()
    check_target(target, force=force)  # before any work: a refusal should be instant
    if retrain_epochs is not None and (
        isinstance(retrain_epochs, bool) or not isinstance(retrain_epochs, int) or retrain_epochs < 1
    ):
        raise ConfigError(f"retrain epochs {retrain_epochs!r} is not allowed; expected an integer >= 1")
    if (
        isinstance(parity_tolerance, bool)
        or not isinstance(parity_tolerance, int | float)
        or not 0 < parity_tolerance < 1
    ):
        raise ConfigError(
            f"parity tolerance {parity_tolerance!r} is not allowed; expected a number in (0, 1)"
        )
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"workers={workers!r} is not allowed; expected an integer >= 1")
    if isinstance(latency_repeats, bool) or not isinstance(latency_repeats, int) or latency_repeats < 1:
        raise ConfigError(f"latency_repeats={latency_repeats!r} is not allowed; expected an integer >= 1")
    opened = _open(study, storage)
    check_not_store(target, opened.storage.url)
    chosen = select_trial(opened, trial=trial, best=best, objective=objective)
    space = opened.space
    config = read_stored_config(opened)  # never load_config: that would import the config's plugins
    label = f"trial {chosen.number} of study {opened.name!r}"

    weights = None if retrain_epochs is not None else stored_weights(opened, chosen)
    if weights is not None and workers is not None and workers > 1:
        logger.info("%s has stored weights: nothing to retrain on workers=%d", label, workers)
    data = resolve_data(opened, chosen, config, input_shape, need_training=weights is None)
    if weights is None:
        stored = config.resources
        team = Workers(stored.workers if workers is None else workers, stored.cpu, stored.gpu_each)
        logger.info("%s: retraining (%s)", label, "asked" if retrain_epochs else "no stored weights")
        weights = retrain(
            space,
            chosen.arch,
            data,
            config.train_settings(retrain_epochs, chosen.system_attrs.get("recipe")),
            seed=chosen.seed,
            data_seed=config.data_seed,
            label=label,
            progress=progress,
            workers=team,
            on_workers=on_workers,
        )
    model = build_model(space, chosen.arch, data.num_classes, data.input_shape, weights.state)
    test = _test_accuracy(model, data)

    with staged_directory(target, force=force) as staging:
        card = _write_bundle(
            staging,
            opened,
            chosen,
            space,
            model,
            data,
            weights,
            test,
            chosen_formats,
            latency_repeats,
            float(parity_tolerance),
        )
    logger.info("exported %s to %s", label, target)
    if record:
        record_export(opened, chosen, target)
    return ExportResult(
        directory=target,
        study=opened.name,
        trial=chosen.number,
        formats=chosen_formats,
        parity=dict(card["parity"]["max_abs_diff"]),
        latency_ms=dict(card["latency"]["ms"]),
        test_accuracy=card["test"]["accuracy"],
        card=card,
    )


def record_export(study: Study, trial: Trial, folder: Path) -> None:
    """Record on ``trial`` that it was exported to ``folder`` (an ``export`` artifact with the card's sha256).

    The bundle is already complete and verified, so a store that cannot take
    the record (opened read-only, unreachable) costs a warning, not the export.
    """
    try:
        study.add_artifact(trial, EXPORT_ARTIFACT, folder.as_uri(), sha256_file(folder / CARD_FILE))
    except StorageError as exc:
        logger.warning("the export of trial %d is not recorded in the store: %s", trial.number, exc)


def _open(study: str | Study, storage: str | None) -> Study:
    if isinstance(study, Study):
        if storage is not None:
            raise ConfigError("pass a storage URL only with a study name, not with a Study object")
        return study
    if not isinstance(study, str) or not study:
        raise ConfigError(f"study must be a study name or a Study, got {study!r}")
    from nas.store import resolve_storage_url

    return load_study(study, storage=resolve_storage_url(storage))


@torch.no_grad()
def _test_accuracy(model: nn.Module, data: ExportData) -> dict[str, Any]:
    """Accuracy and loss on the dataset's test split (the only place the test split is read)."""
    from nas.training import Precision, evaluate

    split = data.test_split
    if split is None:
        return {"accuracy": None, "loss": None, "samples": 0, "note": data.test_note}
    x_test, y_test = split
    loss, accuracy = evaluate(model, x_test, y_test, torch.device("cpu"), Precision(False))
    return {"accuracy": accuracy, "loss": loss, "samples": int(len(y_test)), "note": None}


def genotype_document(
    study: Study, space: SearchSpace, arch: Architecture, data: ExportData
) -> dict[str, Any]:
    """``genotype.json``: enough to rebuild the model from its search space, and nothing else."""
    return {
        "bundle_version": BUNDLE_VERSION,
        "space": arch.space,
        "space_options": study.space_options,
        "decisions": arch.as_dict(),
        "string": space.format(arch),
        "canonical_key": space.canonical_key(arch),
        "key": arch.key,
        "num_classes": data.num_classes,
        "input_shape": list(data.input_shape),
    }


def _write_bundle(
    folder: Path,
    study: Study,
    trial: Trial,
    space: SearchSpace,
    model: nn.Module,
    data: ExportData,
    weights: Weights,
    test: Mapping[str, Any],
    formats: tuple[str, ...],
    latency_repeats: int,
    tolerance: float,
) -> dict[str, Any]:
    arch = trial.arch
    genotype = genotype_document(study, space, arch, data)
    (folder / GENOTYPE_FILE).write_text(to_json(genotype), encoding="utf-8")
    example = torch.from_numpy(parity_inputs(data.input_shape, batch_sizes=(1,), seed=1)[0])
    what = f"the {space.name} model of trial {trial.number}"

    info: dict[str, dict[str, Any]] = {}
    candidates = {}
    engines = {"pytorch": torch_runner(model)}
    for fmt in formats:
        path = folder / FILES[fmt]
        if fmt == "pytorch":
            info[fmt] = write_pytorch(model, path)
            state = read_state_dict(path, what=f"the bundle's {path.name}")
            candidates[fmt] = torch_runner(
                build_model(space, arch, data.num_classes, data.input_shape, state)
            )
        elif fmt == "torchscript":
            info[fmt] = write_torchscript(model, example, path)
            scripted = load_torchscript(path)
            candidates[fmt] = engines["torchscript"] = torch_runner(scripted)
        else:
            info[fmt] = write_onnx(model, example, path, what=what)
            candidates[fmt] = engines["onnxruntime"] = onnx_runner(
                onnx_session(path, threads=LATENCY_THREADS)
            )

    parity = check_parity(torch_runner(model), candidates, parity_inputs(data.input_shape), tolerance)
    latency = measure_latency(engines, data.input_shape, repeats=latency_repeats, warmup=DEFAULT_WARMUP)
    from search_spaces.base import count_flops, count_params

    card: dict[str, Any] = {
        "bundle_version": BUNDLE_VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "study": {
            "name": study.name,
            "space": study.space_name,
            "space_options": study.space_options,
            "objectives": {name: d.value for name, d in study.objectives.items()},
            "storage": _masked(study),
        },
        "trial": {
            "number": trial.number,
            "state": trial.state.value,
            "values": dict(trial.values or {}),
            "seed": trial.seed,
            "budget": trial.budget,
            "user_attrs": dict(trial.user_attrs),
            "system_attrs": dict(trial.system_attrs),
            "finished_at": trial.finished_at.isoformat() if trial.finished_at else None,
        },
        "architecture": {
            "space": arch.space,
            "decisions": arch.as_dict(),
            "string": genotype["string"],
            "canonical_key": genotype["canonical_key"],
            "key": arch.key,
        },
        # The training recipe the trial was trained with, if a recipe-searching strategy chose one.
        "recipe": dict(trial.system_attrs["recipe"]) if trial.system_attrs.get("recipe") else None,
        "weights": dict(weights.source),
        "test": dict(test),
        "model": {
            "params": count_params(model),
            "flops": count_flops(model, data.input_shape),
            "num_classes": data.num_classes,
            "input_shape": list(data.input_shape),
            "input": {"name": "input", "dtype": "float32", "shape": ["batch", *data.input_shape]},
            "output": {"name": "logits", "dtype": "float32", "shape": ["batch", data.num_classes]},
        },
        "preprocessing": dict(data.preprocessing) if data.preprocessing is not None else None,
        "dataset": data.dataset.summary() if data.dataset is not None else None,
        "formats": info,
        "parity": {
            "tolerance": tolerance,
            "batch_sizes": list(BATCH_SIZES),
            "reference": "pytorch eager (the model the weights were loaded into)",
            "max_abs_diff": parity,
        },
        "latency": latency,
        "specialization": specialization(trial, latency),
        "platform": platform_versions(),
    }
    files = {name: sha256_file(folder / name) for name in [GENOTYPE_FILE, *(FILES[f] for f in formats)]}
    (folder / README_FILE).write_text(render_readme(card, files), encoding="utf-8")
    card["files"] = {**files, README_FILE: sha256_file(folder / README_FILE)}
    (folder / CARD_FILE).write_text(to_json(card), encoding="utf-8")
    return json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))


def specialization(trial: Trial, latency: Mapping[str, Any]) -> dict[str, Any] | None:
    """The device target of a specialised sub-network (``nas specialize``), ``None`` for other trials.

    The device and its budget, the latency the device's model predicted and,
    for ``local`` (this machine), the ONNX Runtime latency measured by this
    export beside it: the prediction is the lookup table's, the measurement
    is the whole model's.
    """
    system, user = trial.system_attrs, trial.user_attrs
    if system.get("kind") != "specialized" or "device" not in system:
        return None
    predicted = user.get("predicted_latency_ms")
    measured = latency["ms"].get("onnxruntime") if system["device"] == "local" else None
    ratio = measured / predicted if measured is not None and predicted else None
    return {
        "device": system["device"],
        "max_latency_ms": system.get("max_latency_ms"),
        "predicted_latency_ms": predicted,
        "measured_latency_ms": measured,
        "measured_over_predicted": ratio,
        "latency_model": user.get("latency_model"),
        "supernet": {"study": system.get("derived_from_study"), "trial": system.get("derived_from")},
        "inherited_accuracy": user.get("inherited_accuracy"),
        "finetune_epochs": user.get("finetune_epochs"),
    }


def _masked(study: Study) -> str:
    from nas.store import mask_url

    return mask_url(study.storage.url)


__all__ = ["ExportResult", "export_model", "genotype_document"]
