"""Specialisation without retraining: a sub-network of a trained elastic supernet per device and budget.

BigNAS trains one supernet whose sub-networks are accurate with the weights
they inherit (:mod:`nas.oneshot.bignas`). Serving a phone, a server CPU and an
accelerator then needs no new training, only a search per target over the
sub-networks, which is cheap: a candidate costs a BatchNorm recalibration on
a few batches and one pass over held-out images
(:meth:`~nas.oneshot.bignas.BignasMethod.score`), and its latency on the
device is *predicted* (:mod:`nas.specialize.latency`), so a candidate over
the budget is never scored at all.

The search of each target is an ordinary ask/tell strategy (``evolution`` on
inherited accuracy, or ``nsga2`` on accuracy and latency), given the budget as
a hard constraint ``latency_ms <= budget`` on the predictor: every proposal,
and so every stored candidate, is within the budget by construction.

What is stored, in a study of its own (``<study>-specialized`` unless named;
its objectives ``val_accuracy`` (max) and ``latency_ms`` (min)):

* every scored sub-network as a COMPLETE trial, ``system_attrs.kind =
  "candidate"``, with ``derived_from`` (the supernet trial's number),
  ``derived_from_study``, ``device``, ``max_latency_ms`` and ``target``; its
  values are the inherited accuracy (on the supernet's held-out search images)
  and the predicted latency;
* per target, the selected sub-network (the most accurate candidate, the
  faster one on ties) as a trial of kind ``"specialized"`` with its weights
  stored (BatchNorm recalibrated, fine-tuned for ``finetune_epochs`` if asked)
  as a ``weights`` artifact, so ``nas export`` ships it like any trial. Its
  ``val_accuracy`` is measured on the dataset's validation split, which the
  search never read; for ``--device local`` its ONNX Runtime latency is
  measured too.

A separate study keeps inherited-weight scores out of the supernet study's
best trials and out of result reuse (they are not stand-alone training
results). A killed specialisation resumes by running the same command: each
target's stored candidates are replayed into its strategy (``warm_start``,
which continues the same proposal sequence), and only the missing ones are
scored; a target whose selected sub-network is stored is not extracted
again (unless a rerun with more ``candidates`` found a better one, which is
then stored beside it).
"""

from __future__ import annotations

import logging
import tempfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.core.architecture import Architecture
from nas.core.errors import ConfigError
from nas.core.trial import Trial, TrialState
from nas.settings.specialize import SpecializeConfig, TargetConfig
from nas.specialize.checks import (
    check_budget,
    check_elastic,
    check_latency_model,
    check_settings,
    open_study,
    search_config,
)
from nas.specialize.checks import supernet_trial as find_supernet
from nas.specialize.latency import device_model
from nas.specialize.model import LOCAL, LatencyModel
from nas.specialize.supernet import load_supernet
from nas.store.study import Study

logger = logging.getLogger(__name__)

#: The specialisation study's objectives: inherited (or fine-tuned) accuracy and predicted latency.
OBJECTIVES = {"val_accuracy": "max", "latency_ms": "min"}
#: ``system_attrs.kind`` of a scored sub-network and of a target's selected one.
CANDIDATE, SPECIALIZED = "candidate", "specialized"
#: Default name of the specialisation study of study ``S``.
STUDY_SUFFIX = "-specialized"

#: ``progress(target, done, total)`` after every candidate.
Progress = Callable[[TargetConfig, int, int], None]


@dataclass(frozen=True)
class TargetResult:
    """What one target got: its selected sub-network's trial and how it was found."""

    target: TargetConfig
    trial: Trial
    candidates: int
    #: Candidates that were already stored (a resumed run), not scored again.
    reused: int
    predicted_latency_ms: float
    inherited_accuracy: float
    val_accuracy: float
    measured_latency_ms: float | None = None


@dataclass(frozen=True)
class SpecializeOutcome:
    """The specialisation study and each target's result."""

    study: str
    source: str
    supernet_trial: int
    results: list[TargetResult] = field(default_factory=list)


def specialize(
    study: str | Study,
    *,
    storage: str | None = None,
    settings: SpecializeConfig | Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    name: str | None = None,
    supernet_trial: int | None = None,
    progress: Progress | None = None,
    threads: int | None = None,
) -> SpecializeOutcome:
    """Specialise the elastic supernet of ``study`` for every target of ``settings`` (see the module).

    ``settings``: a :class:`~nas.settings.specialize.SpecializeConfig` (or its
    mapping); ``None`` uses the ``specialize:`` section of the study's search
    config; ``overrides`` replace some of its fields (the command line's
    ``--objective``, ``--candidates``...). ``name``: the specialisation study (default ``<study>-specialized``).
    ``supernet_trial``: which supernet trial of the study (default the first).
    ``threads``: torch threads while scoring (default the config's ``resources.cpu``).
    Everything that can be wrong with the input is refused before a weight is loaded.
    """
    source = open_study(study, storage)
    config = search_config(source)
    space = source.space
    method_name = check_elastic(source, config, space)
    check_latency_model(source, space)
    chosen = check_settings(source, config, settings, overrides or {})
    supernet = find_supernet(source, method_name, supernet_trial)

    from nas.data import load_dataset

    dataset = load_dataset(config.dataset, seed=config.data_seed)
    models = {
        t.key: device_model(space, t.device, input_shape=dataset.input_shape, num_classes=dataset.num_classes)
        for t in chosen.targets
    }
    for target in chosen.targets:
        check_budget(space, models[target.key], target.max_latency_ms)

    from nas.training import torch_threads

    with torch_threads(threads or max(1, int(config.resources.cpu))):
        method = load_supernet(source, config, supernet, dataset, method_name)
        target_study = _open_target_study(source, config, chosen, supernet, name)
        results = [
            _specialize_target(
                target_study, source, supernet, method, dataset, chosen, target, models[target.key], progress
            )
            for target in chosen.targets
        ]
    return SpecializeOutcome(
        study=target_study.name, source=source.name, supernet_trial=supernet.number, results=results
    )


def _open_target_study(
    source: Study, config: Any, settings: SpecializeConfig, supernet: Trial, name: str | None
) -> Study:
    from nas.store.study import create_study

    target = name or f"{source.name}{STUDY_SUFFIX}"
    if target == source.name:
        raise ConfigError(
            f"the specialisation study must not be the supernet study {source.name!r}; pick another --name"
        )
    stored = {
        **config.model_dump(mode="json"),
        "name": target,
        "objectives": OBJECTIVES,
        "specialize": settings.model_dump(mode="json"),
    }
    return create_study(
        target,
        storage=source.storage,
        space=source.space,
        objectives=OBJECTIVES,
        config=stored,
        comparability={"specialized_from": source.name, "supernet_trial": supernet.number},
        load_if_exists=True,
    )


# -- one target --------------------------------------------------------------------------------------------


def within_budget(space: Any, model: LatencyModel, budget: float) -> Any:
    """``space`` whose ``sample`` returns sub-networks within ``budget`` (a shallow copy; the rest unchanged).

    Under a tight budget almost no uniform sample qualifies, and a strategy
    that samples its initial population at random would find none. A sample
    over the budget is therefore *repaired*: a random decision that has a
    cheaper value (:meth:`LatencyModel.cheaper`) gets a random one of them,
    until the prediction fits. Where no single change is cheaper (a context
    model can have such a local minimum: hybrid's down-samplings at the last
    blocks, one more not allowed) the fastest sub-network is taken, which fits
    (the budget was checked against it). Mutation and crossover are the
    space's own; the strategy's constraint still filters what they produce.
    """
    import copy

    sample = space.sample

    def sample_within(rng: Any) -> Any:
        arch = space.canonical(sample(rng))
        while model.predict(space, arch) > budget:
            moves = model.cheaper(space, arch)
            if not moves:
                return model.fastest(space)[0]
            name = list(moves)[int(rng.integers(len(moves)))]
            options = moves[name]
            decisions = arch.as_dict()
            decisions[name] = options[int(rng.integers(len(options)))]
            arch = space.canonical(space.make(decisions))
        return arch

    repaired = copy.copy(space)
    repaired.sample = sample_within
    return repaired


def _strategy(space: Any, settings: SpecializeConfig, target: TargetConfig, model: LatencyModel) -> Any:
    from nas.strategies import create_strategy

    space = within_budget(space, model, target.max_latency_ms)
    options: dict[str, Any] = {"population_size": settings.population_size}
    if settings.strategy_name == "evolution":
        options["tournament_size"] = max(2, min(5, settings.population_size // 2))
    return create_strategy(
        settings.strategy_name,
        space,
        objectives=OBJECTIVES,
        seed=(settings.seed * 1_000_003 + zlib.crc32(target.key.encode())) % 2**63,
        constraints={"latency_ms": f"<= {target.max_latency_ms!r}"},
        measure=lambda arch: {"latency_ms": model.predict(space, arch)},
        **options,
    )


def _target_trials(
    study: Study, supernet: Trial, source: Study, target: TargetConfig, kind: str
) -> list[Trial]:
    return [
        t
        for t in study.trials()
        if t.system_attrs.get("kind") == kind
        and t.system_attrs.get("target") == target.key
        and t.system_attrs.get("derived_from") == supernet.number
        and t.system_attrs.get("derived_from_study") == source.name
    ]


def _specialize_target(
    study: Study,
    source: Study,
    supernet: Trial,
    method: Any,
    dataset: Any,
    settings: SpecializeConfig,
    target: TargetConfig,
    model: LatencyModel,
    progress: Progress | None,
) -> TargetResult:
    space = study.space
    attrs = {
        "derived_from": supernet.number,
        "derived_from_study": source.name,
        "device": target.device,
        "max_latency_ms": target.max_latency_ms,
        "target": target.key,
        "method": "specialize",
    }
    stored = [
        t
        for t in _target_trials(study, supernet, source, target, CANDIDATE)
        if t.state is TrialState.COMPLETE
    ]
    strategy = _strategy(space, settings, target, model)
    strategy.warm_start(stored)
    candidates = list(stored)
    while len(candidates) < settings.candidates:
        arch = strategy.ask()
        if arch is None:
            logger.info("%s: no admissible sub-network left after %d candidates", target.key, len(candidates))
            break
        arch = space.canonical(arch)  # the network the supernet runs and extracts
        latency = model.predict(space, arch)
        accuracy = float(method.score(arch))
        trial = _add_complete(
            study,
            arch,
            supernet.seed,
            accuracy,
            latency,
            user_attrs={"inherited_accuracy": accuracy, "predicted_latency_ms": latency},
            system_attrs={**attrs, "kind": CANDIDATE, "phase": strategy.last_phase},
        )
        strategy.tell(trial)
        candidates.append(trial)
        if progress is not None:
            progress(target, len(candidates), settings.candidates)
    if not candidates:
        raise ConfigError(f"{target.key}: the strategy proposed no sub-network within the budget")
    best = max(candidates, key=lambda t: (t.value("val_accuracy"), -t.value("latency_ms"), -t.number))
    # Already selected (a rerun): kept unless more candidates have since found a better one.
    done = [
        t
        for t in _target_trials(study, supernet, source, target, SPECIALIZED)
        if t.system_attrs.get("candidate") == best.number
    ]
    if done:
        return _result(target, done[-1], len(candidates), len(stored))
    trial = _store_selected(study, method, dataset, settings, target, model, best, attrs)
    return _result(target, trial, len(candidates), len(stored))


def _add_complete(
    study: Study,
    arch: Architecture,
    seed: int,
    accuracy: float,
    latency_ms: float,
    *,
    user_attrs: Mapping[str, Any],
    system_attrs: Mapping[str, Any],
) -> Trial:
    """Store one finished sub-network (a candidate or a pick) under this study's two objectives.

    Nothing is trained here, so a trial is born COMPLETE; the study assigns its number.
    """
    (trial,) = study.add_trials(
        [
            Trial(
                number=0,
                arch=arch,
                state=TrialState.COMPLETE,
                values={"val_accuracy": accuracy, "latency_ms": latency_ms},
                seed=seed,
                user_attrs=dict(user_attrs),
                system_attrs=dict(system_attrs),
            )
        ]
    )
    return trial


def _result(target: TargetConfig, trial: Trial, count: int, reused: int) -> TargetResult:
    attrs = trial.user_attrs
    return TargetResult(
        target=target,
        trial=trial,
        candidates=count,
        reused=reused,
        predicted_latency_ms=float(attrs["predicted_latency_ms"]),
        inherited_accuracy=float(attrs["inherited_accuracy"]),
        val_accuracy=trial.value("val_accuracy"),
        measured_latency_ms=attrs.get("measured_latency_ms"),
    )


def _store_selected(
    study: Study,
    method: Any,
    dataset: Any,
    settings: SpecializeConfig,
    target: TargetConfig,
    model: LatencyModel,
    best: Trial,
    attrs: Mapping[str, Any],
) -> Trial:
    """Extract, recalibrate (and fine-tune) the best candidate; store it with its weights."""
    import hashlib

    import torch

    from nas.core.files import atomic_write
    from nas.oneshot.bignas import accuracy
    from nas.store.url import artifact_dir, artifacts_root
    from nas.supernet.recalibrate import recalibrate_bn

    space, arch = study.space, best.arch
    s, data = method.settings, method.data
    net = method.supernet.extract(arch)
    count = max(1, min(s.bn_batches * s.batch_size, len(data.y_weights)))
    recalibrate_bn(net, (data.x_weights[i : i + s.batch_size] for i in range(0, count, s.batch_size)))
    net.eval()
    inherited_val = accuracy(
        net, data.x_val, data.y_val, len(data.y_val), s.eval_batch_size, torch.device("cpu")
    )
    if settings.finetune_epochs:
        _finetune(net, study, dataset, settings, best.seed)
    net.eval()
    val = accuracy(net, data.x_val, data.y_val, len(data.y_val), s.eval_batch_size, torch.device("cpu"))
    predicted = model.predict(space, arch)
    user = {
        "inherited_accuracy": best.value("val_accuracy"),
        "inherited_val_accuracy": inherited_val,
        "predicted_latency_ms": predicted,
        "finetune_epochs": settings.finetune_epochs,
        "latency_model": model.source,
    }
    if target.device == LOCAL:
        user["measured_latency_ms"] = measure_onnx_ms(net, data.input_shape)
    trial = _add_complete(
        study,
        arch,
        best.seed,
        val,
        predicted,
        user_attrs=user,
        system_attrs={**attrs, "kind": SPECIALIZED, "candidate": best.number},
    )
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    folder = artifact_dir(artifacts_root(study.storage.url), study.name, f"trial-{trial.number:06d}")
    path = atomic_write(folder / "weights.pt", lambda stream: torch.save(state, stream))
    study.add_artifact(trial, "weights", path.as_uri(), hashlib.sha256(path.read_bytes()).hexdigest())
    logger.info(
        "%s: trial %d (%s), predicted %.3g ms, accuracy %.2f%% inherited, %.2f%% validation",
        target.key,
        trial.number,
        space.format(arch),
        predicted,
        user["inherited_accuracy"],
        val,
    )
    return trial


def _finetune(net: Any, study: Study, dataset: Any, settings: SpecializeConfig, seed: int) -> None:
    """A few epochs of ordinary training from the inherited weights, at a small learning rate."""
    import torch

    from nas.export.stored import read_stored_config
    from nas.settings.train import TrainSettings
    from nas.training import Precision, fit

    train = read_stored_config(study).train
    tuned = TrainSettings.model_validate(
        {
            **train.model_dump(),
            "epochs": settings.finetune_epochs,
            "lr": settings.finetune_lr,
            "device": "cpu",
            "amp": False,
        }
    )
    fit(
        net,
        dataset,
        tuned,
        epochs=settings.finetune_epochs,
        seed=seed,
        device=torch.device("cpu"),
        precision=Precision(False),
    )


def measure_onnx_ms(net: Any, input_shape: Sequence[int]) -> float:
    """Batch-1 ONNX Runtime latency (ms, one thread, median) of ``net``, as the export card measures it."""
    import torch

    from nas.export.formats import onnx_runner, onnx_session, write_onnx
    from nas.export.latency import LATENCY_THREADS, measure_latency

    with tempfile.TemporaryDirectory(prefix="nas-specialize-") as folder:
        path = Path(folder) / "model.onnx"
        example = torch.zeros(1, *input_shape)
        write_onnx(net.eval(), example, path, what="the specialised sub-network")
        runner = onnx_runner(onnx_session(path, threads=LATENCY_THREADS))
        return float(measure_latency({"onnxruntime": runner}, tuple(input_shape))["ms"]["onnxruntime"])  # type: ignore[arg-type]


__all__ = [
    "CANDIDATE",
    "OBJECTIVES",
    "SPECIALIZED",
    "SpecializeOutcome",
    "TargetResult",
    "measure_onnx_ms",
    "specialize",
    "within_budget",
]
