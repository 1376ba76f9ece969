"""The Study API: an Optuna-like facade over the trial store.

A :class:`Study` is a named search stored in a database: the runner asks it
for trials and tells it results, the dashboard reads it, resume replays it.
The facade adds what needs the search space (sampling, validation and
canonical keys, via ``nas.core.SPACES``) to :class:`nas.store.RDBStorage`,
which speaks only in ids, numbers and :class:`~nas.core.Trial` snapshots.
It belongs to the store layer (it imports no plugin, torch or Ray: a space
is built from the registry only when first needed); the top-level
``nas.create_study``/``nas.load_study``/``nas.Study`` are this module's.

Sampling is reproducible without shared state: when ``ask`` has no
architecture and no trial is queued, trial number ``n`` of a study samples
from ``numpy.random.default_rng([seed, crc32(study name), n])``, so the same
study on any number of processes proposes the same architecture for the same
number, and two studies do not propose the same sequence.
"""

from __future__ import annotations

import functools
import traceback
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar, overload

import numpy as np

from nas.core.architecture import Architecture
from nas.core.comparability import differences
from nas.core.errors import ConfigError, StorageError
from nas.core.seeds import check_seed
from nas.core.space import SPACES, SearchSpace
from nas.core.trial import Direction, Trial, TrialState
from nas.store.errors import DuplicateStudyError, StudyNotFoundError
from nas.store.facade import StoreFacade
from nas.store.lease import Lease
from nas.store.records import Artifact, StudyInfo, StudyStatus, StudySummary
from nas.store.storage import RDBStorage

T = TypeVar("T")

#: Objectives used when a study is created without any.
DEFAULT_OBJECTIVES = {"val_accuracy": "max"}

#: A URL, an open store (read-write, or read-only for a study that is only read), or the default.
StorageLike = str | StoreFacade | None


def _open(storage: StorageLike, *, create: bool) -> StoreFacade:
    if isinstance(storage, StoreFacade):
        return storage
    return RDBStorage(storage, create=create)


def _writable(store: StoreFacade, what: str) -> RDBStorage:
    if not isinstance(store, RDBStorage):
        raise StorageError(
            f"cannot {what}: {store.url} is open read-only; open it with a URL or an RDBStorage"
        )
    return store


def _make_space(name: str, options: Mapping[str, Any]) -> SearchSpace:
    cls = SPACES.get(name)
    try:
        return cls(**options)
    except TypeError as exc:
        raise ConfigError(f"space {name!r} does not accept options {dict(options)!r}: {exc}") from exc


class _Stored(Generic[T]):
    """A read-only study attribute from its stored description (mappings are copies the caller may change)."""

    def __init__(self, field: str, convert: Callable[[Any], T], doc: str) -> None:
        self.field, self.convert, self.__doc__ = field, convert, doc

    @overload
    def __get__(self, study: None, owner: type) -> _Stored[T]: ...
    @overload
    def __get__(self, study: Study, owner: type | None = None) -> T: ...
    def __get__(self, study: Study | None, owner: type | None = None) -> T | _Stored[T]:
        if study is None:  # on the class (help(), documentation tools): the descriptor itself
            return self
        return self.convert(getattr(study._info, self.field))


class Study:
    """A search stored in a database. Create with :func:`create_study` or :func:`load_study`.

    Trials are referred to by a :class:`~nas.core.Trial` this study returned
    or by their number.
    """

    def __init__(self, storage: StoreFacade, info: StudyInfo, *, seed: int = 0) -> None:
        self._storage = storage
        self._info = info
        self._seed = check_seed(seed)

    # -- description ------------------------------------------------------------
    name = _Stored("name", str, "The study's name, unique in its store.")
    study_id = _Stored("study_id", int, "The study's id in its store.")
    objectives: _Stored[dict[str, Direction]] = _Stored(
        "objectives", dict, "Objective name -> direction, the first being the primary one."
    )
    space_name = _Stored("space", str, "The registered name of the study's search space.")
    space_options: _Stored[dict[str, Any]] = _Stored(
        "space_options", dict, "Options the space is built with."
    )
    config: _Stored[dict[str, Any]] = _Stored(
        "config", dict, "The search configuration stored with the study."
    )
    comparability: _Stored[dict[str, Any] | None] = _Stored(
        "comparability",
        lambda d: None if d is None else dict(d),
        "What changes a result (field -> value), or None; only studies with the same one share results.",
    )

    @property
    def storage(self) -> StoreFacade:
        """The store: an :class:`~nas.store.RDBStorage`, or a read-only store for a study that is only read."""
        return self._storage

    @property
    def _writer(self) -> RDBStorage:
        return _writable(self._storage, f"write to study {self.name!r}")

    @functools.cached_property
    def space(self) -> SearchSpace:
        """The search space, built on first use (it may import torch, which readers never need)."""
        return _make_space(self._info.space, self._info.space_options)

    @property
    def status(self) -> StudyStatus:
        """The current status, read from the store (another process may have changed it)."""
        return self._storage.get_study_by_id(self.study_id).status

    def finish(self, status: StudyStatus | str = StudyStatus.FINISHED) -> None:
        """Mark the study finished (or interrupted, failed); asking again re-opens it as running."""
        self._writer.set_study_status(self.study_id, status)

    def close(self) -> None:
        """Release pooled database connections."""
        self._storage.close()

    def __repr__(self) -> str:
        return f"Study({self.name!r}, space={self.space_name!r}, storage={self._storage.url!r})"

    # -- ask / tell ------------------------------------------------------------------
    def _keyed(self, arch: Architecture) -> tuple[Architecture, str]:
        return arch, self.space.canonical_key(self.space.validate(arch))

    def _propose(self, number: int) -> tuple[Architecture, str]:
        rng = np.random.default_rng([self._seed, zlib.crc32(self.name.encode()), number])
        return self._keyed(self.space.sample(rng))

    def ask(
        self,
        arch: Architecture | None = None,
        seed: int = 0,
        budget: float | None = None,
        *,
        node: str | None = None,
        system_attrs: Mapping[str, Any] | None = None,
    ) -> Trial:
        """Start a RUNNING trial.

        With ``arch`` the trial evaluates it (validated against the space).
        Without, the oldest queued (WAITING) trial is started with its own
        seed and budget if there is one, else an architecture is sampled.
        ``node`` names the worker (default ``host:pid``); ``system_attrs`` (the
        platform's bookkeeping, e.g. ``retry_of``) go to a new trial only.
        """
        keyed = self._keyed(arch) if arch is not None else None
        return self._writer.ask(
            self.study_id,
            arch=keyed,
            propose=self._propose,
            seed=seed,
            budget=budget,
            node=node,
            system_attrs=system_attrs,
        )

    def tell(
        self,
        trial: Trial | int,
        values: Mapping[str, float] | Sequence[float] | float | None = None,
        *,
        state: TrialState | str | None = None,
        error: str | BaseException | None = None,
        user_attrs: Mapping[str, Any] | None = None,
        system_attrs: Mapping[str, Any] | None = None,
    ) -> Trial:
        """Finish a trial: COMPLETE with ``values`` (one per objective), or ``state=FAIL``/``PRUNED``.

        ``error`` may be an exception; its traceback is stored. ``user_attrs``
        are the user's; ``system_attrs`` the platform's own bookkeeping (e.g.
        ``reused_from``). Returns the finished trial; telling a finished trial
        raises :class:`~nas.store.TrialFinishedError`.
        """
        if state is None:
            state = TrialState.FAIL if error is not None and values is None else TrialState.COMPLETE
        if isinstance(error, BaseException):
            error = "".join(traceback.format_exception(error)).rstrip()
        attrs = {"user_attrs": user_attrs, "system_attrs": system_attrs}
        return self._writer.tell(
            self.study_id, self._number(trial), state=state, values=values, error=error, **attrs
        )

    def report(self, trial: Trial | int, step: int, metrics: Mapping[str, float]) -> None:
        """Store one step of a running trial's curves (``{"val_accuracy": 71.2, "loss": 0.8}``)."""
        self._writer.report(self.study_id, self._number(trial), step, metrics)

    def heartbeat(self, trial: Trial | int, node: str | None = None) -> bool:
        """Tell the store the trial's worker is alive (on ``node``, if given); ``False`` once it has finished."""
        return self._writer.heartbeat(self.study_id, self._number(trial), node)

    def enqueue(
        self,
        arch: Architecture,
        seed: int = 0,
        budget: float | None = None,
        *,
        user_attrs: Mapping[str, Any] | None = None,
        system_attrs: Mapping[str, Any] | None = None,
    ) -> Trial:
        """Queue an architecture (WAITING); the next ``ask()`` without an architecture runs it."""
        attrs = {"user_attrs": user_attrs, "system_attrs": system_attrs}
        return self._writer.enqueue(self.study_id, self._keyed(arch), seed=seed, budget=budget, **attrs)

    def fail_stale_trials(
        self, grace_s: float, *, requeue: bool = True, reason: str | None = None
    ) -> list[Trial]:
        """Mark RUNNING trials without a heartbeat for ``grace_s`` seconds FAIL, re-queueing copies.

        ``reason`` replaces the stored error message.
        """
        return self._writer.fail_stale_trials(self.study_id, grace_s, requeue=requeue, reason=reason)

    # -- the driver lease (one driver per study, nas.store.lease) -----------------------------
    def acquire_lease(self, stale_s: float) -> Lease:
        """Become the study's only driver; :class:`~nas.store.StudyBusyError` names a live one.

        The study is ``running`` again from then on (a stale, interrupted or
        finished study resumes). A holder whose heartbeat is older than ``stale_s`` seconds (or whose
        process on this host is gone) is taken over.
        """
        return self._writer.acquire_lease(self.study_id, stale_s=stale_s)

    def renew_lease(self, lease: Lease) -> bool:
        """The driver's heartbeat; ``False`` once another driver has taken the lease over.

        A running study whose lease is not renewed reads as ``stale`` (:mod:`nas.store.liveness`).
        """
        return self._writer.renew_lease(lease)

    def release_lease(self, lease: Lease) -> None:
        """Give up the lease (at the driver's exit)."""
        self._writer.release_lease(lease)

    def set_user_attr(self, trial: Trial | int, key: str, value: Any) -> None:
        """Set a JSON-serialisable attribute of an unfinished trial."""
        self._writer.set_trial_user_attr(self.study_id, self._number(trial), key, value)

    def set_system_attr(self, trial: Trial | int, key: str, value: Any) -> None:
        """Set a system attribute (the platform's bookkeeping, e.g. ``workers``) of an unfinished trial."""
        self._writer.set_trial_system_attr(self.study_id, self._number(trial), key, value)

    def add_trials(
        self,
        trials: Iterable[Trial],
        metrics: Sequence[Mapping[str, Sequence[tuple[int, float]]]] | None = None,
    ) -> list[Trial]:
        """Import finished trials (e.g. from another study) atomically; they get new numbers here."""
        return self._writer.add_trials(self.study_id, [self._keyed_trial(t) for t in trials], metrics)

    def _keyed_trial(self, trial: Trial) -> tuple[Trial, str]:
        if not isinstance(trial, Trial):
            raise ConfigError(f"expected a Trial, got {type(trial).__name__}")
        return trial, self._keyed(trial.arch)[1]

    # -- artifacts -----------------------------------------------------------------------
    def add_artifact(self, trial: Trial | int, kind: str, uri: str, sha256: str | None = None) -> Artifact:
        """Record a file the trial produced (weights, ONNX, plots) by URI and checksum."""
        return self._writer.add_artifact(self.study_id, self._number(trial), kind, uri, sha256)

    def artifacts(self, trial: Trial | int) -> list[Artifact]:
        return self._storage.artifacts(self.study_id, self._number(trial))

    # -- reading -------------------------------------------------------------------------
    def trial(self, number: int) -> Trial:
        """One trial by number."""
        return self._storage.get_trial(self.study_id, number)

    def trials(
        self, states: TrialState | str | Iterable[TrialState | str] | None = None, after: int | None = None
    ) -> list[Trial]:
        """Trials by number; ``after=N`` returns only those numbered above N (incremental polling)."""
        return self._storage.trials(self.study_id, states=states, after=after)

    def trials_page(
        self,
        offset: int = 0,
        limit: int = 100,
        order_by: str | None = None,
        *,
        descending: bool | None = None,
        states: TrialState | str | Iterable[TrialState | str] | None = None,
    ) -> list[Trial]:
        """A page of trials ordered by number or by an objective (best first); see :meth:`RDBStorage.trials_page`."""
        return self._storage.trials_page(
            self.study_id, offset=offset, limit=limit, order_by=order_by, descending=descending, states=states
        )

    def count_trials(self) -> dict[TrialState, int]:
        """Number of trials in each state."""
        return self._storage.count_trials(self.study_id)

    @property
    def best_trials(self) -> list[Trial]:
        """All best COMPLETE trials (ties) for one objective; the Pareto set for several."""
        return self._storage.best_trials(self.study_id)

    @property
    def best_trial(self) -> Trial:
        """The best COMPLETE trial by the primary objective (lowest number among ties)."""
        page = self.trials_page(limit=1, order_by=next(iter(self._info.objectives)))
        if not page:
            raise ConfigError(f"study {self.name!r} has no COMPLETE trial yet")
        return page[0]

    def metrics(
        self, trial: Trial | int, names: Iterable[str] | None = None
    ) -> dict[str, list[tuple[int, float]]]:
        """The trial's curves: ``{name: [(step, value), ...]}``."""
        return self._storage.metrics(self.study_id, self._number(trial), names)

    def lookup(self, arch: Architecture, budget: float | None = None) -> Trial | None:
        """An earlier COMPLETE result for the same canonical architecture and budget, in a comparable study.

        Comparable: a study of this space with the same comparability key
        (:attr:`comparability`: same space options, data, evaluator settings,
        seed and fidelity). Only results with a value for each of this
        study's objectives count; results of this study are preferred, then the earliest.
        """
        _, key = self._keyed(arch)
        return self._storage.lookup(
            self.space_name,
            key,
            budget,
            list(self._info.objectives),
            prefer_study_id=self.study_id,
            comparability_key=self._info.comparability_key,
        )

    def _number(self, trial: Trial | int) -> int:
        if isinstance(trial, Trial):
            if trial.study is not None and trial.study != self.name:
                raise ConfigError(f"trial {trial.number} belongs to study {trial.study!r}, not {self.name!r}")
            return trial.number
        if isinstance(trial, bool) or not isinstance(trial, int):
            raise ConfigError(f"expected a Trial or a trial number, got {trial!r}")
        return trial


def create_study(
    name: str,
    storage: StorageLike = None,
    *,
    space: str | SearchSpace,
    objectives: Mapping[str, str] | None = None,
    space_options: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    comparability: Mapping[str, Any] | None = None,
    comparability_defaults: Mapping[str, Any] | None = None,
    load_if_exists: bool = False,
    seed: int = 0,
) -> Study:
    """Create a study (a new empty database gets the schema first).

    ``storage``: a URL (default: ``$NAS_STORAGE``, else ``sqlite:///nas.db``)
    or an open :class:`~nas.store.RDBStorage`. ``space``: a registered space
    name (with ``space_options``) or a space instance. ``objectives``: name ->
    ``"max"``/``"min"``, the first primary (default ``{"val_accuracy":
    "max"}``). ``comparability``: what changes a result (field -> value, see
    :mod:`nas.core.comparability`); results are reused only between studies
    with the same one. ``comparability_defaults``: each option's default, so
    that a study described before an option existed reopens when the option
    is left at its default (:func:`nas.core.comparability.differences`). With ``load_if_exists`` an existing study of the same
    space, space options, objectives and comparability is loaded instead (one
    that differs raises :class:`ConfigError` listing each difference);
    otherwise a taken name raises :class:`~nas.store.DuplicateStudyError`.
    """
    if isinstance(space, SearchSpace):
        if space_options is not None:
            raise ConfigError("pass space options either in the space instance or as space_options, not both")
        instance: SearchSpace = space
    else:
        if not isinstance(space, str):
            raise ConfigError(f"space must be a registered space name or a SearchSpace, got {space!r}")
        instance = _make_space(space, space_options or {})
    wanted = objectives or DEFAULT_OBJECTIVES
    store = _open(storage, create=True)
    if load_if_exists:
        try:
            return _check_same(
                Study(store, store.get_study(name), seed=seed),
                instance,
                wanted,
                comparability,
                comparability_defaults,
            )
        except StudyNotFoundError:
            pass
    try:
        info = _writable(store, f"create study {name!r}").create_study(
            name,
            space=instance.name,
            objectives=wanted,
            space_options=instance.options,
            config=config,
            comparability=comparability,
        )
    except DuplicateStudyError:
        if not load_if_exists:
            raise
        # Another process created it between our look and our insert.
        return _check_same(
            Study(store, store.get_study(name), seed=seed),
            instance,
            wanted,
            comparability,
            comparability_defaults,
        )
    study = Study(store, info, seed=seed)
    study.__dict__["space"] = instance  # already built: reuse it
    return study


def _check_same(
    study: Study,
    space: SearchSpace,
    objectives: Mapping[str, str],
    comparability: Mapping[str, Any] | None,
    defaults: Mapping[str, Any] | None = None,
) -> Study:
    """The existing study, if it was created for the same space, objectives and comparability.

    A study created without a description (before revision 0004, or by the
    Python API) takes the one it is reopened with; so does one whose
    description lacks only options added since, left at their ``defaults``.
    """
    wanted = {k: Direction(str(v).lower()) for k, v in objectives.items()}
    if study.space_name != space.name or study.objectives != wanted:
        raise ConfigError(
            f"study {study.name!r} exists with space {study.space_name!r} and objectives "
            f"{ {k: v.value for k, v in study.objectives.items()} }; asked for space {space.name!r} and "
            f"objectives { {k: v.value for k, v in wanted.items()} }; use another study name"
        )
    changed = differences(
        _prefixed("space", study.space_options), _prefixed("space", space.options), defaults=defaults
    )
    stored = study.comparability
    if comparability is not None and stored is not None:
        changed += [
            line for line in differences(stored, comparability, defaults=defaults) if line not in changed
        ]
    if changed:
        raise ConfigError(
            f"study {study.name!r} in {study.storage.url} was run under other conditions, so its results "
            "and this run's would not be comparable:\n  "
            + "\n  ".join(changed)
            + "\nrestore those settings to continue it, or start a new study with another name "
            "(nas search --name NEW_NAME)"
        )
    if comparability is not None and (stored is None or dict(stored) != dict(comparability)):
        study._info = _writable(study.storage, f"describe study {study.name!r}").describe_study(
            study.study_id, comparability, replace=stored is not None
        )
    return study


def _prefixed(section: str, options: Mapping[str, Any]) -> dict[str, Any]:
    return {f"{section}.{k}": v for k, v in options.items()}


def load_study(
    name: str, storage: StorageLike = None, *, seed: int = 0, space: SearchSpace | None = None
) -> Study:
    """Open an existing study; :class:`~nas.store.StudyNotFoundError` names the stored ones if it is missing.

    ``space``: an instance to use instead of building the stored space from
    the registry (a worker that already holds it saves the build); its name
    and options must match the study's.
    """
    store = _open(storage, create=False)
    study = Study(store, store.get_study(name), seed=seed)
    if space is not None:
        if not isinstance(space, SearchSpace) or (space.name, space.options) != (
            study.space_name,
            study.space_options,
        ):
            raise ConfigError(
                f"study {name!r} searches space {study.space_name!r} with options {study.space_options}; "
                f"got {space!r}"
            )
        study.__dict__["space"] = space
    return study


def list_studies(storage: StorageLike = None) -> list[StudySummary]:
    """Every stored study with trial counts, best values and last activity."""
    return _open(storage, create=False).summarize_studies()
