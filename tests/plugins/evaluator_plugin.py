"""A minimal evaluator plugin: a fixed, instant score from the architecture's decisions.

An evaluator turns one architecture into an :class:`~nas.core.EvalResult`
(named float values; objectives are looked up there by name) and may stream
per-step metrics through ``report``; it implements ``measure`` (the base class's
``evaluate`` packs its arguments into an ``EvalRequest``). This one works on any space. It must pass
the contract in tests/test_evaluator_contract.py.
"""

from __future__ import annotations

from nas.core import EVALUATORS, EvalResult, Evaluator, SearchSpace, positive_int
from nas.core.evaluator import EvalRequest


@EVALUATORS.register("plugin_choice_index")
class ChoiceIndexEvaluator(Evaluator):
    """``val_accuracy``: how far along its list of choices each decision is, on average (0-100)."""

    reports = ("val_accuracy", "decisions")

    def __init__(self, space: SearchSpace, steps: int = 2) -> None:
        super().__init__(space)
        self.steps = positive_int("plugin_choice_index", "steps", steps)

    def measure(self, request: EvalRequest) -> EvalResult:
        arch, report = request.arch, request.report
        self.space.validate(arch)
        choices = self.space.choices()
        shares = [
            list(choices[name]).index(value) / max(len(choices[name]) - 1, 1)
            for name, value in arch.decisions
        ]
        final = 100.0 * sum(shares) / len(shares)
        for step in range(1, self.steps + 1):
            if report is not None:
                report(step, {"val_accuracy": final * step / self.steps})
        return EvalResult(values={"val_accuracy": final, "decisions": float(len(shares))})
