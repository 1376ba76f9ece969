"""Tabular evaluators, the nb201 bench and ``nas bench nb201``.

Expected numbers are read from the CSV files with the csv module, never
copied into the tests; small hand-made tables cover the error paths.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import nas.bench
from nas.cli import main
from nas.core import EVALUATORS, SPACES, ArchitectureError, ConfigError, NASError, UnknownNameError
from nas.core.leakage import is_test_column
from nas.data.paths import data_dir, data_path
from nas.data.tables import Table
from nas.evaluators.tabular import (
    FbnetLatencyEvaluator,
    Nb201TableEvaluator,
    TableEvaluator,
)
from search_spaces import get_space

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"


@pytest.fixture(scope="module")
def space():  # noqa: ANN201
    return get_space("nb201")


@pytest.fixture(scope="module")
def rows(data_dir: Path) -> list[dict[str, str]]:
    with open(data_dir / "nb201" / "nb201_12epoch.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def latency_rows(data_dir: Path) -> dict[str, dict[str, str]]:
    with open(data_dir / "nb201" / "nb201_latency_ms.csv", newline="") as handle:
        return {r["arch"]: r for r in csv.DictReader(handle)}


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


# -- data location --------------------------------------------------------------------------------


def test_data_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NAS_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path
    assert data_path("nb201/x.csv") == tmp_path / "nb201" / "x.csv"
    monkeypatch.delenv("NAS_DATA_DIR")
    assert data_dir() == Path(nas.bench.__file__).resolve().parents[2] / "shared" / "data"


# -- tables ---------------------------------------------------------------------------------------


def test_nb201_table_matches_the_csv(space, rows) -> None:  # noqa: ANN001
    table = Table.load(data_path("nb201/nb201_12epoch.csv"), space)
    assert len(table) == len(rows) == 15625
    assert Table.load(data_path("nb201/nb201_12epoch.csv"), space) is table  # parsed once
    for row in np.random.default_rng(0).choice(len(rows), 20, replace=False):
        expected = rows[int(row)]
        arch = space.parse(expected["arch"])
        assert table.value(arch, "cifar10-val") == float(expected["cifar10-val"])
        assert table.value(arch, "imagenet-test") == float(expected["imagenet-test"])


def test_evaluator_maps_columns_to_objectives_and_returns_nothing_else(space, rows, latency_rows) -> None:  # noqa: ANN001
    evaluator = Nb201TableEvaluator(space, device="pixel3")
    expected = next(r for r in rows if r["arch"] == BEST)
    result = evaluator.evaluate(space.parse(BEST))
    assert result.values == {
        "val_accuracy": float(expected["cifar10-val"]),
        "latency_ms": float(latency_rows[BEST]["pixel3"]),
    }
    assert result.user_attrs == {}  # test numbers are read after the search, never carried by a trial
    other = Nb201TableEvaluator(space, metric="cifar100-val")
    assert other.evaluate(space.parse(BEST)).values == {"val_accuracy": float(expected["cifar100-val"])}
    assert EVALUATORS.get("nb201_table") is Nb201TableEvaluator


def test_search_on_a_test_column_is_refused(space) -> None:  # noqa: ANN001
    assert is_test_column("cifar10-test") and is_test_column("test_acc") and not is_test_column("latest")
    with pytest.raises(ConfigError, match="may not use test column 'cifar10-test'.*cifar10-val"):
        Nb201TableEvaluator(space, metric="cifar10-test")
    with pytest.raises(UnknownNameError, match="cifar10-val"):
        Nb201TableEvaluator(space, metric="cifar10-vall")
    with pytest.raises(UnknownNameError, match="pixel3"):
        Nb201TableEvaluator(space, device="pixel33")


def test_any_csv_with_an_arch_column_works_and_falls_back_to_the_canonical_class(
    space, tmp_path: Path
) -> None:  # noqa: ANN001
    dead = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"  # node 1 is dead
    twin = "|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
    assert space.canonical_key(space.parse(dead)) == space.canonical_key(space.parse(twin))
    path = write(tmp_path / "t.csv", ["arch,my-val,notes", f"{BEST},1.5,good", f"{dead},0.25,dull"])
    evaluator = TableEvaluator(space, table=path, metrics={"score": "my-val"})
    assert evaluator.evaluate(space.parse(twin)).values == {"score": 0.25}
    assert Table.load(path, space).columns == ["my-val"]  # 'notes' is text, not a metric
    with pytest.raises(ArchitectureError, match="not in benchmark table"):
        evaluator.evaluate(space.parse(BEST.replace("skip_connect~0", "avg_pool_3x3~0")))


@pytest.mark.parametrize(
    ("lines", "error", "match"),
    [
        (["name,acc", "x,1"], ConfigError, "no 'arch' column"),
        (["arch,acc", "|bogus~0|+|x~0|y~1|+|a~0|b~1|c~2|,1"], ArchitectureError, "line 2.*not a nb201"),
        (["arch,acc", f"{BEST},1", f"{BEST},2"], ArchitectureError, "rows 1 and 2"),
        (["arch,acc"], ConfigError, "no rows"),
        ([], ConfigError, "empty"),
        (["arch,acc", f"{BEST},1,2"], ConfigError, "line 2: 3 fields"),
    ],
)
def test_bad_tables_are_clear_errors(space, tmp_path: Path, lines, error, match) -> None:  # noqa: ANN001
    path = write(tmp_path / "bad.csv", lines)
    with pytest.raises(error, match=match):
        Table.load(path, space)


def test_missing_table_names_the_path_and_the_variable(space, tmp_path: Path) -> None:  # noqa: ANN001
    with pytest.raises(ConfigError, match="NAS_DATA_DIR"):
        Table.load(tmp_path / "nope.csv", space)


def test_a_nan_in_the_table_fails_the_evaluation(space, tmp_path: Path) -> None:  # noqa: ANN001
    path = write(tmp_path / "nan.csv", ["arch,acc-val", f"{BEST},"])
    evaluator = TableEvaluator(space, table=path, metrics={"val_accuracy": "acc-val"})
    with pytest.raises(NASError, match="no 'acc-val' value"):
        evaluator.evaluate(space.parse(BEST))


def test_fbnet_latency_reads_the_device_column(data_dir: Path) -> None:
    if "fbnet" not in SPACES:
        pytest.skip("fbnet space not registered")
    fbnet = get_space("fbnet")
    with open(data_dir / "fbnet" / "fbnet_latency_ms.csv", newline="") as handle:
        first = next(csv.DictReader(handle))
    evaluator = FbnetLatencyEvaluator(fbnet, device="raspi4")
    assert evaluator.evaluate(fbnet.parse(first["arch"])).values == {"latency_ms": float(first["raspi4"])}
    with pytest.raises(ConfigError, match="'fbnet' space"):
        FbnetLatencyEvaluator(get_space("nb201"))


# -- the bench (its test-column guard is in tests/test_leakage.py) ------------------------------------


def test_bench_reports_incumbents_and_hypervolume(space) -> None:  # noqa: ANN001
    result = nas.bench.run_nb201(
        "random", 30, [0, 1], objectives={"val_accuracy": "max", "latency_ms": "min"}, checkpoints=[10, 30]
    )
    table = Table.load(data_path("nb201/nb201_12epoch.csv"), space)
    assert result.best_value == table.column("cifar10-val").max()
    for run in result.runs:
        assert len(run.trials) == 30
        first, last = run.incumbents
        assert last.search >= first.search
        assert last.search == max(t.values["val_accuracy"] for t in run.trials)
        assert last.test == table.value(space.parse(last.arch), "cifar10-test")
        assert 0 < run.hypervolume_ratio[0] <= run.hypervolume_ratio[1] <= 1
    summary = result.summary()
    assert [row["queries"] for row in summary] == [10, 30]
    assert summary[1]["search_mean"] == np.mean([r.incumbents[1].search for r in result.runs])


def test_bench_constraints_use_cost_metrics_only() -> None:
    result = nas.bench.run_nb201("evolution", 15, [0], constraints=["latency_ms <= 8"], checkpoints=[15])
    assert all(t.values["latency_ms"] <= 8 for t in result.runs[0].trials)
    with pytest.raises(UnknownNameError, match="latency_ms"):
        nas.bench.run_nb201("random", 5, [0], constraints=["val_accuracy >= 80"])


# -- CLI ---------------------------------------------------------------------------------------------


def test_cli_json_has_each_seeds_incumbent_per_checkpoint(space) -> None:  # noqa: ANN001
    out = CliRunner().invoke(
        main, ["bench", "nb201", "--strategy", "local", "--queries", "20", "--seeds", "2", "--json"]
    )
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert [c["queries"] for c in data["checkpoints"]] == [10, 20]
    assert [r["seed"] for r in data["runs"]] == [0, 1]
    for run in data["runs"]:
        assert [i["queries"] for i in run["incumbents"]] == [10, 20]
        for incumbent in run["incumbents"]:
            space.parse(incumbent["arch"])


def test_cli_table_and_errors() -> None:
    runner = CliRunner()
    out = runner.invoke(main, ["bench", "nb201", "--strategy", "random", "--queries", "10", "--seeds", "1"])
    assert out.exit_code == 0, out.output
    assert "incumbent cifar10-val" in out.output and "cifar10-test" in out.output
    out = runner.invoke(main, ["bench", "nb201", "--strategy", "randon", "--queries", "5"])
    assert out.exit_code == 2 and "unknown strategy 'randon'" in out.output
    out = runner.invoke(main, ["bench", "nb201", "--metric", "cifar10-test", "--queries", "5"])
    assert out.exit_code == 2 and "test column" in out.output
    out = runner.invoke(main, ["bench", "nb201", "--option", "population_size", "--queries", "5"])
    assert out.exit_code == 2 and "KEY=VALUE" in out.output
