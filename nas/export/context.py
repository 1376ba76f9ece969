"""What export needs to know besides the architecture: the data.

From the study's stored search config (read by :mod:`nas.export.stored`,
which runs no code the config names) export learns the dataset, for test
accuracy, preprocessing and retraining. A model whose weights are stored can still be
exported where the data is not available: the input shape, number of classes
and preprocessing then come from what the trial recorded (the train evaluator
stores them), and test accuracy is reported as unavailable, with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nas.core.errors import ConfigError
from nas.core.trial import Trial
from nas.data import Dataset, load_dataset
from nas.export.stored import StoredConfig
from nas.store.study import Study
from search_spaces.base import check_input_shape

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportData:
    """The model's input/output contract and, when loadable, the dataset it was searched on."""

    input_shape: tuple[int, int, int]
    num_classes: int
    preprocessing: Mapping[str, Any] | None
    dataset: Dataset | None
    #: Why there is no test accuracy (``None`` when the test split can be used).
    test_note: str | None

    @property
    def test_split(self) -> tuple[Any, Any] | None:
        """``(x_test, y_test)`` when the dataset has a test split of the model's input shape."""
        if self.test_note is not None or self.dataset is None or self.dataset.x_test is None:
            return None
        return self.dataset.x_test, self.dataset.y_test


def resolve_data(
    study: Study,
    trial: Trial,
    config: StoredConfig,
    input_shape: tuple[int, int, int] | None,
    *,
    need_training: bool,
) -> ExportData:
    """Load the study's dataset and settle the input shape, number of classes and preprocessing.

    ``input_shape`` (``--input-shape``) overrides the dataset's. When the
    weights must be (re)trained the dataset is required; otherwise a dataset
    that cannot be loaded here only costs the test accuracy.
    """
    where = f"trial {trial.number} of study {study.name!r}"
    override = None if input_shape is None else check_input_shape(study.space_name, tuple(input_shape))
    dataset: Dataset | None = None
    note: str | None = None
    if config.dataset is None:
        note = config.dataset_note
        if need_training:
            raise ConfigError(
                f"{where} must be retrained (no stored weights, or --retrain), but there is no dataset to "
                f"retrain on: {note} (evaluator {config.evaluator!r}); export a trial with stored weights"
            )
    else:
        try:
            dataset = load_dataset(config.dataset, seed=config.data_seed)
        except ConfigError as exc:
            if need_training:
                raise ConfigError(
                    f"{where} must be retrained, but its dataset cannot be loaded: {exc}"
                ) from exc
            note = f"the study's dataset cannot be loaded here ({exc})"
            logger.warning("no test accuracy for %s: %s", where, note)

    recorded = trial.user_attrs.get("dataset") if isinstance(trial.user_attrs.get("dataset"), Mapping) else {}
    num_classes = dataset.num_classes if dataset is not None else recorded.get("num_classes")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(
            f"cannot tell how many classes the model of {where} has: its dataset is not available and the "
            "trial recorded none"
        )
    shape: tuple[int, int, int] | None = override
    if shape is None:
        known = dataset.input_shape if dataset is not None else recorded.get("input_shape")
        if known is None:
            raise ConfigError(
                f"cannot tell the input shape of the model of {where}: its dataset is not available and the "
                "trial recorded none; pass --input-shape C,H,W"
            )
        shape = check_input_shape(study.space_name, tuple(known))
    if dataset is not None and shape != dataset.input_shape:
        if need_training:
            raise ConfigError(
                f"cannot retrain {where} at input shape {shape}: its dataset's images are {dataset.input_shape}; "
                "drop --input-shape or export stored weights"
            )
        note = f"the export input shape {shape} differs from the dataset's {dataset.input_shape}"
    if dataset is not None and getattr(dataset, "streaming", False) and note is None:
        note = f"dataset {dataset.name!r} streams; export does not read a streamed test split yet"
    if dataset is not None and dataset.x_test is None and note is None:
        note = f"dataset {dataset.name!r} has no test split"
    preprocessing: Mapping[str, Any] | None
    if dataset is not None:
        preprocessing = dataset.preprocessing
    else:
        stored = trial.user_attrs.get("preprocessing")
        preprocessing = stored if isinstance(stored, Mapping) else None
    if preprocessing is not None and shape != tuple(preprocessing.get("input_shape", shape)):
        preprocessing = {**preprocessing, "input_shape": list(shape)}
    return ExportData(
        input_shape=shape,
        num_classes=num_classes,
        preprocessing=preprocessing,
        dataset=dataset,
        test_note=note,
    )


__all__ = ["ExportData", "resolve_data"]
