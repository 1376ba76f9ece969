"""Orchestration of black-box searches on Ray Tune (``nas search``)."""

from nas.runner.search import SearchOutcome, run_search

__all__ = ["SearchOutcome", "run_search"]
