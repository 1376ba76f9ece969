"""The search-space interface.

A space is a set of architectures described by independent categorical
decisions (``choices``) plus optional validity rules (``check``). From that
description this base class derives sampling, mutation, neighbourhoods and a
one-hot encoding, so a new space mostly writes its string form, its graph and
its PyTorch builder. Randomness always comes from an explicit
``numpy.random.Generator``: nothing here touches global RNG state.

This module is part of the kernel: stdlib, numpy and networkx only. The torch
side (``build`` and model statistics) lives in ``search_spaces``.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import networkx as nx
import numpy as np

from nas.core.architecture import Architecture, Scalar
from nas.core.errors import ArchitectureError, ConfigError, shorten
from nas.core.options import check_option_names
from nas.core.registry import Registry

#: How often rejection sampling may fail before the space is declared broken.
_MAX_TRIES = 10_000


def as_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """An explicit generator from a seed (or the generator itself)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


class SearchSpace(abc.ABC):
    """Base class of every search space plugin."""

    #: Registered name; also the ``space`` field of its architectures.
    name: ClassVar[str]

    # -- description -----------------------------------------------------------
    @abc.abstractmethod
    def choices(self) -> Mapping[str, Sequence[Scalar]]:
        """Ordered decision name -> allowed values."""

    def check(self, decisions: Mapping[str, Scalar]) -> None:
        """Raise :class:`ArchitectureError` if a combination of decisions is invalid.

        Override for rules that span decisions (e.g. distinct cell inputs).
        """
        return None

    @property
    def options(self) -> dict[str, Any]:
        """The options this space instance was created with (JSON-serialisable)."""
        return {}

    def parameter_free_ops(self) -> frozenset[Scalar]:
        """Decision values that are ops without weights (skip connections, pooling, ``none``).

        A supernet favours them early in training, when they ease optimisation
        more than untrained convolutions help (DARTS' skip-connection
        collapse); ``nas audit-space`` flags the ones it over-weights.
        Default: none known.
        """
        return frozenset()

    def zero_ops(self) -> frozenset[Scalar]:
        """Decision values (or supernet candidate ops) whose output is all zeros: no connection at all.

        Unlike other parameter-free ops a zero op carries nothing, so a weight
        on it changes nothing (GOLD-NAS' sigmoid weights start it pruned) and
        a derivation may drop it (DARTS never picks ``none``). Always a subset
        of :meth:`parameter_free_ops`. Default: none known.
        """
        return frozenset()

    # -- validation ---------------------------------------------------------------
    def validate(self, arch: Architecture) -> Architecture:
        """Return ``arch`` if it is a member of this space, else raise ArchitectureError."""
        if not isinstance(arch, Architecture):
            raise ArchitectureError(f"expected an Architecture, got {type(arch).__name__}")
        if arch.space != self.name:
            raise ArchitectureError(f"architecture belongs to space {arch.space!r}, not {self.name!r}")
        choices = self.choices()
        names = list(arch)
        if names != list(choices):
            missing = [n for n in choices if n not in names]
            extra = [n for n in names if n not in choices]
            raise ArchitectureError(
                f"{self.name} architecture has wrong decisions (missing {missing}, unexpected {extra}); "
                f"expected, in order: {list(choices)}"
            )
        for name, value in arch.decisions:
            allowed = choices[name]
            if not any(value == a and type(value) is type(a) for a in allowed):
                raise ArchitectureError(
                    f"{self.name} decision {name!r} has value {value!r}; allowed: {list(allowed)}"
                )
        self.check(arch.as_dict())
        return arch

    def is_valid(self, arch: Architecture) -> bool:
        try:
            self.validate(arch)
        except ArchitectureError:
            return False
        return True

    def make(self, decisions: Mapping[str, Scalar]) -> Architecture:
        """A validated architecture of this space from a decision mapping."""
        order = list(self.choices())
        ordered = [(n, decisions[n]) for n in order if n in decisions]
        ordered += [(n, v) for n, v in decisions.items() if n not in order]
        return self.validate(Architecture(self.name, tuple(ordered)))

    def from_json(self, text: str | bytes) -> Architecture:
        """Parse untrusted JSON and check membership of this space."""
        return self.validate(Architecture.from_json(text))

    # -- size -----------------------------------------------------------------------
    def size(self) -> int:
        """Number of architectures (the product of choices; override if ``check`` prunes)."""
        return math.prod(len(v) for v in self.choices().values())

    # -- sampling and moves ----------------------------------------------------------
    def sample(self, rng: int | np.random.Generator | None = None) -> Architecture:
        """A uniformly random architecture (rejection sampling against ``check``)."""
        rng = as_rng(rng)
        choices = self.choices()
        for _ in range(_MAX_TRIES):
            decisions = {n: vals[int(rng.integers(len(vals)))] for n, vals in choices.items()}
            arch = Architecture(self.name, tuple(decisions.items()))
            if self.is_valid(arch):
                return arch
        raise ArchitectureError(f"could not sample a valid {self.name} architecture")

    def mutate(self, arch: Architecture, rng: int | np.random.Generator | None = None) -> Architecture:
        """Change exactly one decision to another value, keeping the result valid."""
        rng = as_rng(rng)
        self.validate(arch)
        options = self.neighbours(arch)
        if not options:
            raise ArchitectureError(f"{self.name} architecture has no valid single-decision mutation")
        return options[int(rng.integers(len(options)))]

    def neighbours(self, arch: Architecture) -> list[Architecture]:
        """Every valid architecture that differs from ``arch`` in exactly one decision."""
        self.validate(arch)
        result = []
        for name, allowed in self.choices().items():
            for value in allowed:
                if value != arch[name]:
                    candidate = arch.replace(**{name: value})
                    if self.is_valid(candidate):
                        result.append(candidate)
        return result

    # -- encodings ----------------------------------------------------------------------
    def encode(self, arch: Architecture) -> np.ndarray:
        """Fixed-length one-hot encoding of every decision (float32)."""
        self.validate(arch)
        parts = []
        for name, allowed in self.choices().items():
            onehot = np.zeros(len(allowed), dtype=np.float32)
            onehot[list(allowed).index(arch[name])] = 1.0
            parts.append(onehot)
        return np.concatenate(parts)

    def encoding_size(self) -> int:
        return sum(len(v) for v in self.choices().values())

    #: True for spaces that implement :meth:`path_encode` (BANANAS' path encoding).
    has_path_encoding: ClassVar[bool] = False

    def path_encode(self, arch: Architecture) -> np.ndarray:
        """Fixed-length path encoding (one bit per input-to-output op path); cell spaces only."""
        raise ArchitectureError(f"space {self.name!r} has no path encoding; use encode()")

    # -- identity -------------------------------------------------------------------------
    def canonical(self, arch: Architecture) -> Architecture:
        """The member standing for ``arch``'s class, the network a supernet runs; default: ``arch`` itself.

        A space whose members can differ without changing the network they
        build (fbnet: skips anywhere in a shape-keeping run) returns the one it
        builds, so specialisation prices and stores that one.
        """
        return self.validate(arch)

    def canonical_key(self, arch: Architecture) -> str:
        """Key equal for functionally identical architectures; default: the exact key."""
        return self.validate(arch).key

    # -- derived views -----------------------------------------------------------------
    @abc.abstractmethod
    def to_graph(self, arch: Architecture) -> nx.DiGraph:
        """A DAG view: nodes and edges carry op names (for drawing and predictors)."""

    @abc.abstractmethod
    def parse(self, text: str) -> Architecture:
        """Parse the space's human string form; raise ArchitectureError if malformed."""

    @abc.abstractmethod
    def format(self, arch: Architecture) -> str:
        """The space's human string form (inverse of :meth:`parse`)."""

    @abc.abstractmethod
    def build(
        self,
        arch: Architecture,
        num_classes: int = 10,
        input_shape: tuple[int, int, int] = (3, 32, 32),
    ) -> Any:
        """The PyTorch ``nn.Module`` for ``arch`` (implemented where torch may be imported)."""


#: Every registered search space; importing ``search_spaces`` registers the built-ins.
SPACES: Registry[type[SearchSpace]] = Registry("search space", builtins="search_spaces")


def create_space(name: str, **options: Any) -> SearchSpace:
    """The registered space ``name`` with ``options``: unknown names or option names raise ConfigError
    (with the allowed ones); bad option values raise the space's own ConfigError."""
    cls = SPACES.get(name)
    check_option_names("space", name, cls, options, skip=("self",))
    try:
        return cls(**options)
    except ConfigError:
        raise
    except Exception as exc:  # a plugin space's own code failed on these options
        raise ConfigError(
            f"space {name!r} cannot be built with options {shorten(repr(options), 300)}: "
            f"{type(exc).__name__}: {shorten(str(exc), 300)}"
        ) from exc


#: Widest layer a space option may ask for (channels, base width): beyond this a network
#: does not fit in memory, and allocating it would fail deep inside torch instead of here.
MAX_WIDTH = 4096
#: Most repeated cells or blocks a space option may ask for.
MAX_DEPTH = 512
#: Largest side of an input image, and most values (channels x height x width) in one.
MAX_SIDE = 4096
MAX_INPUT_VALUES = 2**24
#: Most classes a dataset may have.
MAX_CLASSES = 100_000


def positive_int(space: str, option: str, value: object, minimum: int = 1, maximum: int | None = None) -> int:
    """Validate an integer space option, naming the option and the allowed range."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        allowed = (
            f"an integer in [{minimum}, {maximum}]" if maximum is not None else f"an integer >= {minimum}"
        )
        raise ConfigError(f"{space} option {option}={value!r} is not allowed; expected {allowed}")
    return value


def check_input_shape(shape: object, what: str = "input shape") -> tuple[int, int, int]:
    """A (channels, height, width) of positive integers small enough to build a network for."""
    ok = (
        isinstance(shape, tuple | list)
        and len(shape) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape)
    )
    if not ok:
        raise ConfigError(
            f"{what} {shape!r} is not allowed; expected [channels, height, width] of positive integers"
        )
    channels, height, width = (int(v) for v in shape)  # type: ignore[union-attr]
    if channels > MAX_WIDTH or max(height, width) > MAX_SIDE or channels * height * width > MAX_INPUT_VALUES:
        raise ConfigError(
            f"{what} {list(shape)!r} is too large; allowed: at most {MAX_WIDTH} channels, sides of at most "  # type: ignore[arg-type]
            f"{MAX_SIDE} and {MAX_INPUT_VALUES} values per image"
        )
    return channels, height, width
