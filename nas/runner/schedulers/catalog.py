"""The built-in schedulers, declared without importing them (no Ray, no torch).

A scheduler plugin is one module with a :class:`~nas.runner.schedulers.base.Scheduler`
subclass and a line here (or ``@SCHEDULERS.register("name")`` in a module the
config's ``plugins:`` imports).
"""

from __future__ import annotations

from nas.core.scheduler import SCHEDULERS

#: Scheduler name -> ``"module:class"`` of its implementation.
BUILTINS: dict[str, str] = {
    "asha": "nas.runner.schedulers.asha:Asha",
    "bohb": "nas.runner.schedulers.bohb:BohbScheduler",
    "hyperband": "nas.runner.schedulers.hyperband:Hyperband",
    "lc": "nas.runner.schedulers.lc:LearningCurveScheduler",
    "moasha": "nas.runner.schedulers.moasha:MultiObjectiveAshaScheduler",
}

for _name, _reference in BUILTINS.items():
    SCHEDULERS.register_lazy(_name, _reference)

__all__ = ["BUILTINS"]
