"""Export never destroys data and never runs code named in a stored config.

* ``--force`` replaces only a previous bundle: never the folder holding the
  store, never a directory with anything but bundle files;
* ``--out`` may not be or contain the store's SQLite file or artifacts folder;
* a stored config's ``plugins:`` modules and ``package.module:function``
  datasets are neither imported nor called by export (CLI, Python, dashboard),
  and a plugin that is gone does not stop the export of stored weights;
* the dashboard's export reads the store through a read-only connection.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import sqlite3
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from store_fixtures import postgres_url, storage_url  # noqa: F401  (fixtures)
from test_export import EVALUATOR, SYNTHETIC, add_trained_trial

import nas
from nas.cli import main
from nas.core import ConfigError
from nas.export import export_archive, export_model, load_exported
from nas.export.files import check_target
from nas.settings import load_config
from nas.store.study import Study

SPACE = {"name": "nb201", "channels": 4, "cells": 1}


def stored_study(url: str, name: str, config: dict[str, Any], workdir: Path) -> tuple[Study, int]:
    """A study storing ``config`` as is (as the store and Study API allow) with one trial with weights."""
    options = {k: v for k, v in SPACE.items() if k != "name"}
    study = nas.create_study(name, url, space="nb201", space_options=options, config=config)
    return study, add_trained_trial(study, study.space.sample(0), workdir)


def search_config(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "space": SPACE, "dataset": SYNTHETIC, "evaluator": EVALUATOR, **fields}


# -- --force and --out ------------------------------------------------------------------------------------


def test_force_on_the_folder_holding_the_store_deletes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reported bug: ``--out . --force`` in the store's folder deleted the store and everything else."""
    monkeypatch.chdir(tmp_path)
    study, number = stored_study("sqlite:///s.db", "s", search_config("s"), tmp_path / "s_artifacts")
    (tmp_path / "notes.txt").write_text("mine")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    args = ["export", "s", "--trial", str(number), "--out", ".", "--force", "--storage", "sqlite:///s.db"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "--force refuses to replace" in result.output and str(tmp_path) in result.output
    assert "no bundle has" in result.output and "'s.db'" in result.output
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert nas.load_study("s", "sqlite:///s.db").trial(number).values == study.trial(number).values


def test_force_replaces_only_a_directory_of_bundle_files(tmp_path: Path) -> None:
    study, number = stored_study(f"sqlite:///{tmp_path / 'f.db'}", "f", search_config("f"), tmp_path / "w")
    bundle = tmp_path / "bundle"
    export_model(study, trial=number, out=bundle, formats="pytorch", latency_repeats=1, progress=False)
    check_target(bundle, force=True)  # a previous bundle: replaceable

    (bundle / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"holds 1 entry that no bundle has \('notes.txt'\)"):
        export_model(study, trial=number, out=bundle, force=True, progress=False)
    assert (bundle / "notes.txt").read_text() == "mine" and (bundle / "model.pt").is_file()
    (bundle / "notes.txt").unlink()
    (bundle / "model.ts").mkdir()  # a bundle file name, but a directory
    with pytest.raises(ConfigError, match="'model.ts'"):
        check_target(bundle, force=True)

    lookalike = tmp_path / "lookalike"
    lookalike.mkdir()
    (lookalike / "README.md").write_text("a project")
    with pytest.raises(ConfigError, match="has no card.json"):
        check_target(lookalike, force=True)
    (lookalike / "card.json").write_text('{"title": "not a model card"}')
    with pytest.raises(ConfigError, match="not a model card"):
        check_target(lookalike, force=True)
    assert sorted(p.name for p in lookalike.iterdir()) == ["README.md", "card.json"]
    link = tmp_path / "link"
    link.symlink_to(bundle)
    with pytest.raises(ConfigError, match="symbolic link"):
        check_target(link, force=True)


def test_out_may_not_be_the_stores_artifacts_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NAS_ARTIFACTS", raising=False)
    study, number = stored_study(f"sqlite:///{tmp_path / 't.db'}", "t", search_config("t"), tmp_path / "w")
    with pytest.raises(ConfigError, match=r"is the trial store's artifacts folder .*t_artifacts"):
        export_model(study, trial=number, out=tmp_path / "t_artifacts", progress=False)
    monkeypatch.setenv("NAS_ARTIFACTS", str(tmp_path / "elsewhere" / "arts"))
    with pytest.raises(ConfigError, match="contains the trial store's artifacts folder"):
        export_model(study, trial=number, out=tmp_path / "elsewhere", progress=False)
    assert not (tmp_path / "t_artifacts").exists() and not (tmp_path / "elsewhere").exists()


# -- code named in a stored config ---------------------------------------------------------------------------


@pytest.fixture
def marker_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An importable module that leaves a file when imported or when its dataset function runs."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "safety_marker_plugin.py").write_text(
        textwrap.dedent(
            f"""
            from pathlib import Path

            Path({str(tmp_path / "imported")!r}).touch()

            def make_data(**options):
                Path({str(tmp_path / "called")!r}).touch()
                raise RuntimeError("a dataset function ran")
            """
        )
    )
    monkeypatch.syspath_prepend(str(folder))
    yield tmp_path
    sys.modules.pop("safety_marker_plugin", None)


@pytest.mark.parametrize("kind", ["plugin-and-dataset-function", "os-system"])
def test_export_runs_no_code_named_in_the_stored_config(marker_plugin: Path, kind: str) -> None:
    tmp = marker_plugin
    if kind == "os-system":
        fields: dict[str, Any] = {
            "dataset": {"name": "os:system", "options": {"command": f"touch {tmp}/called"}}
        }
    else:
        fields = {"plugins": ["safety_marker_plugin"], "dataset": {"name": "safety_marker_plugin:make_data"}}
    url = f"sqlite:///{tmp / 'code.db'}"
    study, number = stored_study(url, "code", search_config("code", **fields), tmp / "w")

    result = export_model("code", trial=number, out=tmp / "b", storage=url, latency_repeats=1, progress=False)
    assert result.test_accuracy is None
    assert "export does not run code named in a stored config" in result.card["test"]["note"]
    assert load_exported(tmp / "b").arch == study.trial(number).arch
    with zipfile.ZipFile(io.BytesIO(export_archive("code", number, storage=url, formats="pytorch"))) as z:
        assert f"code-trial{number}/card.json" in z.namelist()
    cli = CliRunner().invoke(
        main, ["export", "code", "--trial", str(number), "--out", str(tmp / "c"), "--storage", url]
    )
    assert cli.exit_code == 0, cli.output
    assert "export does not run code named in a stored config" in " ".join(cli.output.split())  # rich wraps
    with pytest.raises(
        ConfigError, match="must be retrained.*export does not run code named in a stored config"
    ):
        export_model(study, trial=number, out=tmp / "r", retrain_epochs=1, progress=False)
    assert not (tmp / "imported").exists() and not (tmp / "called").exists()


def test_export_works_when_a_plugin_of_the_search_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search used a plugin module and a custom evaluator; the module is later removed."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    module = folder / "safety_gone_plugin.py"
    module.write_text(
        textwrap.dedent(
            """
            from nas.core.evaluator import EVALUATORS

            @EVALUATORS.register("safety_gone_eval")
            class GoneEvaluator:
                def __init__(self, space, dataset=None):
                    self.space = space
            """
        )
    )
    monkeypatch.syspath_prepend(str(folder))
    fields = {"plugins": ["safety_gone_plugin"], "evaluator": {"name": "safety_gone_eval"}}
    config = load_config(search_config("gone", **fields)).model_dump(mode="json")  # as `nas search` stores it
    study, number = stored_study(f"sqlite:///{tmp_path / 'g.db'}", "gone", config, tmp_path / "w")
    module.unlink()
    sys.modules.pop("safety_gone_plugin", None)
    importlib.invalidate_caches()
    with pytest.raises(ConfigError, match="safety_gone_plugin"):
        load_config(config)  # the stored config no longer validates...

    result = export_model(
        study, trial=number, out=tmp_path / "b", latency_repeats=1, progress=False
    )  # ...export works
    assert result.test_accuracy is not None and result.card["test"]["samples"] == SYNTHETIC["num_test"]
    assert load_exported(tmp_path / "b").arch == study.trial(number).arch


# -- the dashboard -------------------------------------------------------------------------------------------


def test_the_dashboards_export_reads_the_store_read_only(
    storage_url: str,  # noqa: F811  (a fixture)
    tmp_path: Path,
) -> None:
    """On SQLite a read-write connection switches the store to WAL on connect; a read-only one cannot."""
    from dashboard.downloads import model_download

    study, number = stored_study(storage_url, "dash", search_config("dash"), tmp_path / "w")
    study.close()
    database = tmp_path / "store.db"
    if storage_url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(database)) as connection:
            assert connection.execute("PRAGMA journal_mode = DELETE").fetchone()[0] == "delete"
    download = model_download("dash", number, storage_url)
    assert download.file_name == f"dash-trial{number}.zip" and download.data[:2] == b"PK"
    if storage_url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(database)) as connection:
            assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # nothing was written
