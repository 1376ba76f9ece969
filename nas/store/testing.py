"""Helpers for testing the store against real databases (shipped, as ``optuna.testing`` is).

* :func:`postgres_test_url` and :func:`temporary_schema` give each PostgreSQL
  test its own schema, so tests never see each other's rows and never drop
  the shared database.
* :func:`ask_tell_worker` and :func:`run_writer` are the bodies of the
  multi-process race test and the SIGKILL test; they live in an importable
  module because ``multiprocessing``'s spawn start method and a
  ``python -m`` subprocess need one.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import networkx as nx
from sqlalchemy import create_engine, text

from nas.core.architecture import Architecture, Scalar
from nas.core.errors import ArchitectureError
from nas.core.space import SearchSpace
from nas.store.url import parse_storage_url

#: Environment variable with the URL of a PostgreSQL database the tests may use.
POSTGRES_ENV_VAR = "NAS_TEST_POSTGRES_URL"


def postgres_test_url() -> str | None:
    """The PostgreSQL URL for tests, or ``None`` if ``NAS_TEST_POSTGRES_URL`` is unset."""
    return os.environ.get(POSTGRES_ENV_VAR) or None


@contextlib.contextmanager
def temporary_schema(url: str) -> Iterator[str]:
    """Create a fresh PostgreSQL schema; yield a URL whose ``search_path`` is that schema; drop it after."""
    parsed = parse_storage_url(url)
    schema = f"nas_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(parsed, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        options = f"-csearch_path={schema}"
        yield parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


class ChainSpace(SearchSpace):
    """A torch-free space (6 decisions of 5 ops: 15,625 chains) for multi-process store tests.

    It is not registered: the workers of the race and kill tests pass it to
    ``load_study(space=...)``, so each spawned process imports neither torch
    nor the space plugins and the test measures the store, not import time.
    """

    name = "store-chain"
    OPS = ("a", "b", "c", "d", "e")

    def choices(self) -> Mapping[str, Sequence[Scalar]]:
        return {f"op{i}": self.OPS for i in range(6)}

    def to_graph(self, arch: Architecture) -> nx.DiGraph:
        self.validate(arch)
        return nx.path_graph([f"{k}:{v}" for k, v in arch.decisions], create_using=nx.DiGraph)

    def parse(self, text: str) -> Architecture:
        parts = text.split("-")
        if len(parts) != 6:
            raise ArchitectureError(f"chain {text!r} must have 6 ops joined by '-'")
        return self.make({f"op{i}": op for i, op in enumerate(parts)})

    def format(self, arch: Architecture) -> str:
        return "-".join(str(v) for v in self.validate(arch).as_dict().values())

    def build(self, arch: Architecture, num_classes: int = 10, input_shape: Any = (3, 32, 32)) -> Any:
        raise ArchitectureError("the store test space has no model")


def ask_tell_worker(url: str, study_name: str, count: int, worker: int) -> list[int]:
    """Ask and tell ``count`` trials (sampled architectures); return the trial numbers received."""
    from nas.store.study import load_study

    study = load_study(study_name, url, space=ChainSpace())
    numbers = []
    for i in range(count):
        trial = study.ask(node=f"worker-{worker}")
        study.tell(trial, [float(worker * 1000 + i)] * len(study.objectives))
        numbers.append(trial.number)
    study.close()
    return numbers


def run_writer(url: str, study_name: str) -> None:
    """Ask, report and tell trials forever, printing each told trial's number (killed by the test)."""
    from nas.store.study import load_study

    study = load_study(study_name, url, space=ChainSpace())
    i = 0
    while True:
        trial = study.ask()
        for step in range(3):
            study.report(trial, step, {"loss": 1.0 / (step + 1 + i)})
        study.tell(trial, [float(i)] * len(study.objectives), user_attrs={"i": i})
        print(trial.number, flush=True)
        i += 1


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="store test workers")
    parser.add_argument("role", choices=["writer"])
    parser.add_argument("url")
    parser.add_argument("study")
    args = parser.parse_args(argv)
    run_writer(args.url, args.study)


def schema_differences(url: str) -> list[object]:
    """Differences between the database's schema and :mod:`nas.store.schema` (empty when in sync)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from nas.store.schema import metadata

    engine = create_engine(parse_storage_url(url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def run_sql(
    url: str, statement: str, params: dict[str, object] | list[dict[str, object]] | None = None
) -> list[tuple[object, ...]]:
    """Run one SQL statement in its own transaction (for tests that build old schemas by hand)."""
    engine = create_engine(parse_storage_url(url))
    try:
        with engine.begin() as connection:
            result = connection.execute(text(statement), params or {})
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


def downgrade(url: str, revision: str) -> None:
    """Migrate the store at ``url`` down to ``revision`` (the platform itself only upgrades)."""
    from alembic import command

    from nas.store.migrate import alembic_config

    engine = create_engine(parse_storage_url(url))
    try:
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), revision)
    finally:
        engine.dispose()


if __name__ == "__main__":  # pragma: no cover - run as a subprocess by the kill test
    sys.exit(_main())
