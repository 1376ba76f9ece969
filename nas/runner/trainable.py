"""What runs inside a Ray trial: build the evaluator, evaluate, report back.

Workers never touch the trial store (they need no database credentials):
every per-epoch metric goes to the driver through ``tune.report`` and the
final report carries the objective values, user attributes, the trial's
traceback if it failed, and the bytes of its artifacts (weights), which the
driver writes beside the store. Putting the bytes in the result works on any
cluster without a shared file system; it suits the small networks a search
trains (a cap guards against surprises).

Under a scheduler that pauses trials the evaluator's state goes with the
report of each rung's epoch as a Ray Tune checkpoint (``tune.report(..., checkpoint=)``):
Tune restarts a promoted trial from it (``tune.get_checkpoint()``), and the
driver copies it into the store's artifacts (kind ``checkpoint``) so that a
rerun after a driver crash resumes the trial too (see ``docs/schedulers.md``).
"""

from __future__ import annotations

import json
import math
import os
import socket
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.core import EVALUATORS, Architecture, Evaluator, SearchSpace
from nas.core.evaluator import EvalContext, Inheritance
from nas.core.registry import import_plugins
from nas.core.space import SPACES
from nas.settings.search import SearchConfig

#: Keys of the final report that are not metrics. Tune flattens nested dicts in
#: results, so structured payloads travel as JSON strings (bytes as a list of pairs).
FINAL = "nas_final"
ERROR = "nas_error"
ATTRS = "nas_user_attrs"
ARTIFACTS = "nas_artifacts"
NODE = "nas_node"
PID = "nas_worker_pid"
STEP = "nas_step"
METRICS = "nas_metrics"
VALUES = "nas_values"
#: Marks the first report of a copy resumed from the store's checkpoint: the checkpoint's own epoch,
#: replayed so the scheduler sees the rung the trial stands at (the store already holds its metrics).
REPLAY = "nas_replay"

#: Config keys the driver sets: the steps after which to checkpoint (a pausing scheduler's rungs),
#: and the stored checkpoint to resume from (``{"step", "state", "metrics"}``, the state an object ref,
#: the metrics those of its epoch; after a driver restart, see :func:`nas.runner.checkpoints.resume_from`).
CHECKPOINTS = "checkpoints"
RESUME = "resume"
#: Config key of a child that inherits: its parent's ``arch``, ``trial``, ``morphism`` and
#: ``weights`` (an object ref), see :mod:`nas.runner.inheritance`.
INHERIT = "inherit"
#: Config key of a trial with a training recipe (its ``system_attrs["recipe"]``, setting -> value).
RECIPE = "recipe"
#: The files of a trial checkpoint folder (Ray's and the driver's copy alike).
CHECKPOINT_FILE = "state.pt"
CHECKPOINT_STEP_FILE = "step"

#: Artifacts larger than this are not shipped to the driver (recorded as skipped).
MAX_ARTIFACT_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class WorkerSetup:
    """What every worker of a search needs to rebuild the space (a plain, picklable record)."""

    space_name: str
    space_options: Mapping[str, Any]
    data_seed: int
    num_threads: int
    plugins: tuple[str, ...] = ()

    @classmethod
    def of(cls, config: SearchConfig) -> WorkerSetup:
        return cls(
            space_name=config.space.name,
            space_options=config.space.options,
            data_seed=config.data_seed,
            num_threads=max(1, int(config.resources.cpu)),
            plugins=tuple(config.plugins),
        )

    def space(self) -> SearchSpace:
        import_plugins(self.plugins)
        return SPACES.get(self.space_name)(**self.space_options)


def ray_trainable(tune: Any, function: Any, config: SearchConfig, **parameters: Any) -> Any:
    """``function`` as a Tune trainable with ``parameters`` in Ray's object store and the config's resources.

    One placement group per trial, packed on one node: the trial's bundle and,
    with ``dataset.reader: ray``, a bundle for its Ray Data tasks
    (:attr:`~nas.settings.search.SearchConfig.trial_bundles`, :mod:`nas.runner.ray_data`).
    """
    bundles = [{name: amount for name, amount in b.items() if amount} for b in config.trial_bundles]
    resources = tune.PlacementGroupFactory(bundles, strategy="STRICT_PACK")
    return tune.with_resources(tune.with_parameters(function, **parameters), resources)


@dataclass(frozen=True)
class TrialJob:
    """Everything a trial worker needs besides the architecture (pickled once into Ray's object store)."""

    setup: WorkerSetup
    evaluator_name: str
    evaluator_options: Mapping[str, Any]

    def evaluator(self, space: SearchSpace, dataset: Any, workdir: Path) -> Evaluator:
        """The trial's evaluator; the class decides which of the offered inputs it uses."""
        setup = self.setup
        context = EvalContext(
            dataset=dataset, data_seed=setup.data_seed, workdir=workdir, num_threads=setup.num_threads
        )
        return EVALUATORS.get(self.evaluator_name).create(space, self.evaluator_options, context)


def clean_metrics(values: Mapping[str, Any]) -> dict[str, float]:
    """Numeric metrics only (Tune and ASHA need plain floats)."""
    out = {}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        out[name] = float(value)
    return out


def run_trial(config: dict[str, Any], job: TrialJob, dataset: Any = None) -> None:
    """The Tune function trainable (``config`` carries ``arch``, ``seed``, ``budget``, ``number``)."""
    from ray import tune

    workdir = Path(tune.get_context().get_trial_dir() or ".") / "artifacts"
    evaluate_trial(config, job, dataset, workdir, tune.report)


def evaluate_trial(
    config: Mapping[str, Any],
    job: TrialJob,
    dataset: Any,
    workdir: Path,
    send: Callable[[dict[str, Any]], None],
    *,
    catch: bool = True,
    checkpoints: bool = True,
) -> None:
    """One trial's evaluation, every report handed to ``send``.

    ``send`` is ``tune.report`` in a single-worker trial; in a data-parallel
    one it is each Ray Train worker's ``ray.train.report`` (rank 0's payload
    reaches Tune, see :mod:`nas.runner.data_parallel`). ``catch`` turns the
    evaluator's exception into a FAIL report; a data-parallel worker lets it
    propagate instead, because its peers may be waiting in a collective that
    only Ray Train's teardown of the worker group ends. ``checkpoints``
    (Tune's, for pausing schedulers and resume) only in a single-worker trial.
    """
    started = time.perf_counter()
    node = trial_node()
    pid = os.getpid()
    arch = Architecture.from_dict(config["arch"])
    workdir.mkdir(parents=True, exist_ok=True)

    last_step = 0
    pending: list[tuple[int, bytes]] = []  # the state the evaluator handed over for the coming report

    def report(step: int, metrics: Mapping[str, float], replay: bool = False) -> None:
        nonlocal last_step
        last_step = int(step)
        clean = clean_metrics(metrics)
        result = {**clean, METRICS: json.dumps(clean), STEP: last_step, NODE: node, PID: pid}
        if replay:
            result[REPLAY] = True
        saved = pending.pop() if pending else None
        if saved is None or saved[0] != last_step:
            send(result)
            return
        from ray import tune  # only a single-worker trial keeps checkpoints (``checkpoints``)

        with tempfile.TemporaryDirectory(prefix="nas-checkpoint-") as folder:
            write_checkpoint(Path(folder), last_step, saved[1])
            tune.report(result, checkpoint=tune.Checkpoint.from_directory(folder))

    def checkpoint(step: int, state: bytes) -> None:
        if int(step) in config.get(CHECKPOINTS, ()):
            pending[:] = [(int(step), state)]

    try:
        space = job.setup.space()
        evaluator = job.evaluator(space, dataset, workdir)
        extra: dict[str, Any] = {}
        if checkpoints and type(evaluator).checkpoints and config.get(CHECKPOINTS):
            from ray import tune

            promoted = tune.get_checkpoint()
            resume = resume_state(promoted, config.get(RESUME))
            last_step = resume[0] if resume else 0
            extra = {"resume": resume[1] if resume else None, "checkpoint": checkpoint}
            if resume is not None and promoted is None:
                # A copy of a killed driver's trial: its first report is the checkpoint's epoch again,
                # with that checkpoint, so a rung-based scheduler sees it reach the rung it paused at
                # (Ray's Hyperband only ranks a trial whose results pass each rung; one whose first
                # result were a later epoch would wait forever) and can pause it right there.
                pending[:] = [resume]
                report(resume[0], config[RESUME].get("metrics", {}), replay=True)
        if config.get(INHERIT) and type(evaluator).inherits:
            extra["parent"] = inheritance(config[INHERIT])
        if config.get(RECIPE):  # the plan refused recipes for evaluators that take none
            extra["recipe"] = dict(config[RECIPE])
        result = evaluator.evaluate(
            arch, seed=int(config["seed"]), budget=config.get("budget"), report=report, **extra
        )
    except Exception as exc:  # becomes a FAIL trial with its traceback; ASHA stops arrive as SystemExit
        if not catch:
            raise
        send(failure_report(traceback.format_exception(exc), node, last_step + 1))
        return
    artifacts: list[tuple[str, bytes]] = []
    for kind, path in result.artifacts.items():
        if os.path.getsize(path) <= MAX_ARTIFACT_BYTES:
            artifacts.append((kind, Path(path).read_bytes()))
    values = clean_metrics(result.values)
    send(
        {
            **{k: v for k, v in values.items() if math.isfinite(v)},
            FINAL: True,
            STEP: last_step + 1,
            VALUES: json.dumps(values),
            # trial_seconds: the whole evaluation inside the worker (build, train, measure), so
            # Ray's own per-trial overhead is what the driver's wall time adds on top.
            ATTRS: json.dumps(
                {**result.user_attrs, "trial_seconds": time.perf_counter() - started}, default=str
            ),
            ARTIFACTS: artifacts,
            NODE: node,
        }
    )


def inheritance(shipped: Mapping[str, Any]) -> Inheritance:
    """The parent a child's worker starts from (config ``inherit``; its weights fetched from Ray)."""
    import ray

    return Inheritance(
        arch=Architecture.from_dict(shipped["arch"]),
        trial=int(shipped["trial"]),
        morphism=dict(shipped["morphism"]),
        weights=ray.get(shipped["weights"]),
    )


def write_checkpoint(folder: Path, step: int, state: bytes) -> None:
    """A trial checkpoint as Ray Tune and the driver read it: the evaluator's state and its step."""
    (folder / CHECKPOINT_FILE).write_bytes(state)
    (folder / CHECKPOINT_STEP_FILE).write_text(str(step))


def read_checkpoint(folder: Path) -> tuple[int, bytes]:
    """The step and evaluator state of a checkpoint folder written by :func:`write_checkpoint`."""
    return int((folder / CHECKPOINT_STEP_FILE).read_text()), (folder / CHECKPOINT_FILE).read_bytes()


def resume_state(checkpoint: Any, stored: Mapping[str, Any] | None) -> tuple[int, bytes] | None:
    """Where a trial goes on from: Tune's checkpoint of this run (a paused trial promoted), else the
    store's checkpoint the driver shipped in the config (a trial of a killed driver), else None."""
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            return read_checkpoint(Path(folder))
    if not stored:
        return None
    import ray

    return int(stored["step"]), ray.get(stored["state"])


def failure_report(lines: list[str] | str, node: str, step: int) -> dict[str, Any]:
    """The final report of a trial whose evaluation raised: its traceback becomes the FAIL's error."""
    return {FINAL: True, ERROR: "".join(lines), NODE: node, STEP: step}


def trial_node() -> str:
    """``host/ray-node`` of this process (what the store records as a trial's node)."""
    return f"{socket.gethostname()}/{_node_id()}"


def _node_id() -> str:
    import ray

    try:
        return ray.get_runtime_context().get_node_id()[:12]
    except Exception:  # outside Ray (tests calling run_trial directly)
        return "local"
