"""The one rule that keeps test data out of every search and every predictor.

A benchmark's *test* numbers (``cifar10-test`` of NAS-Bench-201, ``test_acc``,
``test_accuracy``...) exist so that a search can be judged by data it never
saw. Once a search objective, a predictor's training target, a strategy's
signal or a trial stored while the search runs holds a test number, the
reported test accuracy is no longer an estimate of anything: it has been
optimised. So:

* :func:`is_test_column` says from its name whether a column or metric holds
  test data (the name is all a config, a CLI flag or a table header gives us);
* :func:`refuse_test_column` is called wherever a name *chooses* something
  (objective, training target, search column) and raises :class:`ConfigError`;
* :data:`REPORT_COLUMNS` is the explicit allow-list of test columns that may be
  *reported* after a search has ended (the incumbent's test accuracy in
  ``nas bench``, the one-shot rank correlation); :func:`check_report_column`
  lets those, and non-test columns, through.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from nas.core.errors import ConfigError

#: "test" as a word of the name: at its start or after a non-letter (``cifar10-test``,
#: ``test_acc``, ``testAcc``, ``cifar10test``), not inside another word (``latest``, ``contest``).
_TEST_WORD = re.compile(r"(?<![a-z])test")
#: camelCase: ``valTest``, ``cifarTestAcc``.
_CAMEL_TEST = re.compile(r"(?<=[a-z0-9])Test")

#: Test columns a benchmark may REPORT after its search has ended, never use to choose:
#: the three test columns of the NAS-Bench-201 table (``nb201/nb201_12epoch.csv``).
REPORT_COLUMNS: frozenset[str] = frozenset({"cifar10-test", "cifar100-test", "imagenet-test"})


def is_test_column(name: str) -> bool:
    """Whether the column or metric ``name`` holds test results (``cifar10-test``, ``test_acc``, ...)."""
    return bool(_TEST_WORD.search(name.lower()) or _CAMEL_TEST.search(name))


def refuse_test_column(name: str, where: str, allowed: Iterable[str] | None = None) -> str:
    """``name`` unchanged, or :class:`ConfigError` if it is a test column.

    ``where`` says what the name would choose (``"--metric"``, ``"objective"``,
    ...); ``allowed`` lists the usable columns when the caller knows them (test
    columns among them are left out of the message).
    """
    if is_test_column(name):
        usable = [c for c in allowed if not is_test_column(c)] if allowed is not None else None
        what = (
            f"allowed: {usable}"
            if usable is not None
            else "allowed: a column whose name does not mark it as test data, e.g. cifar10-val"
        )
        raise ConfigError(
            f"{where} may not use test column {name!r}: test data is never searched on or trained on, "
            f"only reported after the search ({sorted(REPORT_COLUMNS)}); {what}"
        )
    return name


def check_report_column(name: str, where: str) -> str:
    """``name`` unchanged if it may be reported after a search: any non-test column, or one of
    :data:`REPORT_COLUMNS`; else :class:`ConfigError`."""
    if is_test_column(name) and name not in REPORT_COLUMNS:
        raise ConfigError(
            f"{where} {name!r} is a test column outside the report allow-list; allowed test columns: "
            f"{sorted(REPORT_COLUMNS)}, or any non-test column"
        )
    return name


__all__ = ["REPORT_COLUMNS", "check_report_column", "is_test_column", "refuse_test_column"]
