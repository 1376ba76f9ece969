"""Connecting the driver to Ray: a local cluster by default, an existing one by address.

Token authentication stays on: Ray (2.5x+) enables it for a new local
cluster and generates a token on first use (kept in ``~/.ray/auth_token``),
as ``ray start --head`` does; we never set ``RAY_AUTH_MODE`` to disable it.
Joining an existing cluster uses the token the environment provides
(``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or the token file).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from nas.core.errors import ConfigError, NASError, StorageError, require

logger = logging.getLogger(__name__)


def connect(
    address: str | None,
    *,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    trial: Mapping[str, float] | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Start or join Ray; returns the cluster's resources.

    ``address`` None (and no ``RAY_ADDRESS``) starts a local cluster sized to
    this machine; ``"auto"`` or ``host:port`` joins a running one, which is
    also what ``ray job submit -- nas search ...`` gives the driver.
    ``trial`` (``{"CPU": 1, "GPU": 0}``) is what each trial asks for: a
    request no node can ever place raises ConfigError here, before any trial
    is started (Ray would otherwise leave the trials pending forever). With
    ``workers`` > 1, ``trial`` is what each of a trial's Ray Train workers asks for.
    """
    ray = require("ray", "ray")
    if not ray.is_initialized():  # type: ignore[attr-defined]
        _init(ray, address, num_cpus, num_gpus)
    resources = ray.cluster_resources()  # type: ignore[attr-defined]
    if trial is not None:
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]  # type: ignore[attr-defined]
        check_placeable(trial, resources, nodes, workers)
    return resources


def check_before_store(address: str | None, trial: Mapping[str, float], workers: int = 1) -> None:
    """Refuse a per-trial request no node can place before the driver writes the store.

    Joining an existing cluster (``address`` or ``$RAY_ADDRESS``, or the one
    this process already runs) starts nothing, so the driver joins it now and
    checks exactly. A local cluster is
    not started yet (a config or study error should not wait for Ray): it
    will be this machine, so the request is checked against this machine's
    CPUs, an upper bound of what Ray will see. GPUs, and CPUs a container
    limit hides from Ray, are checked exactly once Ray is up (:func:`connect`).
    """
    ray = require("ray", "ray")
    if address or os.environ.get("RAY_ADDRESS") or ray.is_initialized():  # type: ignore[attr-defined]
        connect(address, trial=trial, workers=workers)
        return
    machine = {"CPU": float(os.cpu_count() or 1)}
    check_placeable({"CPU": trial.get("CPU", 0.0)}, machine, [machine], workers)


def check_placeable(
    trial: Mapping[str, float],
    total: Mapping[str, float],
    nodes: list[Mapping[str, float]],
    workers: int = 1,
) -> None:
    """Refuse a per-trial request that no single node of the cluster has (a trial runs on one node).

    A multi-worker trial (``workers`` > 1, ``trial`` per worker) is exactly
    ``workers`` bundles of ``trial``: Ray Train places them on any nodes (its
    own Tune trial takes no CPU, :mod:`nas.runner.data_parallel`), so the
    check counts how many whole bundles each node holds.
    """
    if workers > 1:
        _check_workers(trial, total, nodes, workers)
        return
    for name, amount in trial.items():
        if amount <= 0:
            continue
        largest = max((float(node.get(name, 0.0)) for node in nodes), default=float(total.get(name, 0.0)))
        if amount > largest:
            raise ConfigError(
                f"resources.{name.lower()}={amount:g} per trial can never be placed: the largest node of the "
                f"Ray cluster has {largest:g} {name} (the cluster's total is {float(total.get(name, 0.0)):g}); "
                f"allowed: at most {largest:g}"
            )


def _check_workers(
    worker: Mapping[str, float], total: Mapping[str, float], nodes: list[Mapping[str, float]], workers: int
) -> None:
    asked = {name: float(amount) for name, amount in worker.items() if amount > 0}
    field = {"CPU": "cpu", "GPU": "gpu_per_worker"}
    for name, amount in asked.items():
        if float(total.get(name, 0.0)) <= 0:
            raise ConfigError(
                f"resources.{field.get(name, name)}={amount:g} per worker can never be placed: the Ray cluster "
                f"has no {name}; allowed: {field.get(name, name)}: 0"
            )
    nodes = nodes or [total]
    # Identical bundles: a node holds as many as its scarcest asked resource allows.
    fits = sum(
        min(int(float(node.get(name, 0.0)) / amount + 1e-9) for name, amount in asked.items())
        for node in nodes
    )
    if fits < workers:
        each = ", ".join(f"{amount:g} {name}" for name, amount in asked.items())
        have = ", ".join(
            "{" + ", ".join(f"{float(node.get(n, 0.0)):g} {n}" for n in asked) + "}" for node in nodes
        )
        raise ConfigError(
            f"resources.workers={workers} with {each} per worker can never be placed: the Ray cluster can "
            f"place at most {fits} such workers (its nodes have {have}); allowed: "
            + (f"workers <= {fits}" if fits else "per worker at most what one node has")
        )


class _StoreErrorsOnce(logging.Filter):
    """Drops Tune's log records that carry a store error: the driver reports that error itself, once.

    Tune logs ("Error stopping trial.") with the traceback of an exception a
    searcher callback raised while it stopped a trial; for a
    :class:`~nas.core.errors.StorageError` (the database gone, say) the
    searcher keeps the error and :func:`nas.runner.trials.run_trials` raises
    it as the one-line message a user acts on.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], StorageError))


_STORE_ERRORS_ONCE = _StoreErrorsOnce()


def quiet_ray() -> None:
    """Ray Tune's own INFO/WARNING chatter (missing result files, token notices) is not for our users.

    Nor is its traceback of each trial whose worker died: the searcher logs one
    line per restart and stores Ray's account with the FAIL trial. Nor its
    traceback of a store error, which the driver reports in one line.
    """
    if not logger.isEnabledFor(logging.DEBUG):
        os.environ.setdefault("TUNE_PRINT_ALL_TRIAL_ERRORS", "0")
        for name in ("ray", "ray.tune", "ray.train", "ray._private"):
            logging.getLogger(name).setLevel(logging.ERROR)
    controller = logging.getLogger("ray.tune.execution.tune_controller")  # a filter sees its own records
    if _STORE_ERRORS_ONCE not in controller.filters:
        controller.addFilter(_STORE_ERRORS_ONCE)


def _init(ray: Any, address: str | None, num_cpus: int | None, num_gpus: int | None) -> None:
    # Tune's default loggers would write every result (including weight bytes) to JSON/CSV files.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    address = address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = {
        "logging_level": logging.WARNING,
        "log_to_driver": False,
        "configure_logging": True,
    }
    if address is None:
        kwargs.update(num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False)
    try:
        ray.init(address=address, **kwargs)  # type: ignore[attr-defined]
    except ConnectionError as exc:
        raise NASError(f"cannot connect to the Ray cluster at {address!r}: {exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"Ray address {address!r} is not usable: {exc}") from exc
    logger.info("connected to Ray (%s): %s", address or "local", ray.cluster_resources())


def shutdown() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
