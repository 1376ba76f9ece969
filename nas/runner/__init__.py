"""Orchestration of searches on Ray Tune (``nas search``): one driver for black-box and one-shot."""

from nas.runner.driver import SearchOutcome, run_search
from nas.runner.lifecycle import SearchInterrupted
from nas.runner.plan import SearchPlan, build_plan

__all__ = ["SearchInterrupted", "SearchOutcome", "SearchPlan", "build_plan", "run_search"]
