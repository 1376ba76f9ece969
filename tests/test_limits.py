"""Hostile or absurd input ends as one clear error of ours, fast, and leaves nothing behind.

Each test reproduces a problem found by feeding the platform input nobody
should write (a YAML alias bomb, an impossible resource request, a typo in an
objective, user code that raises, path tricks in a study name) and checks
that it is refused up front: a :class:`~nas.core.ConfigError` in Python, or
exit code 2 with one ``error:`` line from ``nas``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
import yaml

import nas
from nas.core import Architecture, ConfigError
from nas.core.errors import MAX_MESSAGE_CHARS, shorten
from nas.runner import build_plan, run_search
from nas.runner.cluster import check_placeable
from nas.settings import load_config
from nas.settings.limits import MAX_CONFIG_BYTES, MAX_STRING_CHARS
from nas.store.url import artifact_dir

REPO = Path(__file__).resolve().parents[1]
SMALL = {"name": "t", "space": {"name": "nb201", "channels": 4, "cells": 1}}


def alias_bomb(levels: int) -> str:
    """Each level lists the previous one nine times: 9**levels values from a few hundred bytes."""
    lines = [
        "name: lol",
        "space: {name: nb201}",
        'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    ]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


def nas_cli(
    *args: str, cwd: Path, extra_path: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``nas ARGS`` in a fresh process (this checkout first on the path), as a user runs it."""
    paths = [str(REPO), *([str(extra_path)] if extra_path else []), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    env.pop("NAS_STORAGE", None)
    return subprocess.run(
        [sys.executable, "-m", "nas.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 2, no traceback, one ``error:`` message naming ``needles``."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ")
    assert len(result.stderr) < MAX_MESSAGE_CHARS + 200
    for needle in needles:
        assert needle in result.stderr, result.stderr
    return result.stderr


# -- YAML and config size ---------------------------------------------------------------------------


def test_a_yaml_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    path = tmp_path / "lol.yaml"
    path.write_text(alias_bomb(7))  # 4.8 million values once expanded, from about 600 bytes
    assert path.stat().st_size < 1000
    # Refused before expanding: the peak of Python allocations stays far below what 4.8 million
    # values would take (hundreds of MB), a machine-independent proof where a timer would not be.
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match="aliases expand to more than") as caught:
            load_config(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, peak
    assert len(str(caught.value)) < 500 and str(path) in str(caught.value)


def test_a_few_anchors_and_aliases_still_load(tmp_path: Path) -> None:
    path = tmp_path / "anchors.yaml"
    path.write_text(
        "space: &space {name: nb201, channels: 4, cells: 1}\n"
        "evaluator: &ev {name: train, epochs: 1}\n"
        "objectives: {val_accuracy: max}\n"
    )
    assert load_config(path).space.options == {"channels": 4, "cells": 1}


def test_a_config_file_over_the_byte_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("name: big\nspace: {name: nb201}\n" + "# padding\n" * (MAX_CONFIG_BYTES // 10 + 10))
    with pytest.raises(ConfigError, match=f"larger than {MAX_CONFIG_BYTES} bytes"):
        load_config(path)


def test_deeply_nested_yaml_is_refused_not_a_recursion_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("name: deep\nspace: {name: nb201, x: " + "[" * 5000 + "]" * 5000 + "}\n")
    with pytest.raises(ConfigError, match="nested"):
        load_config(path)


def test_a_huge_string_in_a_config_is_refused() -> None:
    with pytest.raises(ConfigError, match=f"the limit is {MAX_STRING_CHARS}"):
        load_config({**SMALL, "strategy": {"name": "random", "note": "x" * (MAX_STRING_CHARS + 1)}})


def test_error_messages_are_bounded() -> None:
    assert shorten("x" * 10) == "x" * 10
    cut = shorten("x" * 100_000)
    assert len(cut) < MAX_MESSAGE_CHARS + 50 and cut.endswith("(96000 more characters)")


def test_the_store_refuses_oversized_json_and_keeps_messages_short(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with pytest.raises(ConfigError, match="the limit is") as caught:
        nas.create_study("big", url, space="nb201", config={"blob": "x" * 2_000_000})
    assert len(str(caught.value)) < 500
    study = nas.create_study("ok", url, space="nb201")
    trial = study.ask()
    with pytest.raises(ConfigError, match="the limit is"):
        study.tell(trial, 1.0, user_attrs={"blob": ["y" * 1000] * 2000})
    assert [s.info.name for s in nas.list_studies(url)] == ["ok"]


def test_the_cli_turns_an_alias_bomb_into_one_short_line(tmp_path: Path) -> None:
    (tmp_path / "lol.yaml").write_text(alias_bomb(7))
    result = nas_cli("search", "lol.yaml", "--storage", f"sqlite:///{tmp_path / 's.db'}", cwd=tmp_path)
    assert_one_line_error(result, "aliases")
    assert not (tmp_path / "s.db").exists()


# -- objectives the evaluator never reports -------------------------------------------------------------


def test_an_objective_the_evaluator_does_not_report_is_refused_with_the_allowed_list() -> None:
    with pytest.raises(ConfigError, match="accuracy_typo") as caught:
        build_plan({**SMALL, "objectives": {"accuracy_typo": "max"}})
    message = str(caught.value)
    assert "objectives:" in message and "val_accuracy" in message and "Did you mean" in message


def test_table_evaluators_report_their_objective_option_and_latency_with_a_device() -> None:
    table = {"name": "t", "space": {"name": "nb201"}, "evaluator": {"name": "nb201_table"}}
    build_plan({**table, "objectives": {"val_accuracy": "max"}})
    with pytest.raises(ConfigError, match="latency_ms"):
        build_plan({**table, "objectives": {"val_accuracy": "max", "latency_ms": "min"}})
    renamed = {**table, "evaluator": {"name": "nb201_table", "objective": "acc"}}
    build_plan({**renamed, "objectives": {"acc": "max"}})
    with pytest.raises(ConfigError, match="Allowed: acc"):
        build_plan({**renamed, "objectives": {"val_accuracy": "max"}})


def test_a_constraint_on_a_metric_the_cost_model_does_not_measure_is_refused() -> None:
    build_plan({**SMALL, "constraints": {"params": "<= 1e6", "flops": "<= 1e8"}})
    with pytest.raises(ConfigError, match="constraint metric .* 'latency_ms'. Allowed: flops, params"):
        build_plan({**SMALL, "constraints": {"latency_ms": "<= 20"}})


def test_the_cli_refuses_an_objective_typo_before_any_trial(tmp_path: Path) -> None:
    (tmp_path / "typo.yaml").write_text(
        "space: {name: nb201, channels: 4, cells: 1}\nobjectives: {accuracy_typo: max}\n"
    )
    result = nas_cli("search", "typo.yaml", "--storage", f"sqlite:///{tmp_path / 's.db'}", cwd=tmp_path)
    assert_one_line_error(result, "accuracy_typo", "val_accuracy")
    assert not (tmp_path / "s.db").exists()


# -- user code and absurd sizes ---------------------------------------------------------------------------


@pytest.fixture
def user_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on the path with a dataset function, a plugin and a space plugin that all raise."""
    (tmp_path / "limits_userds.py").write_text(
        "def boom(seed=0):\n    raise RuntimeError('user dataset broke')\n"
    )
    (tmp_path / "limits_badplugin.py").write_text("raise RuntimeError('plugin broke at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_a_dataset_function_that_raises_is_a_config_error_and_writes_nothing(user_code: Path) -> None:
    url = f"sqlite:///{user_code / 'store.db'}"
    config = {**SMALL, "dataset": {"name": "limits_userds:boom"}}
    with pytest.raises(ConfigError, match="user dataset broke") as caught:
        run_search(config, storage=url, show_progress=False)
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert not (user_code / "store.db").exists() or nas.list_studies(url) == []


def test_a_plugin_that_raises_on_import_is_a_config_error(user_code: Path) -> None:
    with pytest.raises(ConfigError, match="plugin module 'limits_badplugin' failed while importing"):
        load_config({**SMALL, "plugins": ["limits_badplugin"]})


def test_a_space_constructor_that_raises_is_a_config_error() -> None:
    from nas.core.space import SPACES, create_space

    class Fragile(SPACES.get("nb201")):  # type: ignore[misc,valid-type]
        def __init__(self, channels: int = 4) -> None:
            raise ZeroDivisionError("fragile")

    SPACES._entries["limits_fragile"] = Fragile
    try:
        with pytest.raises(ConfigError, match="ZeroDivisionError: fragile"):
            create_space("limits_fragile", channels=3)
    finally:
        del SPACES._entries["limits_fragile"]


@pytest.mark.parametrize(
    ("space", "needle"),
    [
        ({"name": "nb201", "channels": 10**11, "cells": 1}, "channels=100000000000"),
        ({"name": "nb201", "channels": 4, "cells": 10**6}, "cells=1000000"),
        ({"name": "darts", "channels": 10**9}, "channels=1000000000"),
        ({"name": "hybrid", "base_width": 10**9}, "base_width=1000000000"),
    ],
)
def test_absurd_widths_and_depths_are_refused(space: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        build_plan({"name": "t", "space": space})


def test_an_absurd_input_shape_is_refused() -> None:
    dataset = {"name": "synthetic", "shape": [3, 100_000, 100_000], "num_classes": 2}
    with pytest.raises(ConfigError, match="too large"):
        load_config({**SMALL, "dataset": dataset})
    with pytest.raises(ConfigError, match="image_size"):
        load_config({**SMALL, "dataset": {"name": "image_folder", "path": ".", "image_size": 10**6}})


def test_deeply_nested_architecture_json_is_an_architecture_error() -> None:
    with pytest.raises(ConfigError, match="nested 20000 levels deep"):
        Architecture.from_json('{"a":' * 20_000)
    text = '{"space": "s", "decisions": {"x": "[[[[{{{{"}}'
    assert Architecture.from_json(text)["x"] == "[[[[{{{{"  # brackets inside strings do not count


def test_the_cli_reports_user_code_and_absurd_input_in_one_line(user_code: Path) -> None:
    storage = f"sqlite:///{user_code / 's.db'}"
    configs = {
        "ds.yaml": ("dataset: {name: 'limits_userds:boom'}\n", "user dataset broke"),
        "plug.yaml": ("plugins: [limits_badplugin]\n", "plugin broke at import"),
    }
    for name, (extra, needle) in configs.items():
        (user_code / name).write_text("space: {name: nb201, channels: 4, cells: 1}\n" + extra)
        result = nas_cli("search", name, "--storage", storage, cwd=user_code, extra_path=user_code)
        assert_one_line_error(result, needle)
    (user_code / "wide.yaml").write_text("space: {name: nb201, channels: 100000000000}\n")
    assert_one_line_error(nas_cli("search", "wide.yaml", "--storage", storage, cwd=user_code), "channels")
    deep = '{"a":' * 20_000
    assert_one_line_error(nas_cli("show-arch", "nb201", deep, cwd=user_code), "nested")
    assert not (user_code / "s.db").exists()


# -- study names and artifact paths ---------------------------------------------------------------------


def test_a_name_override_is_validated_like_the_configs_name() -> None:
    with pytest.raises(ConfigError, match="name"):
        build_plan(SMALL, name="../../esc")
    assert build_plan(SMALL, name="renamed").config.name == "renamed"


@pytest.mark.parametrize("name", ["../../esc", "..", "a/../../b", "/abs", "line\nbreak", "nul\x00"])
def test_the_study_api_refuses_names_that_could_leave_a_folder(tmp_path: Path, name: str) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with pytest.raises(ConfigError, match="study name"):
        nas.create_study(name, url, space="nb201")


def test_artifact_folders_stay_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    assert artifact_dir(root, "study", "trial-000001") == (root / "study" / "trial-000001").resolve()
    for parts in (("../../esc", "trial-000001"), ("..",), ("a", "..", "..", "b")):
        with pytest.raises(ConfigError, match="outside the artifacts root"):
            artifact_dir(root, *parts)
    (tmp_path / "elsewhere").mkdir()
    root.mkdir()
    (root / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match="outside the artifacts root"):
        artifact_dir(root, "link", "trial-000001")


def test_the_cli_refuses_a_path_in_name(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text("space: {name: nb201}\nevaluator: {name: nb201_table}\n")
    result = nas_cli(
        "search",
        "ok.yaml",
        "--name",
        "../../esc",
        "--storage",
        f"sqlite:///{tmp_path / 's.db'}",
        cwd=tmp_path,
    )
    assert_one_line_error(result, "../../esc")
    assert not (tmp_path / "s.db").exists()


# -- resources the cluster can never place -----------------------------------------------------------------


def test_a_request_no_node_can_place_is_refused_naming_request_and_total() -> None:
    nodes = [{"CPU": 4.0}, {"CPU": 8.0, "GPU": 1.0}]
    total = {"CPU": 12.0, "GPU": 1.0}
    check_placeable({"CPU": 8.0, "GPU": 1.0}, total, nodes)
    with pytest.raises(ConfigError, match=r"resources.cpu=1e\+06 .* largest node .* 8 CPU .* total is 12"):
        check_placeable({"CPU": 1_000_000.0, "GPU": 0.0}, total, nodes)
    with pytest.raises(ConfigError, match="resources.gpu=2"):
        check_placeable({"CPU": 1.0, "GPU": 2.0}, total, nodes)
    with pytest.raises(ConfigError, match="resources.cpu=10"):  # 12 in total, but no node has 10
        check_placeable({"CPU": 10.0}, total, nodes)


def test_a_search_asking_for_a_million_cpus_exits_2_before_writing_anything(tmp_path: Path) -> None:
    """``nas search`` checks the request against this machine (the local cluster to be) before the store."""
    config = {
        "name": "greedy",
        "space": {"name": "nb201"},
        "evaluator": {"name": "nb201_table"},
        "budget": {"trials": 2, "concurrent": 2},
        "resources": {"cpu": 1_000_000},
    }
    (tmp_path / "greedy.yaml").write_text(yaml.safe_dump(config))
    db = tmp_path / "s.db"
    # (a generous timeout: before this check existed, the refusal waited for Ray to start)
    result = nas_cli(
        "search", "greedy.yaml", "--storage", f"sqlite:///{db}", "--quiet", cwd=tmp_path, timeout=300
    )
    assert_one_line_error(result, "resources.cpu=1e+06 per trial can never be placed", "CPU")
    assert result.stderr.count("\n") == 1
    assert not db.exists(), nas.list_studies(f"sqlite:///{db}")  # not even the store was created


@pytest.mark.ray
def test_a_request_the_running_ray_cannot_place_writes_no_study(tmp_path: Path) -> None:
    """With Ray up (a real local 1-CPU cluster), the exact check runs before the store is written."""
    pytest.importorskip("ray")
    from nas.runner.cluster import connect, shutdown

    connect(None, num_cpus=1)
    url = f"sqlite:///{tmp_path / 's.db'}"
    try:
        for cpus, shown in ((2, "cpu=2"), (1_000_000, "cpu=1e+06")):
            config = {
                "name": "greedy",
                "space": {"name": "nb201"},
                "evaluator": {"name": "nb201_table"},
                "budget": {"trials": 2, "concurrent": 2},
                "resources": {"cpu": cpus},
            }
            with pytest.raises(ConfigError, match="largest node of the Ray cluster has 1 CPU") as caught:
                run_search(config, storage=url, show_progress=False)
            assert f"resources.{shown} per trial can never be placed" in str(caught.value)
            assert not (tmp_path / "s.db").exists()  # no study row: not even the store was created
    finally:
        shutdown()
