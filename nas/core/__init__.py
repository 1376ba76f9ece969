"""The kernel: architecture value, space interface, registry and errors.

Imports only the standard library, numpy and networkx, so every other layer
(and every plugin) can depend on it cheaply.
"""

from nas.core.architecture import Architecture, Scalar
from nas.core.errors import (
    ArchitectureError,
    ConfigError,
    DependencyError,
    NASError,
    StorageError,
    UnknownNameError,
    UnknownOpError,
)
from nas.core.evaluator import EVALUATORS, EvalContext, EvalRequest, EvalResult, Evaluator, Reporter
from nas.core.predictor import PREDICTORS, Predictor
from nas.core.registry import Registry
from nas.core.space import SPACES, SearchSpace, as_rng, positive_int
from nas.core.strategy import STRATEGIES, Strategy
from nas.core.trial import Direction, Trial, TrialState, parse_objectives

__all__ = [
    "Architecture",
    "ArchitectureError",
    "ConfigError",
    "DependencyError",
    "NASError",
    "Registry",
    "Scalar",
    "SPACES",
    "PREDICTORS",
    "Predictor",
    "EVALUATORS",
    "EvalContext",
    "EvalRequest",
    "EvalResult",
    "Evaluator",
    "Reporter",
    "STRATEGIES",
    "Strategy",
    "Direction",
    "Trial",
    "TrialState",
    "parse_objectives",
    "SearchSpace",
    "StorageError",
    "UnknownNameError",
    "UnknownOpError",
    "as_rng",
    "positive_int",
]
