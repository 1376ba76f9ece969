"""Evaluators for runner tests, loaded through the config's ``plugins`` field.

They are real evaluators, just cheap: the score is a fixed function of the
architecture (the share of convolutions in an nb201 cell), reported per step
like a learning curve. ``sleep_s`` makes a trial last long enough to kill its
worker; ``fail_on`` makes chosen architectures raise, as a broken model would.
"""

from __future__ import annotations

import time

from nas.core import EVALUATORS, Architecture, EvalResult, Evaluator, Reporter, SearchSpace


def score(arch: Architecture) -> float:
    convs = sum(str(value).startswith("nor_conv") for _, value in arch.decisions)
    pools = sum(value == "avg_pool_3x3" for _, value in arch.decisions)
    return 40.0 + 8.0 * convs + 2.0 * pools


@EVALUATORS.register("curve")
class CurveEvaluator(Evaluator):
    #: Its curves have ``steps`` points, so schedulers (which need curves) accept it.
    fidelity = "steps"

    def __init__(self, space: SearchSpace, steps: int = 3, sleep_s: float = 0.0, fail_on: str | None = None):
        super().__init__(space)
        self.steps, self.sleep_s, self.fail_on = steps, sleep_s, fail_on

    def evaluate(
        self, arch: Architecture, seed: int = 0, budget: float | None = None, report: Reporter | None = None
    ) -> EvalResult:
        if self.fail_on is not None and arch["1<-0"] == self.fail_on:
            raise RuntimeError(f"this model cannot be trained: edge 1<-0 is {self.fail_on}")
        final = score(arch)
        for step in range(1, self.steps + 1):
            time.sleep(self.sleep_s)
            if report is not None:
                report(step, {"val_accuracy": final * step / self.steps})
        return EvalResult(values={"val_accuracy": final, "params": float(len(arch))})
